"""ingest_symbol against emulated S3 + DynamoDB: what a backfill or a scheduled run asks Fyers, and what it stores.

The Fyers client is replaced at the network boundary by a fake that answers from the simulator's market
model (the same candles the simulator serves) and records every call.
"""

import asyncio
import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from awskit import ingest_stores
from fyerskit import history_answer
from pricefeed.aggregate.candles import read_envelope
from pricefeed.errors import TransientFyersError
from pricefeed.fyers.client import HistoryResponse
from pricefeed.fyers.windows import request_windows
from pricefeed.ingest.item import IngestRequest
from pricefeed.ingest.settled import Settled, Stretch
from pricefeed.ingest.symbol_range import SETTLE_S, ingest_symbol
from pricefeed.lake import paths
from pricefeed.simulator import market
from pricefeed.symbol import Symbol
from pricefeed.trading_calendar import DEFAULT_CALENDAR, is_trading_day

IST = ZoneInfo("Asia/Kolkata")
RAW, TABLE, SYMBOL = "raw", "state", "NSE:SBIN-EQ"
PREFIX = "ohlcv/runs/r1/ingested/"
NOW = datetime(2026, 11, 26, 17, 0, 30, tzinfo=IST)  # a Thursday, after the close
SEED = 11


def ist(*args) -> int:
    return int(datetime(*args, tzinfo=IST).timestamp())


