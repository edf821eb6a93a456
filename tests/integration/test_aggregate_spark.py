"""The Glue script on local Spark (Spark 3.5, as Glue 5.0) writes exactly what the thread-pool run writes.

Executors are separate Python workers: they reach S3 through a loopback moto server, opening their own
clients inside the tasks (no Hadoop S3 connector), as they do on Glue.
"""

from __future__ import annotations

import runpy
import shutil
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import boto3
import orjson
import pytest

from pricefeed.aggregate.catalog import job_partitions
from pricefeed.istime import ist_day_range
from pricefeed.lake import paths
from pricefeed.lake.envelope import build_envelope
from pricefeed.simulator import market
from pricefeed.symbol import Symbol

pyspark = pytest.importorskip("pyspark", reason="pyspark is part of requirements/dev-lock.txt")
if shutil.which("java") is None:
    pytest.skip("local Spark needs a Java runtime", allow_module_level=True)

GLUE_SCRIPT = Path(__file__).resolve().parents[2] / "glue" / "aggregate_bars.py"
RAW, SPARK_OUT, THREADS_OUT = "raw", "processed-spark", "processed-threads"
SYMBOLS = ["NSE:SBIN-EQ", "NSE:INFY-EQ", "NSE:TCS-EQ"]
DAYS = [date(2025, 11, 24), date(2025, 11, 25), date(2025, 11, 26)]


@pytest.fixture
def s3(monkeypatch):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server.get_host_and_port()[1]
    # Set before Spark starts: its Python workers inherit this environment.
    for name, value in {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "ap-south-1",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3")
    for bucket in (RAW, SPARK_OUT, THREADS_OUT):
        client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
    yield client
    server.stop()


def put_day(s3, symbol: str, day: date) -> None:
    start, end = ist_day_range(day)
    candles = [list(c) for c in market.minute_candles(7, symbol, day)]
    fetched = datetime(2025, 11, 27, 12, tzinfo=UTC)
    body = build_envelope(
        symbol=symbol,
        resolution="1",
        range_from=start,
        range_to=end,
        trading_date=day,
        fetched_at=fetched,
        http_status=200,
        body=orjson.dumps({"s": "ok", "candles": candles}),
    )
    s3.put_object(Bucket=RAW, Key=paths.raw_key(Symbol.parse(symbol), day, fetched), Body=body)


def run_script(monkeypatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", [str(GLUE_SCRIPT), "--JOB_NAME", "aggregate-bars", *args])
    runpy.run_path(str(GLUE_SCRIPT), run_name="__main__")


def objects(s3, bucket: str) -> dict[str, bytes]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def test_the_glue_script_on_local_spark_writes_what_the_thread_pool_writes(s3, monkeypatch, tmp_path):
    for symbol in SYMBOLS:
        for day in DAYS:
            put_day(s3, symbol, day)
    s3.put_object(Bucket=RAW, Key="run/symbols.json", Body=orjson.dumps({"symbols": SYMBOLS}))
    common = ("--raw_bucket", RAW, "--symbols_key", "run/symbols.json", "--dates", ",".join(map(str, DAYS)))

    from pyspark import SparkContext

    try:
        run_script(
            monkeypatch, *common, "--processed_bucket", SPARK_OUT, "--result_key", "spark.json", "--executor", "spark"
        )
        # What it wrote opens with Spark's plain directory read: no column in a file repeats a key of its path.
        for key, body in objects(s3, SPARK_OUT).items():
            (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / key).write_bytes(body)
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.getOrCreate()
        bars = spark.read.parquet(str(tmp_path / paths.PROCESSED_ROOT))
        ledger = spark.read.parquet(str(tmp_path / paths.COVERAGE_ROOT))
        assert bars.columns[-6:] == list(paths.PARTITION_KEYS)
        assert ledger.columns[-5:] == list(paths.COVERAGE_PARTITION_KEYS)
        daily = bars.where("timeframe = '1d'").select("symbol").distinct().collect()
        assert sorted(f"NSE:{r.symbol}" for r in daily) == sorted(SYMBOLS)
        assert ledger.count() == len(SYMBOLS) * len(DAYS)
    finally:
        active = SparkContext._active_spark_context
        if active is not None:
            active.stop()
    run_script(monkeypatch, *common, "--processed_bucket", THREADS_OUT, "--result_key", "threads.json")

    on_spark, on_threads = objects(s3, SPARK_OUT), objects(s3, THREADS_OUT)
    assert on_spark and on_spark == on_threads  # same keys, byte-identical Parquet
    assert len([k for k in on_spark if k.startswith("processed/timeframe=")]) == 4 * len(SYMBOLS) * len(DAYS)
    spark_result = orjson.loads(s3.get_object(Bucket=RAW, Key="spark.json")["Body"].read())
    threads_result = orjson.loads(s3.get_object(Bucket=RAW, Key="threads.json")["Body"].read())
    assert spark_result["bars"] == threads_result["bars"] and spark_result["bars"]["1d"] == len(SYMBOLS) * len(DAYS)
    assert spark_result["coverage"] == threads_result["coverage"]
    # The compacted months were merged on the executors, with the same outcome (and, above, the same bytes).
    assert spark_result["compacted"] == threads_result["compacted"] == {
        "months": 5, "rows": len(SYMBOLS) * len(DAYS) * (375 + 75 + 25 + 1 + 1), "conflicts": 0
    }
    on_spark_listed = list(job_partitions(s3, RAW, spark_result))
    same_bucket = orjson.dumps(on_spark_listed).replace(SPARK_OUT.encode(), THREADS_OUT.encode())
    assert on_spark_listed and orjson.loads(same_bucket) == list(job_partitions(s3, RAW, threads_result))
