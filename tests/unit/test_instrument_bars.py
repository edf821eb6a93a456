"""Bars on an instrument's own sessions: an MCX day of 09:00-23:55, a currency day of 09:00-17:00, buckets counted
from the session's open; minutes outside the instrument's sessions are quarantined, not the evening of MCX."""

from datetime import UTC, date, datetime, time

import orjson
import pytest

from pricefeed.aggregate.bars import build_bars
from pricefeed.aggregate.candles import parse_envelope
from pricefeed.aggregate.ledger import day_coverage
from pricefeed.istime import IST, ist_day_range
from pricefeed.lake.envelope import build_envelope
from pricefeed.market_hours import Hours
from pricefeed.symbol import Symbol
from pricefeed.trading_calendar import DEFAULT_CALENDAR

DAY = date(2025, 11, 25)  # a Tuesday after the US left daylight saving time: MCX closes at 23:55
FETCHED = datetime(2025, 11, 26, 3, tzinfo=UTC)


def at(hour: int, minute: int) -> int:
    return int(datetime.combine(DAY, time(hour, minute), tzinfo=IST).timestamp())


def day_of(symbol: str, first: tuple[int, int], count: int, *, extra: list[int] = (), calendar=DEFAULT_CALENDAR):
    start = at(*first)
    stamps = [start + 60 * m for m in range(count)] + list(extra)
    rows = [[t, 100.0, 101.0, 99.0, 100.5, 10, 5000] for t in sorted(stamps)]
    lo, hi = ist_day_range(DAY)
    raw = build_envelope(symbol=symbol, resolution="1", range_from=lo, range_to=hi, trading_date=DAY,
                         fetched_at=FETCHED, http_status=200, body=orjson.dumps({"s": "ok", "candles": rows}))
    parsed = parse_envelope(raw, source="s3://raw/k", calendar=calendar)
    return build_bars(Symbol.parse(symbol), DAY, [parsed], calendar=calendar)


def starts(day, timeframe: str) -> list[str]:
    return [t.astimezone(IST).strftime("%H:%M") for t in day.tables[timeframe].column("ts").to_pylist()]


def test_an_mcx_day_is_complete_with_its_evening_and_only_minutes_beyond_its_sessions_are_left_out():
    day = day_of("MCX:GOLD27FEBFUT", (9, 0), 895, extra=[at(8, 59), at(23, 55)])
    assert day.rows == {"1m": 895, "5m": 179, "15m": 60, "1d": 1}
    assert day.excluded["out_of_session"] == 2 and day.quarantine.num_rows == 2
    assert starts(day, "5m")[:2] == ["09:00", "09:05"] and starts(day, "15m")[-1] == "23:45"
    assert day.tables["15m"].column("bars").to_pylist()[-1] == 10  # 23:45-23:54
    coverage = day_coverage(day)
    assert (coverage.expected_minutes, coverage.missing_minutes) == (895, 0)
    assert coverage.sessions == ("09:00-23:55",)


def test_a_currency_day_is_09_00_to_17_00():
    day = day_of("NSE:USDINR26DECFUT", (9, 0), 480, extra=[at(17, 0)])
    assert day.rows == {"1m": 480, "5m": 96, "15m": 32, "1d": 1}
    assert (day_coverage(day).expected_minutes, day_coverage(day).missing_minutes) == (480, 0)
    assert day.excluded["out_of_session"] == 1


def test_an_nse_cash_day_still_leaves_the_mcx_hours_out():
    day = day_of("NSE:SBIN-EQ", (9, 0), 480)
    assert day.rows["1m"] == 375 and day.excluded["out_of_session"] == 105


@pytest.mark.parametrize(("cell", "five", "fifteen"), [("0907-1530", ["09:07", "09:12"], ["09:07", "09:22"]),
                                                      ("0915-1530", ["09:15", "09:20"], ["09:15", "09:30"])])
def test_buckets_are_counted_from_the_sessions_open(cell, five, fifteen):
    symbol = Symbol.parse("NSE:SBIN-EQ")
    calendar = DEFAULT_CALENDAR.with_hours({str(symbol): Hours.of(symbol, "NSE_CM", cell)})
    opens = (int(cell[:2]), int(cell[2:4]))
    day = day_of(str(symbol), opens, 30, calendar=calendar)
    assert starts(day, "5m")[:2] == five and starts(day, "15m")[:2] == fifteen
