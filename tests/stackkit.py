"""Reading what a run left on the local stack (the `pipeline` fixture): raw answers, bars, the rate budget and the
login; shared by the e2e matrices."""

from __future__ import annotations

import io
import json
import time
from datetime import date, datetime

import pyarrow.parquet as pq

from pricefeed.auth.refresh_lease import LOCK_PREFIX
from pricefeed.fyers.ratelimit import AccountRateLimiter
from pricefeed.lake import paths
from pricefeed.local.run import login
from pricefeed.symbol import Symbol
from pricefeed.trading_calendar import DEFAULT_CALENDAR

INGEST = "IngestSymbolFunction"


def raw_store(pipeline) -> tuple[object, str]:
    return pipeline.stack.client("s3"), pipeline.stack.outputs["RawBucketName"]


def keys(s3, bucket: str, prefix: str) -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return sorted(keys)


def read_json(s3, bucket: str, key: str) -> dict | None:
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def session_minutes(day: date) -> list[int]:
    return DEFAULT_CALENDAR.minute_starts(day).tolist()



def bars_1m(pipeline, symbol: str, day: date):
    s3, bucket = pipeline.stack.client("s3"), pipeline.stack.outputs["ProcessedBucketName"]
    try:
        body = s3.get_object(Bucket=bucket, Key=paths.processed_key("1m", Symbol.parse(symbol), day))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return pq.read_table(io.BytesIO(body))


def monthly_rows(pipeline, key: str, names: set[str], day: date) -> list[dict]:
    """Rows of the symbols ``names`` on ``day`` in the compacted file ``key`` of the processed bucket ([] when the
    file does not exist yet)."""
    s3, bucket = pipeline.stack.client("s3"), pipeline.stack.outputs["ProcessedBucketName"]
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return []
    return [r for r in pq.read_table(io.BytesIO(body)).to_pylist() if r["symbol"] in names and r["trade_date"] == day]


def newest_from_raw(pipeline, symbol: str, day: date) -> dict[int, tuple]:
    """minute → (o, h, l, c, v) of the newest raw answer holding it (the later copy within one answer), from every
    answer under the day's raw prefix: what the bars must say."""
    s3, raw = raw_store(pipeline)
    answers = {}
    for key in keys(s3, raw, paths.raw_day_prefix(Symbol.parse(symbol), day)):
        doc = read_json(s3, raw, key)
        if "response" not in doc:  # a reference to a multi-day answer
            key, doc = doc["ref"], read_json(s3, raw, doc["ref"])
        answers[key] = doc
    session, best = set(session_minutes(day)), {}
    for doc in sorted(answers.values(), key=lambda d: d["fetched_at"]):
        ended_by = min(datetime.fromisoformat(doc["fetched_at"]).timestamp(), doc["range_to"] + 1)
        for c in doc["response"].get("candles") or []:
            if c[0] in session and c[0] + 60 <= ended_by:
                best[c[0]] = tuple(c[1:6])
    return best



def state_table(pipeline) -> tuple[object, str]:
    return pipeline.stack.client("dynamodb"), pipeline.stack.outputs["StateTableName"]


def budget(pipeline) -> AccountRateLimiter:
    db, table = state_table(pipeline)
    return AccountRateLimiter(db, table, pipeline.sim.config.app_id)


def next_ist_day_for_the_budget(pipeline) -> None:
    """The rate budget as after midnight IST (no breaches today), and a fresh simulator window."""
    db, table = state_table(pipeline)
    db.delete_item(TableName=table, Key={"pk": {"S": budget(pipeline).key}})
    pipeline.sim.reset_stats()


def log_in_again(pipeline) -> None:
    """What a person does after a refresh failure: log in at /oauth/login. Also forgets the failed refresh's
    record (the lease item) and starts fresh ingest containers, so later tests see a clean login."""
    login(pipeline.stack)
    db, table = state_table(pipeline)
    db.delete_item(TableName=table, Key={"pk": {"S": LOCK_PREFIX + pipeline.sim.config.app_id}})
    pipeline.stack.cold_start(INGEST)


def waiting_for_login(pipeline, arn: str, timeout_s: float = 120) -> None:
    """Until the run waits in "Wait for today's Fyers login" (its task token registered); fails if it ends first."""
    db, table = state_table(pipeline)
    key = {"pk": {"S": f"login-waiters#{pipeline.sim.config.app_id}"}}
    deadline = time.monotonic() + timeout_s
    while not db.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item", {}).get("tokens"):
        status = pipeline.stack.client("stepfunctions").describe_execution(executionArn=arn)["status"]
        assert status == "RUNNING", f"the run ended ({status}) instead of waiting for a login"
        assert time.monotonic() < deadline, "the run never began to wait for a login"
        time.sleep(0.05)
