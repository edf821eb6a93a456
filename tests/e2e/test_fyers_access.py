"""Fyers access through the whole workflow on the local stack: tokens that expire mid-run, backfills in the
fewest requests, incremental runs from the last stored minute, and no 429 on the way."""

from __future__ import annotations

import io
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from pricefeed.auth.store import TokenStore
from pricefeed.ingest.settled import Settled
from pricefeed.ingest.symbol_range import SETTLE_S
from pricefeed.ingest.watermark import Watermarks
from pricefeed.istime import IST, ist_midnight_epoch
from pricefeed.local.run import wait_for
from pricefeed.ops.launch import start_run
from pricefeed.symbol import Symbol
from pricefeed.trading_calendar import DEFAULT_CALENDAR, is_trading_day


def _start(pipeline, tmp_path: Path, symbols: list[str], execution_input: dict) -> tuple[dict, dict]:
    stack = pipeline.stack
    arn = start_run(
        stack.client("stepfunctions"),
        stack.client("s3"),
        state_machine_arn=stack.outputs["StateMachineArn"],
        raw_bucket=stack.outputs["RawBucketName"],
        run_input=execution_input,
        csv="symbol\n" + "".join(f"{s}\n" for s in symbols),
    )
    described = wait_for(stack, arn, timeout_s=300)
    return described, json.loads(described.get("output") or "{}")


def _raw_envelopes(pipeline, symbol: str) -> list[dict]:
    """Every raw envelope (not reference) stored for ``symbol``, oldest fetch first."""
    s3, bucket = pipeline.stack.client("s3"), pipeline.stack.outputs["RawBucketName"]
    exchange, name = symbol.split(":")
    found = []
    prefix = f"ohlcv/raw/symbol={name}/exchange={exchange}/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            doc = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            if "response" in doc:
                found.append({"key": obj["Key"], **doc})
    return sorted(found, key=lambda d: d["fetched_at"])


def _bars(pipeline, timeframe: str, symbol: str) -> dict[str, list]:
    """trade day (the partition's date) → the partition's ``ts`` values."""
    s3, bucket = pipeline.stack.client("s3"), pipeline.stack.outputs["ProcessedBucketName"]
    exchange, name = symbol.split(":")
    prefix = f"processed/timeframe={timeframe}/exchange={exchange}/symbol={name}/"
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()))
            day = "-".join(part.split("=")[1] for part in obj["Key"].split("/")[4:7])
            out[day] = table.column("ts").to_pylist()
    return out


def test_an_access_token_expiring_mid_run_is_refreshed_once_and_the_run_completes(pipeline, tmp_path):
    stack, sim = pipeline.stack, pipeline.sim
    store = TokenStore(stack.client("secretsmanager"), stack.outputs["TokenSecretArn"])
    before = store.load()
    symbols = [f"NSE:SIM{i:04d}-EQ" for i in range(101, 113)]
    sim.reset_stats()
    knobs = sim.set_faults()  # as they are, to restore them
    sim.set_faults(refresh_policy="honoured")  # where Fyers still honours refresh tokens
    sim.expire_tokens_after(4)  # the token dies once 4 of the 12 tickers were served: mid-run, by construction
    try:
        described, _ = _start(pipeline, tmp_path, symbols, {"date": "2026-11-18"})
    finally:
        sim.set_faults(**knobs)

    assert described["status"] == "SUCCEEDED", described.get("error")
    stats = sim.stats()
    # Workers met the dead token; exactly one refresh served all of them, and every ticker landed.
    assert stats["requests"].get("/api/v3/validate-refresh-token") == 1
    assert stats["requests"]["/data/history"] > len(symbols)  # the refused ones were asked again
    assert {s: len(_bars(pipeline, "1m", s).get("2026-11-18", [])) for s in symbols} == dict.fromkeys(symbols, 375)
    after = store.load()
    assert after.access_token != before.access_token and after.issued_at > before.issued_at
    assert after.refresh_token == before.refresh_token  # kept: the refresh did not return a new one
    assert stats["rate_limited"] == 0


