"""Backfill and catch-up against the Fyers simulator on loopback: the windows it accepts, the requests it counts.

The simulator runs on a controllable clock (its "now"); the ingest is told the same time.
"""

import asyncio
import io
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import aiohttp
import orjson
import pyarrow.parquet as pq
import pytest

from awskit import ingest_stores
from pricefeed.aggregate.arguments import run_from_job_arguments
from pricefeed.aggregate.catalog import job_partitions
from pricefeed.auth.fyers_oauth import exchange_auth_code, login_url, parse_callback
from pricefeed.fyers.client import FyersClient
from pricefeed.ingest.item import IngestRequest
from pricefeed.ingest.symbol_range import ingest_symbol
from pricefeed.lake import paths
from pricefeed.simulator import SimulatorConfig, SimulatorServer, market
from pricefeed.symbol import Symbol
from pricefeed.trading_calendar import DEFAULT_CALENDAR, is_trading_day

IST = ZoneInfo("Asia/Kolkata")
APP_ID, SECRET, PIN = "PFSIM1-100", "sim-secret", "1234"
REDIRECT = "http://127.0.0.1:8765/oauth/callback"
RAW, PROCESSED, TABLE, SYMBOL, SEED = "raw", "processed", "state", "NSE:INFY-EQ", 3
NOW = datetime(2025, 3, 7, 17, 30, tzinfo=IST)  # a Friday, after the close


class Clock:
    def __init__(self, start: datetime):
        self.t = start.timestamp()

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock():
    return Clock(NOW)


@pytest.fixture
def sim(clock):
    config = SimulatorConfig(app_id=APP_ID, secret_key=SECRET, redirect_uri=REDIRECT, pin=PIN, seed=SEED, clock=clock)
    with SimulatorServer(config, port=0) as server:
        yield server


@pytest.fixture
def access_token(sim, clock):
    async def go() -> str:
        async with aiohttp.ClientSession() as session:
            url = login_url(sim.url, APP_ID, REDIRECT, "state-1")
            async with session.get(url, allow_redirects=False) as resp:
                query = dict(parse_qsl(urlsplit(resp.headers["Location"]).query))
            code = parse_callback(query, expected_state="state-1")
            tokens = await exchange_auth_code(session, sim.url, APP_ID, SECRET, code, now=datetime.now(UTC))
            return tokens.access_token

    token = asyncio.run(go())
    sim.reset_stats()
    return token


@pytest.fixture
def aws(mocked_aws):
    lake = ingest_stores(mocked_aws, RAW, PROCESSED, table=TABLE)
    return lake.s3, lake.watermarks


def execute(sim, clock, token, aws, run_id: str, first: date, last: date, *, incremental: bool,
            symbol: str = SYMBOL) -> dict:
    """One run for one symbol: the plan's symbols.json, the ingest through the real client, the Glue job."""
    s3, watermarks = aws
    prefix = f"ohlcv/runs/{run_id}/"
    run_dates = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    plan = {"from": first.isoformat(), "to": last.isoformat(), "dates": run_dates, "symbols": [symbol]}
    s3.put_object(Bucket=RAW, Key=prefix + "symbols.json", Body=orjson.dumps(plan))
    item = {"symbol": symbol, "from": first.isoformat(), "to": last.isoformat(), "incremental": incremental}
    request = IngestRequest.parse({**item, "run_id": run_id, "ingested_prefix": prefix + "ingested/"})

    async def ingest() -> dict:
        async with FyersClient(sim.url, APP_ID, token, sleep=clock.sleep) as client:
            now = datetime.fromtimestamp(clock.t, UTC)
            return await ingest_symbol(request, client=client, s3=s3, raw_bucket=RAW, watermarks=watermarks, now=now)

    summary = asyncio.run(ingest())
    args = {"raw_bucket": RAW, "processed_bucket": PROCESSED, "symbols_key": prefix + "symbols.json"}
    args.update(ingested_prefix=prefix + "ingested/", result_key=prefix + "aggregate-result.json")
    return {"summary": summary, "aggregate": run_from_job_arguments(args, s3=s3)}


