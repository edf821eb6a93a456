"""The aggregation job against emulated S3 (moto): raw envelopes (and references to them) in, Parquet partitions out."""

import io
import re
import runpy
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import boto3
import orjson
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from awskit import mocked_s3
from pricefeed.aggregate import job
from pricefeed.aggregate.arguments import load_manifests, load_pending
from pricefeed.aggregate.catalog import job_partitions
from pricefeed.aggregate.job import run_aggregation
from pricefeed.errors import InvalidInput
from pricefeed.istime import ist_today
from pricefeed.lake import paths
from pricefeed.lake.envelope import build_envelope, build_reference
from pricefeed.symbol import Symbol

RAW, PROCESSED = "raw", "processed"
DAY = date(2025, 11, 25)
OPEN = int(datetime.combine(DAY, time(9, 15), tzinfo=ZoneInfo("Asia/Kolkata")).timestamp())
FETCHED = datetime(2025, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)  # 17:30 IST, after the close
GLUE_SCRIPT = Path(__file__).resolve().parents[2] / "glue" / "aggregate_bars.py"


@pytest.fixture
def s3(monkeypatch):
    yield from mocked_s3(monkeypatch, RAW, PROCESSED)


def put_envelope(s3, symbol: str, rows: list, fetched_at: datetime = FETCHED, response: dict | None = None):
    body = build_envelope(
        symbol=symbol,
        resolution="1",
        range_from=OPEN,
        range_to=OPEN + 22499,
        trading_date=DAY,
        fetched_at=fetched_at,
        http_status=200,
        body=orjson.dumps(response or {"s": "ok", "candles": rows}),
    )
    s3.put_object(Bucket=RAW, Key=paths.raw_key(Symbol.parse(symbol), DAY, fetched_at), Body=body)


def session(minutes: range, base: float = 100.0) -> list:
    return [[OPEN + 60 * m, base + m, base + m + 1, base + m - 1, base + m + 0.5, 10 + m] for m in minutes]


def processed_objects(s3, prefix: str = "processed/timeframe=") -> dict[str, bytes]:
    """The bar files (default) or any other part of the processed bucket, by key."""
    listing = s3.list_objects_v2(Bucket=PROCESSED, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=PROCESSED, Key=o["Key"])["Body"].read() for o in listing}


def listed(s3, result: dict) -> list[dict]:
    """The partitions a job result names (its JSON Lines list beside the result)."""
    return list(job_partitions(s3, RAW, result))


def read_table(blob: bytes):
    return pq.read_table(io.BytesIO(blob))


def run(s3, **kw):
    args = {"raw_bucket": RAW, "processed_bucket": PROCESSED, "dates": [DAY]}
    args.update(symbols=["NSE:SBIN-EQ", "NSE:M&M-EQ", "NSE:FOO-EQ"], result_key="runs/r1.json")
    args.update(kw)
    return run_aggregation(s3=s3, **args)


def test_aggregates_two_symbols_into_partitions(s3):
    put_envelope(s3, "NSE:SBIN-EQ", session(range(375)))
    put_envelope(s3, "NSE:M&M-EQ", [*session(range(30)), [OPEN - 60, 1.0, 1.0, 1.0, 1.0, 1]])

    result = run(s3)

    objects = processed_objects(s3)
    expected_keys = {
        paths.processed_key(tf, Symbol("NSE", name), DAY) for tf in paths.TIMEFRAMES for name in ("SBIN-EQ", "M&M-EQ")
    }
    assert set(objects) == expected_keys
    rows = {key: read_table(blob).num_rows for key, blob in objects.items()}
    assert rows[paths.processed_key("1m", Symbol("NSE", "SBIN-EQ"), DAY)] == 375
    assert rows[paths.processed_key("15m", Symbol("NSE", "M&M-EQ"), DAY)] == 2
    assert result["bars"] == {"1m": 405, "5m": 81, "15m": 27, "1d": 2}
    assert result["excluded"]["out_of_session"] == 1
    assert result["no_raw"] == ["NSE:FOO-EQ"]
    assert (result["dates"], result["symbols"]) == (["2025-11-25"], 3)
    first = listed(s3, result)[0]
    assert first == {
        "table": "bars",
        "timeframe": "1m",
        "exchange": "NSE",
        "symbol": "SBIN-EQ",
        "year": "2025",
        "month": "11",
        "day": "25",
        "location": f"s3://{PROCESSED}/processed/timeframe=1m/exchange=NSE/symbol=SBIN-EQ/year=2025/month=11/day=25/",
        "rows": 375,
    }
    written = orjson.loads(s3.get_object(Bucket=RAW, Key="runs/r1.json")["Body"].read())
    assert written == result
    # The result names the partitions' list instead of holding it: it stays small whatever the run's size.
    assert "partitions" not in written
    assert written["partition_lists"] == {t: f"runs/r1.{t}.jsonl" for t in ("bars", "coverage", "bars_monthly",
                                                                            "coverage_monthly")}
    counts = {"bars": 8, "coverage": 2, "bars_monthly": 4, "coverage_monthly": 1}  # the months: 4 timeframes + ledger
    assert written["partition_counts"] == counts
    assert counts == {t: sum(p["table"] == t for p in listed(s3, result)) for t in counts}
    daily = read_table(objects[paths.processed_key("1d", Symbol("NSE", "M&M-EQ"), DAY)]).to_pylist()
    assert daily[0]["ts"] == datetime(2025, 11, 24, 18, 30, tzinfo=UTC)
    assert (daily[0]["bars"], daily[0]["close"]) == (30, 129.5)