def test_a_backfill_costs_the_fewest_requests_and_stores_every_trading_day(pipeline, tmp_path):
    sim = pipeline.sim
    symbol = "NSE:ASIANPAINT-EQ"
    first, last = date(2026, 3, 2), date(2026, 8, 7)  # 159 IST dates: 2 requests of ≤ 100 days
    sim.reset_stats()

    described, output = _start(pipeline, tmp_path, [symbol], {"from": first.isoformat(), "to": last.isoformat()})

    assert described["status"] == "SUCCEEDED", described.get("error")
    assert (output["from"], output["to"], output["incremental"]) == (first.isoformat(), last.isoformat(), False)
    stats = sim.stats()
    assert stats["history_requests_by_symbol"] == {symbol: 2}
    assert stats["rate_limited"] == 0
    envelopes = _raw_envelopes(pipeline, symbol)
    assert len(envelopes) == 2
    # The two answers cover the range exactly: no minute asked twice, none skipped.
    assert envelopes[0]["range_to"] + 1 == envelopes[1]["range_from"]
    weekdays = {
        (first + timedelta(days=i)).isoformat()
        for i in range((last - first).days + 1)
        if (first + timedelta(days=i)).weekday() < 5
    }
    daily = _bars(pipeline, "1d", symbol)
    # The simulator trades the NSE calendar's sessions: every weekday but the 8 holidays here.
    trading = {d for d in weekdays if is_trading_day(date.fromisoformat(d))}
    assert set(daily) == trading and len(weekdays - trading) == 8
    minutes = _bars(pipeline, "1m", symbol)
    assert {len(ts) for ts in minutes.values()} == {375}


def test_scheduled_runs_ask_only_from_the_settled_frontier_and_leave_no_duplicates(pipeline, tmp_path):
    sim, stack = pipeline.sim, pipeline.stack
    symbol = "NSE:HINDUNILVR-EQ"
    # Settled through 15:00 IST yesterday (say the last scheduled run stopped there), nothing open.
    yesterday = datetime.now(IST).date() - timedelta(days=1)
    stored_through = ist_midnight_epoch(yesterday) + 15 * 3600 - 1
    watermarks = Watermarks(stack.client("dynamodb"), stack.outputs["StateTableName"])
    watermarks.update(Symbol.parse(symbol), lambda _: Settled(stored_through), "seed")
    sim.reset_stats()

    first_run, first_output = _start(pipeline, tmp_path, [symbol], {})

    assert first_run["status"] == "SUCCEEDED", first_run.get("error")
    assert first_output["incremental"] is True
    # One request, from the minute after the last stored one, across the day boundary up to now.
    assert sim.stats()["history_requests_by_symbol"] == {symbol: 1}
    (envelope,) = _raw_envelopes(pipeline, symbol)
    assert envelope["range_from"] == stored_through + 1
    assert envelope["key"].split("/")[4:7] == [
        f"year={yesterday.year}",
        f"month={yesterday.month:02d}",
        f"day={yesterday.day:02d}",
    ]

    settled = watermarks.load(Symbol.parse(symbol))
    assert settled.through >= envelope["range_to"] - SETTLE_S
    second_run, _ = _start(pipeline, tmp_path, [symbol], {})

    assert second_run["status"] == "SUCCEEDED"
    later = _raw_envelopes(pipeline, symbol)[1:]
    # At most one more request, never re-asking what the first settled: it starts at what is still open (an
    # empty answer awaiting its second ask, e.g. after a holiday the Lambda cannot tell from a weekday) or after
    # the frontier (at most the first run's last SETTLE_S again)
    assert sim.stats()["history_requests_by_symbol"][symbol] == 1 + len(later) <= 2
    for envelope_2 in later:
        assert envelope_2["range_from"] == min([s.first for s in settled.open] + [settled.through + 1])
    for day, minutes in _bars(pipeline, "1m", symbol).items():
        assert len(minutes) == len(set(minutes)), day  # no minute stored twice
    # Yesterday's session minutes after 15:00 IST (30 on a regular day, none on a holiday) came from this run.
    late = [m for m in DEFAULT_CALENDAR.minute_starts(yesterday).tolist() if m > stored_through]
    assert len(_bars(pipeline, "1m", symbol).get(yesterday.isoformat(), [])) == len(late)
