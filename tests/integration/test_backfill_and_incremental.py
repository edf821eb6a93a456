"""Ingest then aggregate, on emulated S3 + DynamoDB: a backfill's bars, and scheduled runs without duplicates.

Fyers is replaced at the network boundary by a fake answering from the simulator's market model, so
the bars can be checked against the candles the simulator would serve.
"""

import asyncio
import io
import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest

from awskit import ingest_stores
from fyerskit import history_answer
from pricefeed.aggregate.arguments import run_from_job_arguments
from pricefeed.aggregate.catalog import job_partitions
from pricefeed.fyers.client import HistoryResponse
from pricefeed.ingest.item import IngestRequest
from pricefeed.ingest.symbol_range import SETTLE_S, ingest_symbol
from pricefeed.lake import paths
from pricefeed.simulator import market
from pricefeed.symbol import Symbol
from pricefeed.trading_calendar import is_trading_day

IST = ZoneInfo("Asia/Kolkata")
RAW, PROCESSED, TABLE, SYMBOL = "raw", "processed", "state", "NSE:SBIN-EQ"
SEED = 5


class FakeFyers:
    """Answers like the simulator at ``now`` and records each call's range."""

    def __init__(self, now: datetime):
        self.now = now
        self.calls: list[tuple[int, int]] = []
        self.summary: dict = {}  # what the ingest returned (the Map item's result)

    async def history(self, symbol: str, resolution: str, range_from: int, range_to: int) -> HistoryResponse:
        self.calls.append((range_from, range_to))
        candles = market.history(SEED, symbol, 1, range_from, range_to, self.now.timestamp())
        fetched_at = self.now + timedelta(milliseconds=len(self.calls))
        return history_answer(symbol, range_from, range_to, candles, fetched_at)


@pytest.fixture
def aws(mocked_aws):
    return ingest_stores(mocked_aws, RAW, PROCESSED, table=TABLE)


def ist(*args) -> int:
    return int(datetime(*args, tzinfo=IST).timestamp())


def run_pipeline(
    aws, run_id: str, first: str, last: str, *, incremental: bool, now: datetime
) -> tuple[FakeFyers, dict]:
    """What one execution does for one symbol: plan's files, the ingest item, then the Glue job."""
    prefix = f"ohlcv/runs/{run_id}/"
    days = [
        date.fromisoformat(first) + timedelta(days=i)
        for i in range((date.fromisoformat(last) - date.fromisoformat(first)).days + 1)
    ]
    plan = {
        "from": first,
        "to": last,
        "incremental": incremental,
        "dates": [d.isoformat() for d in days],
        "symbols": [SYMBOL],
    }
    aws.s3.put_object(Bucket=RAW, Key=prefix + "symbols.json", Body=json.dumps(plan).encode())
    item = {"symbol": SYMBOL, "from": first, "to": last, "incremental": incremental, "run_id": run_id}
    request = IngestRequest.parse({**item, "ingested_prefix": prefix + "ingested/"})
    client = FakeFyers(now)
    stores = {"s3": aws.s3, "raw_bucket": RAW, "watermarks": aws.watermarks}
    client.summary = asyncio.run(ingest_symbol(request, client=client, now=now, **stores))
    args = {"raw_bucket": RAW, "processed_bucket": PROCESSED, "symbols_key": prefix + "symbols.json"}
    args.update(ingested_prefix=prefix + "ingested/", result_key=prefix + "aggregate-result.json")
    return client, run_from_job_arguments(args, s3=aws.s3)


def key_date(key: str) -> date:
    parts = dict(p.split("=") for p in key.split("/") if "=" in p)
    return date(int(parts["year"]), int(parts["month"]), int(parts["day"]))


def one_minute(aws, day: date) -> list[dict]:
    key = paths.processed_key("1m", Symbol("NSE", "SBIN-EQ"), day)
    return pq.read_table(io.BytesIO(aws.s3.get_object(Bucket=PROCESSED, Key=key)["Body"].read())).to_pylist()


def served_closes(day: date, until: datetime) -> list[float]:
    """The closes the simulator serves for ``day`` as final by ``until``."""
    return [c[4] / 100 for c in market.minute_candles(SEED, SYMBOL, day) if c[0] + 60 <= until.timestamp()]


def test_a_year_backfill_aggregated_through_its_manifest_has_bars_for_every_trading_day(aws):
    now = datetime(2026, 11, 26, 17, 0, tzinfo=IST)

    client, result = run_pipeline(aws, "backfill", "2025-01-01", "2025-12-31", incremental=False, now=now)

    year = [date(2025, 1, 1) + timedelta(days=i) for i in range(365)]
    trading = [d for d in year if is_trading_day(d)]  # the simulator serves the NSE calendar's sessions
    assert len(client.calls) == 4
    days_1m = sorted(
        date(2025, int(p["month"]), int(p["day"]))
        for p in job_partitions(aws.s3, RAW, result)
        if p["table"] == "bars" and p["timeframe"] == "1m"
    )
    assert days_1m == trading
    # Diwali 2025-10-21 is a holiday with a Muhurat session: 13:45-14:45 IST is all it keeps (60 minutes)
    muhurat, regular = date(2025, 10, 21), len(trading) - 1
    assert muhurat in trading
    assert result["bars"] == {
        "1m": 375 * regular + 60,
        "5m": 75 * regular + 12,
        "15m": 25 * regular + 4,
        "1d": len(trading),
    }
    manifest_key = paths.ingested_manifest_key("ohlcv/runs/backfill/ingested/", Symbol.parse(SYMBOL))
    envelopes = json.loads(aws.s3.get_object(Bucket=RAW, Key=manifest_key)["Body"].read())["raw_keys"]
    closed_start = [k for k in envelopes if key_date(k) not in trading]
    # every trading day's object (envelope or reference) read once, plus an envelope starting on a closed day
    assert result["raw_reads"] == len(trading) + len(closed_start)
    assert result["failed"] == [] and result["empty"] == []  # holidays served nothing: no day to rebuild
    assert result["excluded"] == dict.fromkeys(result["excluded"], 0)
    assert result["coverage"]["complete"] == len(trading) and result["coverage"]["holidays"] == 0
    for day in (trading[0], trading[100], trading[-1]):  # a window's first day, one inside, the last
        assert [r["close"] for r in one_minute(aws, day)] == served_closes(day, now)