def trading(first: date, last: date) -> list[date]:
    return [d for d in (first + timedelta(days=i) for i in range((last - first).days + 1)) if is_trading_day(d)]


def history_requests(sim) -> int:
    return sim.stats()["requests"].get("/data/history", 0)


def test_a_year_backfill_then_a_scheduled_catch_up_against_the_simulator(sim, clock, access_token, aws):
    # A leap year: 366 IST dates = 4 requests of at most 100 dates, each accepted by the simulator
    backfill = execute(
        sim, clock, access_token, aws, "backfill", date(2024, 1, 1), date(2024, 12, 31), incremental=False
    )

    trading_2024 = trading(date(2024, 1, 1), date(2024, 12, 31))  # the simulator serves the NSE calendar
    minutes_2024 = sum(len(DEFAULT_CALENDAR.minute_starts(d)) for d in trading_2024)
    assert history_requests(sim) == 4
    assert backfill["summary"] == {"symbol": SYMBOL, "candles": minutes_2024, "requests": 4, "dates": len(trading_2024)}
    aggregate = backfill["aggregate"]
    # Holidays serve nothing; Diwali 2024-11-01 served only its Muhurat hour (18:00-19:00 IST), complete.
    assert aggregate["bars"]["1d"] == len(trading_2024) and date(2024, 11, 1) in trading_2024
    assert aggregate["failed"] == [] and aggregate["empty"] == []
    assert aggregate["excluded"]["out_of_session"] == 0
    coverage = aggregate["coverage"]
    assert (coverage["complete"], coverage["with_gaps"], coverage["missing_minutes"]) == (len(trading_2024), 0, 0)

    # The scheduled run of 2025-03-07 resumes at 2025-01-01 00:00 IST and catches up in one request
    scheduled = execute(sim, clock, access_token, aws, "daily", NOW.date(), NOW.date(), incremental=True)

    assert history_requests(sim) == 5
    trading_2025 = trading(date(2025, 1, 1), NOW.date())
    assert scheduled["summary"]["requests"] == 1 and scheduled["summary"]["dates"] == len(trading_2025)
    listed = job_partitions(aws[0], RAW, scheduled["aggregate"])
    written = {p["location"] for p in listed if p["table"] == "bars" and p["timeframe"] == "1d"}
    assert len(written) == len(trading_2025)
    key = paths.processed_key("1m", Symbol("NSE", "INFY-EQ"), NOW.date())
    rows = pq.read_table(io.BytesIO(aws[0].get_object(Bucket=PROCESSED, Key=key)["Body"].read())).to_pylist()
    assert [r["close"] for r in rows] == [c[4] / 100 for c in market.minute_candles(SEED, SYMBOL, NOW.date())]

    # Asked again at once: nothing new has ended, so Fyers is not called
    again = execute(sim, clock, access_token, aws, "daily-2", NOW.date(), NOW.date(), incremental=True)
    assert history_requests(sim) == 5 and again["summary"]["requests"] == 0


def test_a_futures_contract_is_asked_with_its_open_interest_and_raw_keeps_it_verbatim(sim, clock, access_token, aws):
    future, week = "NSE:NIFTY26DECFUT", (date(2025, 3, 3), date(2025, 3, 7))
    run = execute(sim, clock, access_token, aws, "fo", *week, incremental=False, symbol=future)
    s3 = aws[0]
    [key] = [o["Key"] for o in s3.list_objects_v2(Bucket=RAW, Prefix=paths.raw_day_prefix(Symbol.parse(future),
                                                                                          week[0]))["Contents"]]
    candles = orjson.loads(s3.get_object(Bucket=RAW, Key=key)["Body"].read())["response"]["candles"]
    assert {len(c) for c in candles} == {7}  # oi_flag=1 was sent: open interest is the 7th value
    assert [c[6] for c in candles[:3]] == [market.open_interest(SEED, future, c[0]) for c in candles[:3]]
    assert run["aggregate"]["failed"] == [] and run["aggregate"]["coverage"]["with_gaps"] == 0
    for timeframe in paths.TIMEFRAMES:  # every bar has its open interest: the last minute's of the bar
        key = paths.processed_key(timeframe, Symbol.parse(future), week[0])
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=PROCESSED, Key=key)["Body"].read()))
        assert table.column("oi").null_count == 0, timeframe
    first_day = [c for c in candles if datetime.fromtimestamp(c[0], IST).date() == week[0]]
    assert table.column("oi").to_pylist() == [first_day[-1][6]]  # 1d: the session's last minute