def test_rerun_is_byte_identical_and_leaves_no_stale_file(s3):
    put_envelope(s3, "NSE:SBIN-EQ", session(range(375)))
    put_envelope(s3, "NSE:M&M-EQ", session(range(200)))
    stale = paths.processed_prefix("5m", Symbol("NSE", "SBIN-EQ"), DAY) + "part-99999.parquet"
    s3.put_object(Bucket=PROCESSED, Key=stale, Body=b"left over by an older layout")

    run(s3)
    first = processed_objects(s3)
    result = run(s3, max_workers=3)
    second = processed_objects(s3)

    assert stale not in first
    assert first == second
    assert len(second) == 8 and result["stale_removed"] == 0


def test_a_symbols_month_is_listed_once_a_folder_and_stale_files_still_go(s3):
    """A backfill builds a symbol's days together: each folder of its month is listed once, not once a day;
    only the check for raw that landed during the build lists each day again."""
    days = [DAY + timedelta(days=n) for n in range(-1, 4)]  # Mon 24 .. Fri 28 November 2025
    symbol = Symbol.parse("NSE:SBIN-EQ")
    for day in days:
        opens = OPEN + int((day - DAY).total_seconds())
        body = build_envelope(symbol="NSE:SBIN-EQ", resolution="1", range_from=opens, range_to=opens + 22499,
                              trading_date=day, fetched_at=FETCHED + (day - DAY), http_status=200,
                              body=orjson.dumps({"s": "ok", "candles": [[opens + 60 * m, 1, 2, 0.5, 1.5, 9]
                                                                         for m in range(375)]}))
        s3.put_object(Bucket=RAW, Key=paths.raw_key(symbol, day, FETCHED + (day - DAY)), Body=body)
    stale = paths.processed_prefix("1m", symbol, days[2]) + "part-old.parquet"
    s3.put_object(Bucket=PROCESSED, Key=stale, Body=b"left over by an older layout")
    listed: list[str] = []
    s3.meta.events.register(
        "before-parameter-build.s3.ListObjectsV2", lambda params, **_: listed.append(params["Prefix"])
    )

    result = run(s3, symbols=["NSE:SBIN-EQ"], dates=days)
    by_job = list(listed)  # what the job listed (the checks below list too)

    assert result["coverage"]["symbol_days"] == 5 and result["stale_removed"] == 1
    assert stale not in processed_objects(s3)
    by_level = {"month": [p for p in by_job if p.endswith("month=11/")], "day": [p for p in by_job if "day=" in p]}
    assert len(by_level["month"]) == 7  # raw, the four timeframes, the ledger, the quarantine: once each
    assert len(by_level["day"]) == 5  # the raced check, once a day
    assert by_job.count("ohlcv/symbol-master/") == 1  # the cached masters, for each instrument's sessions: once a job
    assert len(by_job) == 13, by_job


