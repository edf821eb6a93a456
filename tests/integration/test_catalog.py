"""Registering a job result's partitions in both Glue tables (bars and the coverage ledger), on emulated Glue."""

import json

import boto3
import pytest
from moto import mock_aws

from pricefeed.aggregate.catalog import job_partitions, read_job_result, register_job_partitions, register_result
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
        "location": f"s3://p/coverage/symbol={symbol}/day={day:02d}/",
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
        "moved": 0,
        "projected": 0,
        "tables": {
            "bars": {"registered": 150, "already_registered": 0, "moved": 0, "projected": 0},
            "coverage": {"registered": 150, "already_registered": 0, "moved": 0, "projected": 0},
        },
    }
    assert (again["registered"], again["already_registered"], again["moved"]) == (0, 300, 0)
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


def locations(glue, table: str) -> dict[tuple[str, ...], str]:
    pages = glue.get_paginator("get_partitions").paginate(DatabaseName=DB, TableName=table)
    return {tuple(p["Values"]): p["StorageDescriptor"]["Location"] for page in pages for p in page["Partitions"]}


def test_a_partition_registered_at_an_old_location_is_pointed_at_the_new_one(glue):
    # The coverage ledger moved from processed/coverage/ to coverage/: days registered before point at the old files.
    before = "s3://p/processed/coverage/symbol={}/day=25/"
    old = [{**ledger(f"S{i}-EQ", 25), "location": before.format(f"S{i}-EQ")} for i in range(120)]
    register_job_partitions(glue, database=DB, tables=TABLES, partitions=old)
    rebuilt = [ledger(f"S{i}-EQ", 25) for i in range(0, 120, 2)] + [ledger("NEW-EQ", 25)]

    outcome = register_job_partitions(glue, database=DB, tables=TABLES, partitions=rebuilt)

    assert (outcome["registered"], outcome["moved"], outcome["already_registered"]) == (1, 60, 0)
    where = locations(glue, "coverage_t")
    assert where[("NSE", "S2-EQ", "2026", "11", "25")] == "s3://p/coverage/symbol=S2-EQ/day=25/"
    assert where[("NSE", "S3-EQ", "2026", "11", "25")] == before.format("S3-EQ")  # not rebuilt: left as it was
    assert len(where) == 121


def test_a_results_lists_are_read_as_json_lines_and_older_results_still_register(glue):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="raw")
    for table, entry in (("bars", bar), ("coverage", ledger)):
        lines = b"".join(json.dumps(entry(f"S{i}-EQ", 25)).encode() + b"\n" for i in range(250))
        s3.put_object(Bucket="raw", Key=f"runs/r.{table}.jsonl", Body=lines)
    lists = {t: f"runs/r.{t}.jsonl" for t in TABLES}
    listing = {"partition_lists": lists, "partition_counts": dict.fromkeys(TABLES, 250)}
    s3.put_object(Bucket="raw", Key="runs/r.json", Body=json.dumps(listing).encode())
    s3.put_object(Bucket="raw", Key="runs/old.json", Body=json.dumps({"partitions": [bar("OLD-EQ", 26)]}).encode())

    outcomes = [register_result(glue, s3, "raw", read_job_result(s3, "raw", key), database=DB, tables=TABLES)
                for key in ("runs/r.json", "runs/old.json")]

    assert [o["registered"] for o in outcomes] == [500, 1]
    assert len(values(glue, "bars_t")) == 251 and len(values(glue, "coverage_t")) == 250


def test_a_projected_tables_list_is_not_even_read(glue):
    project(glue, "bars_t")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="raw")
    s3.put_object(Bucket="raw", Key="runs/r.coverage.jsonl", Body=json.dumps(ledger("A-EQ", 25)).encode())
    listing = {"partition_lists": {"bars": "runs/gone.bars.jsonl", "coverage": "runs/r.coverage.jsonl"},
               "partition_counts": {"bars": 4000, "coverage": 1}}
    s3.put_object(Bucket="raw", Key="runs/r.json", Body=json.dumps(listing).encode())

    outcome = register_result(glue, s3, "raw", read_job_result(s3, "raw", "runs/r.json"), database=DB, tables=TABLES)

    assert (outcome["projected"], outcome["registered"]) == (4000, 1)  # the bars list does not even exist
    assert values(glue, "bars_t") == set()


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"bars": {}}, "names no partitions"),
        ({"partition_lists": {"bars": "runs/missing.jsonl"}}, "runs/missing.jsonl does not exist"),
        ({"partition_lists": {"bars": "runs/bad.jsonl"}}, "runs/bad.jsonl has a line that is not JSON"),
    ],
)
def test_a_result_without_a_readable_partition_list_is_named(glue, document, named):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="raw")
    s3.put_object(Bucket="raw", Key="runs/bad.jsonl", Body=b'{"table": "bars"}\nnot json\n')
    s3.put_object(Bucket="raw", Key="runs/r.json", Body=json.dumps(document).encode())
    with pytest.raises(InvalidInput, match=named):
        list(job_partitions(s3, "raw", read_job_result(s3, "raw", "runs/r.json")))


def project(glue, table: str) -> None:
    """Turn on partition projection for ``table``, as template.yaml does for the per-symbol-day tables."""
    described = glue.get_table(DatabaseName=DB, Name=table)["Table"]
    table_input = {k: described[k] for k in ("Name", "PartitionKeys", "StorageDescriptor")}
    glue.update_table(DatabaseName=DB, TableInput={**table_input, "Parameters": {"projection.enabled": "true"}})


def test_a_table_with_partition_projection_gets_no_partitions_only_a_count(glue):
    # As template.yaml declares the per-symbol-day tables: Athena computes their partitions, so none is registered.
    project(glue, "bars_t")
    parts = [p for i in range(250) for p in (bar(f"S{i}-EQ", 25), ledger(f"S{i}-EQ", 25))]

    outcome = register_job_partitions(glue, database=DB, tables=TABLES, partitions=parts)

    assert outcome["tables"]["bars"] == {"registered": 0, "already_registered": 0, "moved": 0, "projected": 250}
    assert outcome["tables"]["coverage"]["registered"] == 250
    assert values(glue, "bars_t") == set()