def test_fyers_data_defects_are_left_out_of_the_bars_and_counted_by_name_in_the_ledger(sim, clock, access_token, aws):
    sim.set_faults(defects={SYMBOL: ["high_below_open", "volume_sentinel", "non_positive_price"]})
    day = date(2025, 3, 5)
    run = execute(sim, clock, access_token, aws, "defects", day, day, incremental=False)
    s3 = aws[0]
    key = paths.coverage_key(Symbol.parse(SYMBOL), day)
    [row] = pq.read_table(io.BytesIO(s3.get_object(Bucket=PROCESSED, Key=key)["Body"].read())).to_pylist()
    counted = {k.removeprefix("excluded_"): v for k, v in row.items() if k.startswith("excluded_") and v}
    assert counted == {"high_below_open": 1, "volume_sentinel": 1, "non_positive_price": 1}
    assert (row["stored_minutes"], row["missing_minutes"], row["complete"]) == (372, 3, False)
    daily = paths.processed_key("1d", Symbol.parse(SYMBOL), day)
    bars = pq.read_table(io.BytesIO(s3.get_object(Bucket=PROCESSED, Key=daily)["Body"].read())).to_pylist()
    assert bars[0]["volume"] < 429_496_726_000 and bars[0]["low"] > 0  # no defect reached a bar
    assert run["aggregate"]["failed"] == []
    quarantined = paths.quarantine_key(Symbol.parse(SYMBOL), day)
    held = pq.read_table(io.BytesIO(s3.get_object(Bucket=PROCESSED, Key=quarantined)["Body"].read())).to_pylist()
    served = {c[0]: c for c in market.minute_candles(SEED, SYMBOL, day)}
    assert sorted(r["rule"] for r in held) == ["high_below_open", "non_positive_price", "volume_sentinel"]
    for r in held:  # each as Fyers sent it, with the raw object it came from
        minute = int(r["ts"].timestamp())
        assert minute in served and r["raw_object"].startswith(f"s3://{RAW}/ohlcv/raw/symbol=INFY-EQ/")
        assert r["trade_date"] == day and r["raw_row"] is None
    sentinel = next(r for r in held if r["rule"] == "volume_sentinel")
    assert sentinel["volume"] == 429_496_726_000


@pytest.mark.parametrize("late", [False, True])
def test_a_muhurat_session_stamped_late_is_quarantined_whole_and_one_stamped_right_is_kept(
    sim, clock, access_token, aws, late
):
    diwali = date(2023, 11, 12)  # Sunday: the Muhurat hour 18:15-19:15 IST is the day's only session
    if late:
        sim.set_faults(defects={SYMBOL: ["muhurat_late"]})
    run = execute(sim, clock, access_token, aws, f"muhurat-{late}", diwali, diwali, incremental=False)
    s3, symbol = aws[0], Symbol.parse(SYMBOL)
    [row] = pq.read_table(io.BytesIO(s3.get_object(Bucket=PROCESSED, Key=paths.coverage_key(symbol, diwali))
                                     ["Body"].read())).to_pylist()
    assert row["expected_minutes"] == 60 and run["aggregate"]["failed"] == []
    if not late:
        assert (row["stored_minutes"], row["excluded_muhurat_late"], row["complete"]) == (60, 0, True)
        return
    assert (row["stored_minutes"], row["excluded_muhurat_late"], row["excluded_out_of_session"]) == (0, 60, 0)
    held = pq.read_table(io.BytesIO(s3.get_object(Bucket=PROCESSED, Key=paths.quarantine_key(symbol, diwali))
                                    ["Body"].read())).to_pylist()
    stamps = sorted(r["ts"].astimezone(IST).strftime("%H:%M") for r in held)
    assert {r["rule"] for r in held} == {"muhurat_late"} and (stamps[0], stamps[-1]) == ("18:30", "19:29")