def test_a_newer_envelope_wins_for_its_minutes(s3):
    put_envelope(s3, "NSE:SBIN-EQ", session(range(375)))
    run(s3)
    newer = [[OPEN + 60 * m, 50.0, 60.0, 40.0, 55.0, 1] for m in (0, 1)]
    put_envelope(s3, "NSE:SBIN-EQ", newer, fetched_at=FETCHED + timedelta(hours=2))

    result = run(s3)

    objects = processed_objects(s3)
    one_minute = read_table(objects[paths.processed_key("1m", Symbol("NSE", "SBIN-EQ"), DAY)]).to_pylist()
    assert [r["close"] for r in one_minute[:3]] == [55.0, 55.0, 102.5]
    five = read_table(objects[paths.processed_key("5m", Symbol("NSE", "SBIN-EQ"), DAY)]).to_pylist()[0]
    assert (five["open"], five["high"], five["low"], five["close"]) == (50.0, 105.0, 40.0, 104.5)
    assert result["excluded"]["superseded"] == 2 and result["bars"]["1m"] == 375


def test_raw_without_session_candles_writes_nothing_and_clears_the_day(s3):
    put_envelope(s3, "NSE:SBIN-EQ", session(range(375)))
    run(s3, symbols=["NSE:SBIN-EQ"])
    s3.delete_object(Bucket=RAW, Key=paths.raw_key(Symbol.parse("NSE:SBIN-EQ"), DAY, FETCHED))
    put_envelope(s3, "NSE:SBIN-EQ", [], response={"s": "no_data"})

    result = run(s3, symbols=["NSE:SBIN-EQ"])

    assert processed_objects(s3) == {}
    assert result["empty"] == [{"symbol": "NSE:SBIN-EQ", "date": "2025-11-25"}]
    per_day = [p["table"] for p in listed(s3, result) if not p["table"].endswith("_monthly")]
    assert per_day == ["coverage"] and result["stale_removed"] == 4
    # The ledger still says the day was looked at and that every session minute is missing.
    (row,) = read_table(processed_objects(s3, paths.COVERAGE_ROOT)[ledger_key("SBIN-EQ", DAY)]).to_pylist()
    assert (row["expected_minutes"], row["stored_minutes"], row["missing_ranges"]) == (375, 0, ["09:15-15:30"])
    assert result["coverage"]["with_gaps"] == 1 and result["coverage"]["missing_minutes"] == 375


def test_a_malformed_envelope_fails_its_day_only_and_is_named(s3):
    put_envelope(s3, "NSE:SBIN-EQ", session(range(375)))
    bad_key = paths.raw_key(Symbol.parse("NSE:M&M-EQ"), DAY, FETCHED)
    s3.put_object(Bucket=RAW, Key=bad_key, Body=b"{truncated")

    with pytest.raises(InvalidInput, match=re.escape(bad_key)):
        run(s3)

    assert len(processed_objects(s3)) == 4  # SBIN-EQ was still written
    written = orjson.loads(s3.get_object(Bucket=RAW, Key="runs/r1.json")["Body"].read())
    assert written["failed"][0]["symbol"] == "NSE:M&M-EQ" and bad_key in written["failed"][0]["error"]


def run_glue_script(monkeypatch, *args: str) -> None:
    argv = [str(GLUE_SCRIPT), "--JOB_NAME", "aggregate-bars", "--JOB_RUN_ID", "jr_1", *args]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(GLUE_SCRIPT), run_name="__main__")


def test_glue_entry_script_runs_the_job(s3, monkeypatch):
    put_envelope(s3, "NSE:SBIN-EQ", session(range(375)))
    s3.put_object(Bucket=RAW, Key="config/symbols.json", Body=orjson.dumps({"symbols": ["NSE:SBIN-EQ"]}))

    run_glue_script(
        monkeypatch,
        *("--raw_bucket", RAW, "--processed_bucket", PROCESSED, "--dates", "2025-11-25"),
        *("--job-bookmark-option", "job-bookmark-disable"),
        *("--symbols_key", "config/symbols.json", "--result_key", "runs/glue.json"),
    )

    result = orjson.loads(s3.get_object(Bucket=RAW, Key="runs/glue.json")["Body"].read())
    assert result["bars"] == {"1m": 375, "5m": 75, "15m": 25, "1d": 1}
    assert len(processed_objects(s3)) == 4


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--dates", "2025-11-25", "--symbols_key", "config/symbols.json"), "--result_key"),
        (("--dates", "25-11-2025", "--symbols_key", "config/symbols.json", "--result_key", "r"), "--dates"),
        (("--dates", "2025-11-25", "--symbols_key", "nope.json", "--result_key", "r"), "--symbols_key"),
    ],
)
def test_glue_entry_script_names_a_bad_argument(s3, monkeypatch, args, named):
    s3.put_object(Bucket=RAW, Key="config/symbols.json", Body=orjson.dumps({"symbols": ["NSE:SBIN-EQ"]}))
    with pytest.raises(InvalidInput, match=named):
        run_glue_script(monkeypatch, "--raw_bucket", RAW, "--processed_bucket", PROCESSED, *args)


