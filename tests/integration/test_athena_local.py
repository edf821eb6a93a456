"""The local stack's Athena: SQL runs over the Glue catalog's tables and answers as Athena does.

moto alone answers every query with no rows. What a user of Athena would notice is checked here: a table reads
its registered partitions only (or, projected, every file under its location), failures carry Athena's reason,
results land in the workgroup's location as Athena's CSV, and awswrangler reads them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import awswrangler as wr
import boto3
import pyarrow as pa
import pytest
from botocore.exceptions import ClientError

from pricefeed.lake import storage as lake
from pricefeed.local.motopatch import athena

BUCKET, RESULTS, DB = "lake", "answers", "prices"


@pytest.fixture
def catalog(mocked_aws):
    athena.install()
    s3, glue = boto3.client("s3"), boto3.client("glue")
    for bucket in (BUCKET, RESULTS):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
    glue.create_database(DatabaseInput={"Name": DB})
    columns = [{"Name": "symbol", "Type": "string"}, {"Name": "ts", "Type": "timestamp"},
               {"Name": "close", "Type": "double"}, {"Name": "volume", "Type": "bigint"}]
    keys = [{"Name": "month", "Type": "string"}]
    by_symbol = [{"Name": "ts", "Type": "timestamp"}, {"Name": "close", "Type": "double"}]
    injected = {"projection.enabled": "true", "projection.symbol.type": "injected"}
    for name, parameters in (("monthly", {}), ("projected", {"projection.enabled": "true"}), ("by_symbol", injected)):
        glue.create_table(DatabaseName=DB, TableInput={
            "Name": name, "Parameters": parameters,
            "PartitionKeys": [{"Name": "symbol", "Type": "string"}] if name == "by_symbol" else keys,
            "StorageDescriptor": {"Columns": by_symbol if name == "by_symbol" else columns,
                                  "Location": f"s3://{BUCKET}/{name}/"},
        })
    for name in ("monthly", "projected"):
        for month, close in (("01", 10.0), ("02", None)):
            table = pa.table({"symbol": ["SBIN-EQ"], "ts": pa.array([datetime(2026, int(month), 5, 3, 45, tzinfo=UTC)],
                                                                   pa.timestamp("ms", tz="UTC")),
                              "close": pa.array([close], pa.float64()), "volume": pa.array([7], pa.int64())})
            s3.put_object(Bucket=BUCKET, Key=f"{name}/month={month}/part-00000.parquet", Body=lake.parquet_bytes(table))
    glue.batch_create_partition(DatabaseName=DB, TableName="monthly", PartitionInputList=[
        {"Values": ["01"], "StorageDescriptor": {"Columns": columns, "Location": f"s3://{BUCKET}/monthly/month=01/"}}
    ])  # month 02 is on S3 but never registered
    boto3.client("athena").create_work_group(Name="lake", Configuration={
        "EnforceWorkGroupConfiguration": True,
        "ResultConfiguration": {"OutputLocation": f"s3://{RESULTS}/results/"},
    })
    return boto3.Session()


def test_a_table_reads_its_registered_partitions_and_a_projected_one_every_file(catalog):
    ask = "select month, count(*) as n from {} group by month order by month"

    registered = wr.athena.read_sql_query(ask.format("monthly"), database=DB, workgroup="lake", ctas_approach=False)
    projected = wr.athena.read_sql_query(ask.format("projected"), database=DB, workgroup="lake", ctas_approach=False)

    assert registered.to_dict("list") == {"month": ["01"], "n": [1]}  # Athena never reads an unregistered month
    assert projected.to_dict("list") == {"month": ["01", "02"], "n": [1, 1]}
    assert registered.query_metadata["Statistics"]["DataScannedInBytes"] > 0


def test_answers_are_athenas_csv_in_the_workgroups_location_with_athena_types(catalog):
    client, s3 = boto3.client("athena"), boto3.client("s3")
    started = client.start_query_execution(
        QueryString="select symbol, ts, close, volume from projected order by month",
        QueryExecutionContext={"Database": DB}, WorkGroup="lake",
        ResultConfiguration={"OutputLocation": "s3://elsewhere/"},  # the workgroup enforces its own
    )["QueryExecutionId"]

    described = client.get_query_execution(QueryExecutionId=started)["QueryExecution"]
    results = client.get_query_results(QueryExecutionId=started)["ResultSet"]
    location = described["ResultConfiguration"]["OutputLocation"]
    body = s3.get_object(Bucket=RESULTS, Key=location.removeprefix(f"s3://{RESULTS}/"))["Body"].read().decode()

    assert described["Status"]["State"] == "SUCCEEDED"
    assert location == f"s3://{RESULTS}/results/{started}.csv"
    assert body.splitlines() == [
        '"symbol","ts","close","volume"',
        '"SBIN-EQ","2026-01-05 03:45:00.000","10.0","7"',
        '"SBIN-EQ","2026-02-05 03:45:00.000",,"7"',  # NULL: an empty, unquoted field
    ]
    assert [c["Type"] for c in results["ResultSetMetadata"]["ColumnInfo"]] == ["varchar", "timestamp", "double",
                                                                               "bigint"]
    assert results["Rows"][0] == {"Data": [{"VarCharValue": c} for c in ("symbol", "ts", "close", "volume")]}


def test_a_query_athena_cannot_run_fails_with_its_reason(catalog):
    client = boto3.client("athena")
    started = client.start_query_execution(
        QueryString="select no_such_column from monthly", QueryExecutionContext={"Database": DB}, WorkGroup="lake"
    )["QueryExecutionId"]

    status = client.get_query_execution(QueryExecutionId=started)["QueryExecution"]["Status"]

    assert status["State"] == "FAILED" and "no_such_column" in status["StateChangeReason"]
    with pytest.raises(wr.exceptions.QueryFailed, match="no_such_column"):
        wr.athena.read_sql_query("select no_such_column from monthly", database=DB, workgroup="lake",
                                 ctas_approach=False)


@pytest.mark.parametrize(
    ("where", "answered"),
    [("symbol = 'SBIN-EQ'", True), ("\"symbol\" IN ('SBIN-EQ', 'TCS-EQ')", True), ("b.symbol = 'SBIN-EQ'", True),
     ("symbol LIKE 'SBIN%'", False), ("close > 0", False)],
)
def test_a_projected_injected_key_must_be_named_by_equality(catalog, where, answered):
    """Athena's rule for partition projection's `injected` type, which the per-day tables use for `symbol`."""
    client = boto3.client("athena")
    started = client.start_query_execution(
        QueryString=f"select count(*) from by_symbol b where {where}", QueryExecutionContext={"Database": DB},
        WorkGroup="lake",
    )["QueryExecutionId"]

    status = client.get_query_execution(QueryExecutionId=started)["QueryExecution"]["Status"]

    assert (status["State"] == "SUCCEEDED") is answered, status
    if not answered:
        assert status["StateChangeReason"].startswith("CONSTRAINT_VIOLATION: For the injected projected partition")


def test_without_an_output_location_the_query_is_refused(catalog):
    with pytest.raises(ClientError, match="No output location provided"):
        boto3.client("athena").start_query_execution(QueryString="select 1", WorkGroup="primary")