def test_two_scheduled_runs_in_a_day_ask_only_what_is_new_and_leave_no_duplicate_bars(aws):
    today = date(2026, 11, 26)
    midday = datetime(2026, 11, 26, 12, 0, 30, tzinfo=IST)
    evening = datetime(2026, 11, 26, 16, 0, 10, tzinfo=IST)

    first, after_first = run_pipeline(aws, "s1", "2026-11-26", "2026-11-26", incremental=True, now=midday)
    assert first.calls == [(ist(2026, 11, 26), ist(2026, 11, 26, 11, 59, 59))]
    assert [r["close"] for r in one_minute(aws, today)] == served_closes(today, midday)
    assert after_first["bars"]["1m"] == 165  # 09:15 .. 11:59

    second, after_second = run_pipeline(aws, "s2", "2026-11-26", "2026-11-26", incremental=True, now=evening)
    # From the first run's last settled minute: the 2 minutes still live at noon are asked again.
    assert second.calls == [(ist(2026, 11, 26, 12, 0) - SETTLE_S, ist(2026, 11, 26, 15, 59, 59))]
    rows = one_minute(aws, today)
    assert len(rows) == len({r["ts"] for r in rows}) == 375
    assert [r["close"] for r in rows] == served_closes(today, evening)
    assert after_second["excluded"]["superseded"] == SETTLE_S // 60  # asked twice, the newer answer kept
    daily = pq.read_table(
        io.BytesIO(
            aws.s3.get_object(Bucket=PROCESSED, Key=paths.processed_key("1d", Symbol("NSE", "SBIN-EQ"), today))[
                "Body"
            ].read()
        )
    ).to_pylist()
    assert len(daily) == 1 and daily[0]["bars"] == 375


def test_a_scheduled_run_with_nothing_new_rebuilds_the_day_unchanged(aws):
    evening = datetime(2026, 11, 26, 16, 0, 10, tzinfo=IST)
    run_pipeline(aws, "s1", "2026-11-26", "2026-11-26", incremental=True, now=evening)
    before = one_minute(aws, date(2026, 11, 26))

    again, result = run_pipeline(
        aws, "s2", "2026-11-26", "2026-11-26", incremental=True, now=evening + timedelta(seconds=20)
    )

    assert again.calls == []
    assert one_minute(aws, date(2026, 11, 26)) == before and result["bars"]["1m"] == 375


def test_a_long_catch_up_is_spread_over_runs_oldest_first_and_skips_nothing(aws):
    # Given a symbol whose state has 24 holes, each a trading day ~4 months from the next (no request can share)
    from pricefeed.ingest.settled import Settled, Stretch
    from pricefeed.ingest.symbol_range import MAX_CATCH_UP_REQUESTS

    symbol = Symbol.parse(SYMBOL)
    holes = []
    day = date(2018, 1, 1)
    while len(holes) < 24:
        day += timedelta(days=1)
        if is_trading_day(day):
            opens, closes = ist(day.year, day.month, day.day, 9, 15), ist(day.year, day.month, day.day, 15, 30)
            holes.append(Stretch(opens, closes - 1, "hole"))
            day += timedelta(days=120)
    evening = datetime(2026, 11, 26, 16, 0, 10, tzinfo=IST)
    frontier = ist(2026, 11, 26, 15, 0) - 1
    aws.watermarks.update(symbol, lambda _: Settled(frontier, tuple(holes)), "seed")

    # When two scheduled runs go
    first, after_first = run_pipeline(aws, "c1", "2026-11-26", "2026-11-26", incremental=True, now=evening)
    left = aws.watermarks.load(symbol).open
    later = evening + timedelta(minutes=1)
    second, _ = run_pipeline(aws, "c2", "2026-11-26", "2026-11-26", incremental=True, now=later)

    # Then the first asked the 20 oldest holes and said how many requests are left; the second the rest
    assert len(first.calls) == MAX_CATCH_UP_REQUESTS == 20
    assert first.calls == [(h.first, h.last) for h in holes[:20]]
    assert first.summary["requests_left"] == 5 and "requests_left" not in second.summary
    assert left == tuple(holes[20:])  # the four newest, still open: nothing skipped
    assert [c[0] for c in second.calls] == [h.first for h in holes[20:]] + [frontier + 1]
    assert aws.watermarks.load(symbol).open == ()
    assert after_first["bars"]["1m"] == 20 * 375