# --- multi-day answers: references, manifests ------------------------------------------------------
DAYS = [DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)]  # Tue..Thu
MIDNIGHT = OPEN - (9 * 60 + 15) * 60


def day_session(day: date, minutes: range, base: float = 100.0) -> list:
    shift = (day - DAY).days * 86_400
    return [[ts + shift, *rest] for ts, *rest in session(minutes, base)]


def put_multi_day(s3, symbol: str, rows: list, fetched_at: datetime = FETCHED + timedelta(days=2)) -> str:
    """One answer covering DAYS: the envelope under the first date, a reference under each further one."""
    range_from, range_to = MIDNIGHT, MIDNIGHT + 3 * 86_400 - 1
    key = paths.raw_key(Symbol.parse(symbol), DAYS[0], fetched_at)
    body = build_envelope(
        symbol=symbol,
        resolution="1",
        range_from=range_from,
        range_to=range_to,
        trading_date=DAYS[0],
        last_trading_date=DAYS[-1],
        fetched_at=fetched_at,
        http_status=200,
        body=orjson.dumps({"s": "ok", "candles": rows}),
    )
    s3.put_object(Bucket=RAW, Key=key, Body=body)
    for day in DAYS[1:]:
        ref = build_reference(
            envelope_key=key,
            symbol=symbol,
            trading_date=day,
            range_from=range_from,
            range_to=range_to,
            fetched_at=fetched_at,
        )
        s3.put_object(Bucket=RAW, Key=paths.raw_key(Symbol.parse(symbol), day, fetched_at), Body=ref)
    return key


def one_minute_rows(s3, name: str, day: date) -> list[dict]:
    blob = s3.get_object(Bucket=PROCESSED, Key=paths.processed_key("1m", Symbol("NSE", name), day))["Body"].read()
    return read_table(blob).to_pylist()


def test_references_are_followed_and_each_day_takes_only_its_own_candles(s3):
    rows = [*day_session(DAYS[0], range(375)), *day_session(DAYS[1], range(10)), *day_session(DAYS[2], range(20))]
    put_multi_day(s3, "NSE:SBIN-EQ", rows)

    result = run(s3, symbols=["NSE:SBIN-EQ"], dates=DAYS)

    assert [len(one_minute_rows(s3, "SBIN-EQ", d)) for d in DAYS] == [375, 10, 20]
    assert {r["trade_date"] for r in one_minute_rows(s3, "SBIN-EQ", DAYS[1])} == {DAYS[1]}
    assert result["bars"]["1d"] == 3 and sum(result["excluded"].values()) == 0
    assert result["raw_reads"] == 3  # the envelope once, each reference once


def test_a_newer_one_day_answer_wins_over_an_older_multi_day_one(s3):
    put_multi_day(s3, "NSE:SBIN-EQ", day_session(DAYS[1], range(375)), fetched_at=FETCHED + timedelta(days=2))
    newer_key = paths.raw_key(Symbol.parse("NSE:SBIN-EQ"), DAYS[1], FETCHED + timedelta(days=3))
    newer = build_envelope(
        symbol="NSE:SBIN-EQ",
        resolution="1",
        range_from=MIDNIGHT + 86_400,
        range_to=MIDNIGHT + 2 * 86_400 - 1,
        trading_date=DAYS[1],
        fetched_at=FETCHED + timedelta(days=3),
        http_status=200,
        body=orjson.dumps({"s": "ok", "candles": day_session(DAYS[1], range(2), base=500.0)}),
    )
    s3.put_object(Bucket=RAW, Key=newer_key, Body=newer)

    result = run(s3, symbols=["NSE:SBIN-EQ"], dates=[DAYS[1]])

    closes = [r["close"] for r in one_minute_rows(s3, "SBIN-EQ", DAYS[1])]
    assert closes[:3] == [500.5, 501.5, 102.5] and len(closes) == 375
    assert result["excluded"]["superseded"] == 2


