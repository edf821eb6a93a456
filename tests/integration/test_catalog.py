"""Registering a job result's partitions in both Glue tables (bars and the coverage ledger), on emulated Glue."""

import boto3
import pytest
from moto import mock_aws

from pricefeed.aggregate.catalog import register_job_partitions
from pricefeed.errors import InvalidInput

DB = "pricefeed_test"
TABLES = {"bars": "bars_t", "coverage": "coverage_t"}


@pytest.fixture
def glue(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("glue")
        client.create_database(DatabaseInput={"Name": DB})
        for table, keys in (
            ("bars_t", ["timeframe", "exchange", "symbol", "year", "month", "day"]),
            ("coverage_t", ["exchange", "symbol", "year", "month", "day"]),
        ):
            client.create_table(
                DatabaseName=DB,
                TableInput={
                    "Name": table,
                    "PartitionKeys": [{"Name": k, "Type": "string"} for k in keys],
                    "StorageDescriptor": {"Columns": [], "Location": f"s3://p/{table}/"},
                },
            )
        yield client


def bar(symbol: str, day: int) -> dict:
    return {
        "table": "bars",
        "timeframe": "1m",
        "exchange": "NSE",
        "symbol": symbol,
        "year": "2026",
        "month": "11",
        "day": f"{day:02d}",
        "location": f"s3://p/processed/timeframe=1m/symbol={symbol}/day={day:02d}/",
    }


def ledger(symbol: str, day: int) -> dict:
    return {
        "table": "coverage",
        "exchange": "NSE",
        "symbol": symbol,
        "year": "2026",
        "month": "11",
        "day": f"{day:02d}",
        "location": f"s3://p/processed/coverage/symbol={symbol}/day={day:02d}/",
    }


def values(glue, table: str) -> set[tuple[str, ...]]:
    pages = glue.get_paginator("get_partitions").paginate(DatabaseName=DB, TableName=table)
    return {tuple(p["Values"]) for page in pages for p in page["Partitions"]}


def test_each_partition_lands_in_its_own_table_in_batches_and_a_rerun_adds_nothing(glue):
    # 150 symbol-days: more than one BatchCreatePartition call of 100 per table
    parts = [p for i in range(150) for p in (bar(f"S{i}-EQ", 25), ledger(f"S{i}-EQ", 25))]

    first = register_job_partitions(glue, database=DB, tables=TABLES, partitions=parts)
    again = register_job_partitions(glue, database=DB, tables=TABLES, partitions=parts)

    assert first == {
        "registered": 300,
        "already_registered": 0,
        "tables": {
            "bars": {"registered": 150, "already_registered": 0},
            "coverage": {"registered": 150, "already_registered": 0},
        },
    }
    assert (again["registered"], again["already_registered"]) == (0, 300)
    assert ("NSE", "S7-EQ", "2026", "11", "25") in values(glue, "coverage_t")
    assert ("1m", "NSE", "S7-EQ", "2026", "11", "25") in values(glue, "bars_t")
    assert len(values(glue, "coverage_t")) == len(values(glue, "bars_t")) == 150


def test_an_entry_without_a_table_is_a_bar_partition_as_older_results_wrote_them(glue):
    entry = bar("SBIN-EQ", 25)
    del entry["table"]
    assert register_job_partitions(glue, database=DB, tables=TABLES, partitions=[entry])["registered"] == 1
    assert values(glue, "bars_t") == {("1m", "NSE", "SBIN-EQ", "2026", "11", "25")}


def test_an_unknown_table_is_refused_before_anything_is_registered(glue):
    with pytest.raises(InvalidInput, match="ticks"):
        register_job_partitions(glue, database=DB, tables=TABLES, partitions=[bar("A-EQ", 25), {"table": "ticks"}])
    assert values(glue, "bars_t") == set()
