"""Deterministic candles and IST arithmetic of the Fyers simulator (pure functions, no server)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from pricefeed.simulator import market
from pricefeed.simulator.timeutil import ist_date, ist_midnight, next_ist_time, session_open

WED = dt.date(2024, 7, 3)
AFTER = ist_midnight(dt.date(2030, 1, 1))  # "now" far after every tested day


def test_ist_helpers():
    assert ist_midnight(WED) == 1719945000  # 2024-07-02 18:30 UTC
    assert session_open(WED) == 1719978300  # 03:45 UTC
    assert ist_date(ist_midnight(WED)) == WED
    assert ist_date(ist_midnight(WED) - 1) == WED - dt.timedelta(days=1)
    six = ist_midnight(WED) + 6 * 3600
    assert next_ist_time(six - 1, 6) == six
    assert next_ist_time(six, 6) == six + 86_400  # strictly after


def test_weekday_session_has_375_minutes():
    rows = market.minute_candles(0, "NSE:SBIN-EQ", WED)
    assert len(rows) == 375
    assert rows[0][0] == session_open(WED)
    assert rows[-1][0] == session_open(WED) + 374 * 60


@settings(max_examples=40, deadline=None)
@given(
    symbol=st.from_regex(r"NSE:[A-Z]{1,10}-EQ", fullmatch=True),
    seed=st.integers(0, 2**32),
    day=st.dates(dt.date(2017, 7, 3), dt.date(2030, 12, 31)),
)
def test_candles_are_plausible_and_deterministic(symbol, seed, day):
    rows = market.minute_candles(seed, symbol, day)
    for _t, o, h, lo, c, v in rows:
        assert 100_00 <= lo <= min(o, c) <= max(o, c) <= h <= 3000_00
        assert v >= 1
    market.minute_candles.cache_clear()
    assert market.minute_candles(seed, symbol, day) == rows


def test_weekend_and_pre_history_have_no_candles():
    sat, sun = dt.date(2024, 7, 6), dt.date(2024, 7, 7)
    for day in (sat, sun, dt.date(2017, 6, 30)):
        assert market.history(0, "NSE:SBIN-EQ", 1, ist_midnight(day), ist_midnight(day) + 86_399, AFTER) == []


def test_aggregates_divide_the_session_from_0915():
    start, end = ist_midnight(WED), ist_midnight(WED) + 86_399
    one = market.history(0, "NSE:SBIN-EQ", 1, start, end, AFTER)
    five = market.history(0, "NSE:SBIN-EQ", 5, start, end, AFTER)
    fifteen = market.history(0, "NSE:SBIN-EQ", 15, start, end, AFTER)
    daily = market.history(0, "NSE:SBIN-EQ", market.DAILY, start, end, AFTER)
    assert (len(one), len(five), len(fifteen), len(daily)) == (375, 75, 25, 1)
    assert five[0][0] == one[0][0] and five[1][0] == one[5][0]
    first5 = one[:5]
    assert five[0][1:] == [
        first5[0][1],
        max(r[2] for r in first5),
        min(r[3] for r in first5),
        first5[-1][4],
        sum(r[5] for r in first5),
    ]
    assert daily[0][0] == 1719964800  # 00:00 UTC of the trading date
    assert daily[0][5] == sum(r[5] for r in one)
    ist = market.history(0, "NSE:SBIN-EQ", market.DAILY, start, end, AFTER, daily_stamp="ist_midnight")
    assert ist[0][0] == ist_midnight(WED)


def test_range_is_inclusive_at_minute_granularity_and_stops_at_now():
    t0 = session_open(WED)
    # both ends inside a minute include that minute
    rows = market.history(0, "NSE:SBIN-EQ", 1, t0 + 61, t0 + 179, AFTER)
    assert [r[0] for r in rows] == [t0 + 60, t0 + 120]
    now = t0 + 10 * 60 + 30  # half way through the 11th minute
    live = market.history(0, "NSE:SBIN-EQ", 1, t0, t0 + 3600, now)
    assert [r[0] for r in live] == [t0 + 60 * i for i in range(11)]
    final = market.history(0, "NSE:SBIN-EQ", 1, t0, t0 + 3600, AFTER)
    assert live[:10] == final[:10]
    forming, done = live[10], final[10]
    assert forming[1] == done[1] and forming[5] <= done[5]
    assert forming[3] <= min(forming[1], forming[4]) <= max(forming[1], forming[4]) <= forming[2]