@pytest.mark.parametrize("broken", ["missing envelope", "wrong day"])
def test_a_broken_reference_fails_its_day_only_and_is_named(s3, broken):
    key = put_multi_day(s3, "NSE:SBIN-EQ", day_session(DAYS[1], range(375)))
    ref_key = paths.raw_key(Symbol.parse("NSE:SBIN-EQ"), DAYS[1], FETCHED + timedelta(days=2))
    if broken == "missing envelope":
        s3.delete_object(Bucket=RAW, Key=key)
        expected = f"s3://{RAW}/{key} does not exist"
    else:
        other_day = paths.raw_key(Symbol.parse("NSE:SBIN-EQ"), DAYS[2], FETCHED + timedelta(days=2))
        s3.copy_object(Bucket=RAW, Key=ref_key, CopySource={"Bucket": RAW, "Key": other_day})
        expected = f"is for NSE:SBIN-EQ {DAYS[2]}, not NSE:SBIN-EQ {DAYS[1]}"
    put_envelope(s3, "NSE:M&M-EQ", session(range(375)))

    with pytest.raises(InvalidInput, match=re.escape(ref_key)) as err:
        run(s3, symbols=["NSE:SBIN-EQ", "NSE:M&M-EQ"], dates=[DAYS[1], DAY])

    assert expected in str(err.value)
    assert {k.split("symbol=")[1].split("/")[0] for k in processed_objects(s3)} == {"M&M-EQ"}  # still written


def put_manifest(s3, prefix: str, symbol: str, dates: list[date]) -> None:
    body = {"symbol": symbol, "requests": 1, "raw_keys": [], "dates": [d.isoformat() for d in dates]}
    body.update(covered_from=None, covered_to=None)
    s3.put_object(Bucket=RAW, Key=paths.ingested_manifest_key(prefix, Symbol.parse(symbol)), Body=orjson.dumps(body))


def test_with_manifests_exactly_the_ingested_symbol_days_are_aggregated(s3):
    prefix = "ohlcv/runs/r2/ingested/"
    put_multi_day(s3, "NSE:SBIN-EQ", [*day_session(DAYS[0], range(375)), *day_session(DAYS[2], range(375))])
    put_manifest(s3, prefix, "NSE:SBIN-EQ", [DAYS[0], DAYS[2]])
    # M&M's answer had no candle: its day is handled as empty, so a stale processed day is cleared
    put_envelope(s3, "NSE:M&M-EQ", session(range(375)))
    run(s3, symbols=["NSE:M&M-EQ"])
    s3.delete_object(Bucket=RAW, Key=paths.raw_key(Symbol.parse("NSE:M&M-EQ"), DAY, FETCHED))
    put_envelope(s3, "NSE:M&M-EQ", [], response={"s": "no_data"})
    put_manifest(s3, prefix, "NSE:M&M-EQ", [])
    s3.put_object(Bucket=RAW, Key=prefix + "NSE/not-a-manifest.txt", Body=b"ignored")

    result = run(s3, dates=[DAY], ingested=load_manifests(s3, RAW, prefix))

    written = {(p["symbol"], p["day"]) for p in listed(s3, result) if p["table"] == "bars"}
    assert written == {("SBIN-EQ", "25"), ("SBIN-EQ", "27")}
    ledgered = {(p["symbol"], p["day"]) for p in listed(s3, result) if p["table"] == "coverage"}
    assert ledgered == {("SBIN-EQ", "25"), ("SBIN-EQ", "27"), ("M&M-EQ", "25")}  # the empty day too
    assert result["empty"] == [{"symbol": "NSE:M&M-EQ", "date": "2025-11-25"}]
    assert result["not_ingested"] == ["NSE:FOO-EQ"] and result["no_raw"] == []
    assert result["dates"] == ["2025-11-25", "2025-11-27"]
    assert not any("symbol=M&M-EQ" in k for k in processed_objects(s3))


def put_pending(s3, symbol: str, days: list[date], run_id: str, at: datetime) -> str:
    key = paths.pending_key(Symbol.parse(symbol), run_id, at)
    marker = {"symbol": symbol, "dates": [d.isoformat() for d in days], "run_id": run_id}
    s3.put_object(Bucket=RAW, Key=key, Body=orjson.dumps(marker))
    return key