def dates(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


class FakeFyers:
    """Answers like the simulator at ``now``; records each call; can fail on call number ``fail_on``.

    ``overreach``: answer up to ``now`` whatever ``range_to`` says (so the minute in progress comes back forming).
    """

    def __init__(self, now: datetime = NOW, *, fail_on: int | None = None, overreach: bool = False):
        self.now, self.fail_on, self.overreach = now, fail_on, overreach
        self.calls: list[tuple[int, int]] = []

    async def history(self, symbol: str, resolution: str, range_from: int, range_to: int) -> HistoryResponse:
        assert (symbol, resolution) == (SYMBOL, "1")
        self.calls.append((range_from, range_to))
        if len(self.calls) == self.fail_on:
            raise TransientFyersError(f"history {symbol}: HTTP 503 (simulated)")
        now = self.now.timestamp()
        candles = market.history(SEED, symbol, 1, range_from, now if self.overreach else range_to, now)
        fetched_at = self.now + timedelta(milliseconds=len(self.calls))  # each answer a distinct file name
        return history_answer(symbol, range_from, range_to, candles, fetched_at)


@pytest.fixture
def aws(mocked_aws):
    return ingest_stores(mocked_aws, RAW, table=TABLE)


def run(aws, client: FakeFyers, first: str, last: str | None = None, *, incremental=False, now=None) -> dict:
    item = {"symbol": SYMBOL, "from": first, "to": last or first, "incremental": incremental}
    request = IngestRequest.parse({**item, "ingested_prefix": PREFIX})
    return asyncio.run(
        ingest_symbol(request, client=client, s3=aws.s3, raw_bucket=RAW, watermarks=aws.watermarks, now=now or NOW)
    )


def settled_through(aws, frontier: int) -> None:
    """The symbol's state as an earlier run left it: settled through ``frontier``, nothing open."""
    aws.watermarks.update(Symbol.parse(SYMBOL), lambda _: Settled(frontier), "older")


def raw_objects(aws) -> dict[str, dict]:
    keys = [
        o["Key"]
        for page in aws.s3.get_paginator("list_objects_v2").paginate(
            Bucket=RAW, Prefix=paths.raw_symbol_prefix(Symbol.parse(SYMBOL))
        )
        for o in page.get("Contents", [])
    ]
    return {k: json.loads(aws.s3.get_object(Bucket=RAW, Key=k)["Body"].read()) for k in keys}


def key_date(key: str) -> date:
    parts = dict(p.split("=") for p in key.split("/") if "=" in p)
    return date(int(parts["year"]), int(parts["month"]), int(parts["day"]))


def manifest(aws) -> dict:
    key = paths.ingested_manifest_key(PREFIX, Symbol.parse(SYMBOL))
    return json.loads(aws.s3.get_object(Bucket=RAW, Key=key)["Body"].read())


def trading(first: date, last: date) -> list[date]:
    """The days the simulator serves: the NSE calendar's (holidays none, Muhurat days their session)."""
    return [d for d in dates(first, last) if is_trading_day(d)]


def test_a_year_backfill_is_four_requests_and_every_date_has_a_raw_object_under_its_own_day(aws):
    client = FakeFyers()

    summary = run(aws, client, "2025-01-01", "2025-12-31")

    year = dates(date(2025, 1, 1), date(2025, 12, 31))
    assert client.calls == request_windows(ist(2025, 1, 1), ist(2026, 1, 1) - 1)
    assert len(client.calls) == 4
    objects = raw_objects(aws)
    envelopes = {k: v for k, v in objects.items() if "response" in v}
    references = {k: v for k, v in objects.items() if "ref" in v}
    assert len(envelopes) == 4 and len(references) == len(year) - 4
    assert sorted(key_date(k) for k in objects) == year  # one object per IST date, each under its own day
    for key, ref in references.items():
        target = envelopes[ref["ref"]]
        assert target["trading_date"] < ref["trading_date"] == key_date(key).isoformat() <= target["last_trading_date"]
        assert key.rsplit("/", 1)[1] == ref["ref"].rsplit("/", 1)[1]  # same file name as its envelope
    trading_days = trading(year[0], year[-1])
    minutes = sum(len(DEFAULT_CALENDAR.minute_starts(d)) for d in trading_days)
    assert manifest(aws) == {
        "symbol": SYMBOL,
        "requests": 4,
        "raw_keys": sorted(envelopes),
        "dates": [d.isoformat() for d in trading_days],
        "covered_from": ist(2025, 1, 1),
        "covered_to": ist(2026, 1, 1) - 1,
    }
    unsettled = {"open_stretches": 1, "holes": 0, "empty_awaiting_recheck": 1}
    assert summary == {
        "symbol": SYMBOL,
        "candles": minutes,
        "requests": 4,
        "dates": len(trading_days),
        "unsettled": unsettled,
    }
    assert 375 * (len(trading_days) - 1) < minutes < 375 * len(trading_days)  # Diwali 2025: a Muhurat hour
    state = aws.watermarks.load(Symbol.parse(SYMBOL))
    assert state.through == ist(2026, 1, 1) - 1
    # The first window ends on 2025-04-10, a holiday the Lambda cannot tell from a cut answer: its session is
    # left open, to be asked once more by a later run before it is accepted as empty.
    holiday = Stretch(ist(2025, 4, 10, 9, 15), ist(2025, 4, 10, 15, 30) - 1, "empty", NOW.timestamp() + 0.001)
    assert state.open == (holiday,)


def test_each_envelope_holds_fyers_answer_verbatim_and_says_which_dates_it_covers(aws):
    client = FakeFyers()
    run(aws, client, "2025-01-01", "2025-04-30")
    first = next(v for k, v in raw_objects(aws).items() if "response" in v and v["trading_date"] == "2025-01-01")
    assert (first["range_from"], first["range_to"]) == client.calls[0]
    assert first["last_trading_date"] == "2025-04-10"
    assert first["response"]["candles"][0][0] == ist(2025, 1, 1, 9, 15)


def test_a_range_reaching_before_2017_07_03_starts_there(aws):
    client = FakeFyers()
    run(aws, client, "2017-06-01", "2017-07-31")
    assert client.calls == [(ist(2017, 7, 3), ist(2017, 8, 1) - 1)]
    assert min(key_date(k) for k in raw_objects(aws)) == date(2017, 7, 3)


def test_a_range_entirely_before_minute_history_asks_nothing_and_says_so(aws):
    client = FakeFyers()
    summary = run(aws, client, "2016-01-01", "2017-07-02")
    assert client.calls == [] and raw_objects(aws) == {}
    assert summary["requests"] == 0 and "2017-07-03" in summary["note"]
    assert manifest(aws)["requests"] == 0 and manifest(aws)["covered_from"] is None
    assert aws.watermarks.get(Symbol.parse(SYMBOL)) is None


def test_scheduled_runs_ask_only_from_the_last_stored_minute(aws):
    today = "2026-11-26"
    first = FakeFyers(datetime(2026, 11, 26, 12, 0, 30, tzinfo=IST))
    run(aws, first, today, incremental=True, now=first.now)
    assert first.calls == [(ist(2026, 11, 26), ist(2026, 11, 26, 11, 59, 59))]
    # The market was live up to the end of the range: its last SETTLE_S are asked again next time.
    assert aws.watermarks.get(Symbol.parse(SYMBOL)) == ist(2026, 11, 26, 12, 0) - 1 - SETTLE_S

    second = FakeFyers(datetime(2026, 11, 26, 16, 0, 10, tzinfo=IST))
    run(aws, second, today, incremental=True, now=second.now)
    assert second.calls == [(ist(2026, 11, 26, 11, 58), ist(2026, 11, 26, 15, 59, 59))]
    # After the close the range's end is quiet: stored through its last second.
    assert aws.watermarks.get(Symbol.parse(SYMBOL)) == ist(2026, 11, 26, 15, 59, 59)

    again = FakeFyers(datetime(2026, 11, 26, 16, 0, 50, tzinfo=IST))  # same minute: nothing new has ended
    summary = run(aws, again, today, incremental=True, now=again.now)
    assert again.calls == [] and summary["requests"] == 0 and "settled through" in summary["note"]
    assert manifest(aws)["dates"] == []

    later = FakeFyers(datetime(2026, 11, 26, 16, 1, 5, tzinfo=IST))
    run(aws, later, today, incremental=True, now=later.now)
    assert later.calls == [(ist(2026, 11, 26, 16, 0), ist(2026, 11, 26, 16, 0, 59))]


def test_a_scheduled_run_after_missed_days_catches_up_in_one_request(aws):
    settled_through(aws, ist(2026, 11, 21) - 1)  # last stored: Friday the 20th
    client = FakeFyers()
    summary = run(aws, client, "2026-11-26", incremental=True)
    assert client.calls == [(ist(2026, 11, 21), ist(2026, 11, 26, 17, 0) - 1)]
    assert sorted(key_date(k) for k in raw_objects(aws)) == dates(date(2026, 11, 21), date(2026, 11, 26))
    # 2026-11-24 is an NSE holiday: no candles, so not a date of the manifest.
    assert manifest(aws)["dates"] == ["2026-11-23", "2026-11-25", "2026-11-26"]
    assert summary["dates"] == 3


def test_a_crash_after_two_of_four_windows_leaves_the_watermark_so_the_retry_asks_again(aws):
    settled_through(aws, ist(2025, 1, 1) - 1)
    crashing = FakeFyers(fail_on=3)

    with pytest.raises(TransientFyersError):
        run(aws, crashing, "2025-01-01", "2025-12-31")

    assert crashing.calls == request_windows(ist(2025, 1, 1), ist(2026, 1, 1) - 1)[:3]
    assert aws.watermarks.get(Symbol.parse(SYMBOL)) == ist(2025, 1, 1) - 1
    assert not aws.s3.list_objects_v2(Bucket=RAW, Prefix=PREFIX).get("KeyCount")  # no manifest: nothing to aggregate
    retry = FakeFyers(NOW + timedelta(minutes=1))
    run(aws, retry, "2025-01-01", "2025-12-31", now=retry.now)
    assert retry.calls == request_windows(ist(2025, 1, 1), ist(2026, 1, 1) - 1)
    assert aws.watermarks.get(Symbol.parse(SYMBOL)) == ist(2026, 1, 1) - 1


def test_a_crashed_scheduled_catch_up_resumes_from_the_same_watermark(aws):
    watermark = ist(2026, 7, 1) - 1
    settled_through(aws, watermark)
    crashing = FakeFyers(fail_on=2)  # 149 dates: two windows
    with pytest.raises(TransientFyersError):
        run(aws, crashing, "2026-11-26", incremental=True)
    assert aws.watermarks.get(Symbol.parse(SYMBOL)) == watermark

    retry = FakeFyers()
    run(aws, retry, "2026-11-26", incremental=True)
    assert retry.calls == crashing.calls and retry.calls[0][0] == watermark + 1
    assert aws.watermarks.get(Symbol.parse(SYMBOL)) == ist(2026, 11, 26, 17, 0) - 1


def test_no_data_is_a_stored_answer_that_moves_the_watermark(aws):
    client = FakeFyers()
    summary = run(aws, client, "2026-11-21", "2026-11-22")  # a weekend
    objects = raw_objects(aws)
    envelope = next(v for v in objects.values() if "response" in v)
    assert envelope["response"] == {"s": "no_data"}
    assert sorted(key_date(k) for k in objects) == [date(2026, 11, 21), date(2026, 11, 22)]
    assert summary == {"symbol": SYMBOL, "candles": 0, "requests": 1, "dates": 0}
    assert manifest(aws)["dates"] == [] and manifest(aws)["requests"] == 1
    assert aws.watermarks.get(Symbol.parse(SYMBOL)) == ist(2026, 11, 23) - 1


def test_a_candle_still_forming_is_kept_raw_but_never_counted_as_a_stored_day(aws):
    # Fyers answering past range_to: at 10:07:30 IST it also sends the 10:07 candle, still forming.
    now = datetime(2026, 11, 26, 10, 7, 30, tzinfo=IST)
    client = FakeFyers(now, overreach=True)
    run(aws, client, "2026-11-26", now=now)
    assert client.calls == [(ist(2026, 11, 26), ist(2026, 11, 26, 10, 6, 59))]
    raw_key, body = next(iter(raw_objects(aws).items()))
    assert body["response"]["candles"][-1][0] == ist(2026, 11, 26, 10, 7)  # kept verbatim
    parsed = read_envelope(aws.s3.get_object(Bucket=RAW, Key=raw_key)["Body"].read(), source=raw_key).candles()
    assert parsed.ts[-1] == ist(2026, 11, 26, 10, 6) and parsed.excluded["forming"] == 1


def test_a_day_whose_only_candle_is_forming_is_not_listed_for_aggregation(aws):
    now = datetime(2026, 11, 26, 9, 15, 20, tzinfo=IST)
    run(aws, FakeFyers(now, overreach=True), "2026-11-26", now=now)
    assert manifest(aws)["dates"] == []


def test_without_a_state_table_a_scheduled_run_asks_the_whole_day_so_far(aws):
    client = FakeFyers()
    request = IngestRequest.parse({"symbol": SYMBOL, "from": "2026-11-26", "to": "2026-11-26", "incremental": True})
    summary = asyncio.run(ingest_symbol(request, client=client, s3=aws.s3, raw_bucket=RAW, now=NOW))
    assert client.calls == [(ist(2026, 11, 26), ist(2026, 11, 26, 17, 0) - 1)]
    assert summary["candles"] == 375 and aws.s3.list_objects_v2(Bucket=RAW, Prefix=PREFIX)["KeyCount"] == 0