def test_days_an_earlier_job_did_not_finish_are_built_by_the_next_and_only_the_markers_it_read_go(s3):
    # Run r1 ingested SBIN's 25th and 27th; its job died. Run r2 ingested M&M's 25th.
    put_multi_day(s3, "NSE:SBIN-EQ", [*day_session(DAYS[0], range(375)), *day_session(DAYS[2], range(375))])
    left = put_pending(s3, "NSE:SBIN-EQ", [DAYS[0], DAYS[2]], "r1", FETCHED)
    put_envelope(s3, "NSE:M&M-EQ", session(range(375)))
    prefix = "ohlcv/runs/r2/ingested/"
    put_manifest(s3, prefix, "NSE:M&M-EQ", [DAY])
    own = put_pending(s3, "NSE:M&M-EQ", [DAY], "r2", FETCHED + timedelta(hours=1))
    s3.put_object(Bucket=RAW, Key=paths.PENDING_ROOT + "symbol=X/exchange=NSE/garbage.json", Body=b"[1, 2]")
    pending = load_pending(s3, RAW)
    assert set(pending) == {left, own}  # the mangled one is left alone, not fatal
    later = put_pending(s3, "NSE:SBIN-EQ", [DAYS[2]], "r3", FETCHED + timedelta(hours=2))  # while the job runs

    result = run(s3, symbols=["NSE:M&M-EQ"], dates=[DAY], ingested=load_manifests(s3, RAW, prefix), pending=pending)

    written = {(p["symbol"], p["day"]) for p in listed(s3, result) if p["table"] == "bars"}
    assert written == {("SBIN-EQ", "25"), ("SBIN-EQ", "27"), ("M&M-EQ", "25")}
    assert result["pending_built"] == 2
    assert set(s3_keys(s3, paths.PENDING_ROOT)) == {later, paths.PENDING_ROOT + "symbol=X/exchange=NSE/garbage.json"}


def test_a_job_that_dies_leaves_every_marker_for_the_next(s3, monkeypatch):
    put_envelope(s3, "NSE:SBIN-EQ", session(range(375)))
    key = put_pending(s3, "NSE:SBIN-EQ", [DAY], "r1", FETCHED)
    monkeypatch.setattr(job, "aggregate_symbol_day", lambda *a, **kw: (_ for _ in ()).throw(MemoryError("lost")))
    with pytest.raises(MemoryError):
        run(s3, symbols=["NSE:SBIN-EQ"], dates=[DAY], ingested=[], pending=load_pending(s3, RAW))
    assert s3_keys(s3, paths.PENDING_ROOT) == [key]


def test_a_day_whose_raw_changes_while_it_is_built_is_left_pending_for_the_next_job(s3, monkeypatch):
    put_envelope(s3, "NSE:SBIN-EQ", session(range(375)))
    build, newer = job.build_bars, FETCHED + timedelta(hours=1)

    def build_while_an_ingest_lands(*args, **kwargs):
        day = build(*args, **kwargs)  # built from what was listed; meanwhile a newer answer arrives
        put_envelope(s3, "NSE:SBIN-EQ", session(range(375), base=200.0), fetched_at=newer)
        return day

    monkeypatch.setattr(job, "build_bars", build_while_an_ingest_lands)
    first = run(s3, symbols=["NSE:SBIN-EQ"], dates=[DAY], pending={})
    assert first["raced"] == [{"symbol": "NSE:SBIN-EQ", "date": "2025-11-25"}]
    monkeypatch.undo()
    (marker,) = s3_keys(s3, paths.PENDING_ROOT)
    assert "rebuild-2025-11-25" in marker

    second = run(s3, symbols=["NSE:M&M-EQ"], dates=[DAY], pending=load_pending(s3, RAW))  # another run's job
    assert second["raced"] == [] and second["pending_built"] == 1 and s3_keys(s3, paths.PENDING_ROOT) == []
    (bars,) = [v for k, v in processed_objects(s3).items() if "timeframe=1m" in k]
    assert read_table(bars).column("open").to_pylist()[0] == 200.0  # the newer answer's bars


def s3_keys(s3, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=RAW, Prefix=prefix).get("Contents", []))


def test_no_manifest_at_all_aggregates_nothing_and_says_who_was_not_ingested(s3):
    result = run(s3, dates=None, ingested=load_manifests(s3, RAW, "ohlcv/runs/none/ingested/"))
    assert listed(s3, result) == [] and result["not_ingested"] == ["NSE:FOO-EQ", "NSE:M&M-EQ", "NSE:SBIN-EQ"]


def test_a_malformed_manifest_is_named():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=RAW)
        client.put_object(Bucket=RAW, Key="runs/x/ingested/NSE/SBIN-EQ.json", Body=b'{"symbol": "NSE:SBIN-EQ"}')
        with pytest.raises(InvalidInput, match=re.escape("s3://raw/runs/x/ingested/NSE/SBIN-EQ.json")):
            load_manifests(client, RAW, "runs/x/ingested/")


def test_glue_entry_script_aggregates_what_the_manifests_name_without_dates(s3, monkeypatch):
    prefix = "ohlcv/runs/r3/ingested/"
    put_multi_day(s3, "NSE:SBIN-EQ", [*day_session(DAYS[1], range(375)), *day_session(DAYS[2], range(375))])
    put_manifest(s3, prefix, "NSE:SBIN-EQ", DAYS[1:])
    symbols = {"from": "2025-11-27", "to": "2025-11-27", "dates": ["2025-11-27"], "symbols": ["NSE:SBIN-EQ"]}
    s3.put_object(Bucket=RAW, Key="ohlcv/runs/r3/symbols.json", Body=orjson.dumps(symbols))

    run_glue_script(
        monkeypatch,
        *("--raw_bucket", RAW, "--processed_bucket", PROCESSED, "--ingested_prefix", prefix),
        *("--symbols_key", "ohlcv/runs/r3/symbols.json", "--result_key", "runs/glue.json"),
    )

    result = orjson.loads(s3.get_object(Bucket=RAW, Key="runs/glue.json")["Body"].read())
    assert result["dates"] == ["2025-11-26", "2025-11-27"] and result["bars"]["1d"] == 2


def test_glue_entry_script_takes_a_from_to_range_and_defaults_to_ist_today(s3, monkeypatch):
    put_envelope(s3, "NSE:SBIN-EQ", session(range(375)))
    s3.put_object(Bucket=RAW, Key="config/symbols.json", Body=orjson.dumps({"symbols": ["NSE:SBIN-EQ"]}))
    common = ("--raw_bucket", RAW, "--processed_bucket", PROCESSED, "--symbols_key", "config/symbols.json")

    run_glue_script(monkeypatch, *common, "--from", "2025-11-24", "--to", "2025-11-26", "--result_key", "range.json")
    run_glue_script(monkeypatch, *common, "--result_key", "today.json")

    ranged = orjson.loads(s3.get_object(Bucket=RAW, Key="range.json")["Body"].read())
    assert ranged["dates"] == ["2025-11-24", "2025-11-25", "2025-11-26"] and ranged["bars"]["1d"] == 1
    today = orjson.loads(s3.get_object(Bucket=RAW, Key="today.json")["Body"].read())
    assert today["dates"] == [ist_today().isoformat()]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "2025-11-24"), "--from and --to go together"),
        (("--from", "2025-11-26", "--to", "2025-11-24"), "2025-11-24"),
        (("--dates", "2025-11-25", "--from", "2025-11-24", "--to", "2025-11-26"), "exclude each other"),
        (("--from", "24-11-2025", "--to", "2025-11-26"), "--from"),
    ],
)
def test_glue_entry_script_names_a_bad_date_range(s3, monkeypatch, args, message):
    s3.put_object(Bucket=RAW, Key="config/symbols.json", Body=orjson.dumps({"symbols": ["NSE:SBIN-EQ"]}))
    with pytest.raises(InvalidInput, match=message):
        run_glue_script(
            monkeypatch,
            *("--raw_bucket", RAW, "--processed_bucket", PROCESSED, *args),
            *("--symbols_key", "config/symbols.json", "--result_key", "r"),
        )


# --- the coverage ledger -----------------------------------------------------------------------
IST = ZoneInfo("Asia/Kolkata")


def ledger_key(name: str, day: date) -> str:
    return paths.coverage_key(Symbol("NSE", name), day)


def put_day(s3, symbol: str, day: date, clock: list[tuple[int, int]]) -> None:
    """One envelope of ``day`` (fetched the next day) with a candle at each IST (hour, minute)."""
    midnight = int(datetime.combine(day, time(0, 0), tzinfo=IST).timestamp())
    rows = [[midnight + 3600 * h + 60 * m, 10.0, 11.0, 9.0, 10.5, 7] for h, m in clock]
    fetched = datetime.combine(day + timedelta(days=1), time(1, 0), tzinfo=UTC)
    body = build_envelope(
        symbol=symbol,
        resolution="1",
        range_from=midnight,
        range_to=midnight + 86_399,
        trading_date=day,
        fetched_at=fetched,
        http_status=200,
        body=orjson.dumps({"s": "ok", "candles": rows}),
    )
    s3.put_object(Bucket=RAW, Key=paths.raw_key(Symbol.parse(symbol), day, fetched), Body=body)


def clock_range(start: tuple[int, int], end: tuple[int, int]) -> list[tuple[int, int]]:
    """IST wall-clock minutes from ``start`` up to, not including, ``end``."""
    first, last = start[0] * 60 + start[1], end[0] * 60 + end[1]
    return [divmod(m, 60) for m in range(first, last)]


def ledger_row(s3, name: str, day: date) -> dict:
    (row,) = read_table(processed_objects(s3, paths.COVERAGE_ROOT)[ledger_key(name, day)]).to_pylist()
    return row


def test_ledger_of_a_half_empty_day_names_the_missing_afternoon(s3):
    put_day(s3, "NSE:SBIN-EQ", DAY, clock_range((9, 15), (12, 0)))

    result = run(s3, symbols=["NSE:SBIN-EQ"])

    row = ledger_row(s3, "SBIN-EQ", DAY)
    assert (row["expected_minutes"], row["stored_minutes"], row["missing_minutes"]) == (375, 165, 210)
    assert row["missing_ranges"] == ["12:00-15:30"] and row["sessions"] == ["09:15-15:30"]
    assert (row["complete"], row["trading_day"], row["raw_envelopes"]) == (False, True, 1)
    assert result["coverage"]["worst"] == [
        {
            "symbol": "NSE:SBIN-EQ",
            "date": "2025-11-25",
            "expected_minutes": 375,
            "missing_minutes": 210,
            "missing_ranges": ["12:00-15:30"],
        }
    ]
    coverage_parts = [p for p in listed(s3, result) if p["table"] == "coverage"]
    assert coverage_parts == [
        {
            "table": "coverage",
            "exchange": "NSE",
            "symbol": "SBIN-EQ",
            "year": "2025",
            "month": "11",
            "day": "25",
            "location": f"s3://{PROCESSED}/coverage/exchange=NSE/symbol=SBIN-EQ/year=2025/month=11/day=25/",
            "rows": 1,
        }
    ]


@pytest.mark.parametrize("closed", [date(2025, 11, 5), date(2025, 11, 22)], ids=["guru-nanak-holiday", "saturday"])
def test_ledger_of_a_closed_day_expects_nothing_and_counts_every_candle_out_of_session(s3, closed):
    put_day(s3, "NSE:SBIN-EQ", closed, clock_range((9, 15), (10, 15)))

    result = run(s3, symbols=["NSE:SBIN-EQ"], dates=[closed])

    row = ledger_row(s3, "SBIN-EQ", closed)
    assert (row["expected_minutes"], row["stored_minutes"], row["missing_minutes"]) == (0, 0, 0)
    assert (row["trading_day"], row["complete"], row["excluded_out_of_session"]) == (False, True, 60)
    assert processed_objects(s3) == {}  # no bars on a closed day
    assert {k: result["coverage"][k] for k in ("holidays", "complete", "with_gaps")} == {
        "holidays": 1,
        "complete": 0,
        "with_gaps": 0,
    }


def test_a_closed_day_without_raw_gets_no_ledger_row(s3):
    result = run(s3, symbols=["NSE:SBIN-EQ"], dates=[date(2025, 11, 5)])

    assert processed_objects(s3, "processed/") == {} and result["coverage"]["symbol_days"] == 0


@pytest.mark.parametrize(
    ("muhurat", "opens", "closes"),
    [(date(2024, 11, 1), (18, 0), (19, 0)), (date(2025, 10, 21), (13, 45), (14, 45))],
)
def test_a_muhurat_session_is_stored_and_expected_and_the_regular_hours_are_out_of_session(s3, muhurat, opens, closes):
    put_day(s3, "NSE:SBIN-EQ", muhurat, [(9, 15), (9, 16), (15, 29), *clock_range(opens, closes)])

    result = run(s3, symbols=["NSE:SBIN-EQ"], dates=[muhurat])

    row = ledger_row(s3, "SBIN-EQ", muhurat)
    window = f"{opens[0]:02d}:{opens[1]:02d}-{closes[0]:02d}:{closes[1]:02d}"
    assert row["sessions"] == [window] and (row["expected_minutes"], row["stored_minutes"]) == (60, 60)
    assert (row["complete"], row["excluded_out_of_session"]) == (True, 3)
    bars = one_minute_rows(s3, "SBIN-EQ", muhurat)
    assert bars[0]["ts"].astimezone(IST).time() == time(*opens) and len(bars) == 60
    assert result["bars"]["15m"] == 4 and result["coverage"]["complete"] == 1
