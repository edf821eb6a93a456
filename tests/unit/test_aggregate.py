"""Bar building: checked against a plain-Python reference on random candle sets, plus the fixed facts
(full-session counts, bucket starts, the 1d timestamp, host-TZ independence)."""

import os
import time as time_module
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pricefeed.aggregate import BAR_SCHEMA, build_bars
from pricefeed.candles import EXCLUSION_REASONS, parse_envelope
from pricefeed.errors import InvalidInput
from pricefeed.raw import build_envelope

IST = ZoneInfo("Asia/Kolkata")
DAY = date(2025, 11, 25)
SYMBOL = "NSE:M&M-EQ"
OPEN = int(datetime.combine(DAY, time(9, 15), tzinfo=IST).timestamp())
AFTER_CLOSE = datetime(2025, 11, 25, 12, tzinfo=UTC)


def raw_envelope(rows: list, fetched_at: datetime, symbol: str = SYMBOL) -> bytes:
    return build_envelope(
        symbol=symbol,
        resolution="1",
        range_from=OPEN,
        range_to=OPEN + 22499,
        trading_date=DAY,
        fetched_at=fetched_at,
        http_status=200,
        body=orjson.dumps({"s": "ok", "candles": rows}),
    )


def bars_of(envelopes: list[tuple[list, datetime]], symbol: str = SYMBOL):
    parsed = [
        parse_envelope(raw_envelope(rows, fetched, symbol), source=f"s3://raw/k{i}")
        for i, (rows, fetched) in enumerate(envelopes)
    ]
    return build_bars(symbol, DAY, parsed)


def full_session(close_offset: float = 0.0) -> list:
    return [[OPEN + 60 * m, 100.0 + m, 101.0 + m, 99.0 + m, 100.5 + m + close_offset, m + 1] for m in range(375)]


# --- the reference: the rules written as plainly as possible -----------------------------------
def reference(envelopes: list[tuple[list, datetime]]) -> tuple[dict[str, list[dict]], Counter]:
    excluded: Counter = Counter()
    minutes: dict[int, list] = {}
    ordered = sorted(enumerate(envelopes), key=lambda e: (e[1][1], f"s3://raw/k{e[0]}"))
    for _, (rows, fetched) in ordered:
        latest: dict[int, list] = {}
        for row in rows:
            reason = why_excluded(row, fetched)
            if reason:
                excluded[reason] += 1
                continue
            if int(row[0]) in latest:
                excluded["duplicate"] += 1
            latest[int(row[0])] = row
        for ts, row in latest.items():
            if ts in minutes:
                excluded["superseded"] += 1
            minutes[ts] = row

    def bucket_start(ts: int, timeframe: str) -> datetime:
        wall = datetime.fromtimestamp(ts, IST)
        if timeframe == "1d":
            return datetime.combine(wall.date(), time(0), tzinfo=IST)
        width = {"1m": 1, "5m": 5, "15m": 15}[timeframe]
        of_day = wall.hour * 60 + wall.minute
        floored = of_day - of_day % width
        return datetime.combine(wall.date(), time(floored // 60, floored % 60), tzinfo=IST)

    out = {}
    for timeframe in ("1m", "5m", "15m", "1d"):
        groups: dict[datetime, list] = {}
        for ts in sorted(minutes):
            groups.setdefault(bucket_start(ts, timeframe), []).append(minutes[ts])
        out[timeframe] = [
            {
                "ts": start,
                "open": float(rows[0][1]),
                "high": float(max(r[2] for r in rows)),
                "low": float(min(r[3] for r in rows)),
                "close": float(rows[-1][4]),
                "volume": int(sum(r[5] for r in rows)),
                "bars": len(rows),
                "trade_date": DAY,
                "symbol": "M&M-EQ",
                "exchange": "NSE",
                "timeframe": timeframe,
            }
            for start, rows in groups.items()
        ]
    return out, excluded


def why_excluded(row, fetched: datetime) -> str | None:
    numbers = isinstance(row, list) and len(row) in (6, 7)
    if not numbers or any(type(x) not in (int, float) for x in row[:6]):
        return "malformed_row"
    ts, o, h, low, c, v = row[:6]
    if ts != int(ts) or ts % 60:
        return "bad_ts"
    if h < max(o, c) or low > min(o, c) or low > h:
        return "invalid_ohlc"
    if v < 0 or v != int(v):
        return "bad_volume"
    wall = datetime.fromtimestamp(ts, IST)
    if wall.date() != DAY or not time(9, 15) <= wall.time() <= time(15, 29):
        return "out_of_session"
    if datetime.fromtimestamp(ts + 60, UTC) > fetched:
        return "forming"
    return None


# --- random candle sets ---------------------------------------------------------------------------
prices = st.integers(90, 110).map(float)
minutes = st.one_of(st.integers(-3, 12), st.integers(365, 378), st.integers(-1000, 1000))


@st.composite
def candles(draw):
    ts = OPEN + 60 * draw(minutes)
    o, c = draw(prices), draw(prices)
    h = max(o, c) + draw(st.integers(0, 2))
    low = min(o, c) - draw(st.integers(0, 2))
    volume = draw(st.integers(0, 10**9))
    kind = draw(st.sampled_from(["ok"] * 8 + ["oi", "ohlc", "volume", "ts", "string", "short"]))
    row = [ts, o, h, low, c, volume]
    if kind == "oi":
        row.append(draw(st.integers(0, 100)))
    elif kind == "ohlc":
        row = [ts, o, draw(prices), draw(prices), c, volume]
    elif kind == "volume":
        row[5] = -1 - volume
    elif kind == "ts":
        row[0] = ts + draw(st.integers(1, 59))
    elif kind == "string":
        row[1] = str(o)
    elif kind == "short":
        row = row[:5]
    return row


SESSION_START = datetime.fromtimestamp(OPEN, UTC)
fetch_times = st.one_of(
    # after the close, distinct, so the newest-wins order matters
    st.integers(0, 3600).map(lambda s: AFTER_CLOSE + timedelta(seconds=s)),
    # during the session, so the last candles may still be forming; exactly at a minute end or not
    st.integers(0, 400).map(lambda m: SESSION_START + timedelta(minutes=m)),
    st.integers(0, 400 * 60_000_000).map(lambda us: SESSION_START + timedelta(microseconds=us)),
)
envelope_sets = st.lists(st.tuples(st.lists(candles(), max_size=40), fetch_times), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(envelope_sets)
def test_bars_match_the_reference(envelopes):
    day = bars_of(envelopes)
    expected, excluded = reference(envelopes)
    for timeframe, rows in expected.items():
        assert day.tables[timeframe].to_pylist() == rows, timeframe
    assert day.excluded == {reason: excluded[reason] for reason in EXCLUSION_REASONS}
    received = sum(len(rows) for rows, _ in envelopes)
    assert received == day.rows["1m"] + sum(day.excluded.values())  # nothing dropped silently


def test_schema_is_exact():
    day = bars_of([(full_session(), AFTER_CLOSE)])
    for table in day.tables.values():
        assert table.schema == BAR_SCHEMA
    assert BAR_SCHEMA.field("ts").type == pa.timestamp("us", tz="UTC")
    assert BAR_SCHEMA.names == ("ts open high low close volume bars trade_date symbol exchange timeframe".split())


def test_full_session_counts_and_bucket_starts():
    day = bars_of([(full_session(), AFTER_CLOSE)])
    assert day.rows == {"1m": 375, "5m": 75, "15m": 25, "1d": 1}
    five = [t.astimezone(IST) for t in day.tables["5m"].column("ts").to_pylist()]
    fifteen = [t.astimezone(IST) for t in day.tables["15m"].column("ts").to_pylist()]
    assert five[0].time() == time(9, 15) and five[-1].time() == time(15, 25)
    assert fifteen[0].time() == time(9, 15) and fifteen[1].time() == time(9, 30)
    assert fifteen[-1].time() == time(15, 15)
    assert set(day.tables["15m"].column("bars").to_pylist()) == {15}
    first_five = day.tables["5m"].slice(0, 1).to_pylist()[0]
    assert (first_five["open"], first_five["close"], first_five["volume"]) == (
        100.0,
        104.5,
        1 + 2 + 3 + 4 + 5,
    )


def test_daily_bar_is_stamped_midnight_ist():
    daily = bars_of([(full_session(), AFTER_CLOSE)]).tables["1d"].to_pylist()
    assert len(daily) == 1
    assert daily[0]["ts"] == datetime(2025, 11, 24, 18, 30, tzinfo=UTC)
    assert daily[0]["trade_date"] == DAY
    assert (daily[0]["open"], daily[0]["high"], daily[0]["low"], daily[0]["close"]) == (
        100.0,
        475.0,
        99.0,
        474.5,
    )
    assert (daily[0]["volume"], daily[0]["bars"]) == (375 * 376 // 2, 375)


def test_newest_envelope_wins_per_minute():
    newer = [[OPEN + 60 * m, 1.0, 3.0, 1.0, 2.0, 7] for m in (0, 1)]
    day = bars_of([(newer, AFTER_CLOSE + timedelta(hours=1)), (full_session(), AFTER_CLOSE)])
    one_minute = day.tables["1m"].to_pylist()
    assert [r["close"] for r in one_minute[:3]] == [2.0, 2.0, 102.5]
    assert day.excluded["superseded"] == 2 and day.rows["1m"] == 375


def test_nothing_usable_gives_empty_tables():
    day = bars_of([([], AFTER_CLOSE), ([[OPEN - 60, 1.0, 1.0, 1.0, 1.0, 1]], AFTER_CLOSE)])
    assert day.rows == {"1m": 0, "5m": 0, "15m": 0, "1d": 0}
    assert day.tables["5m"].schema == BAR_SCHEMA and day.excluded["out_of_session"] == 1


def test_an_envelope_of_another_symbol_is_refused():
    parsed = parse_envelope(raw_envelope([], AFTER_CLOSE, "NSE:SBIN-EQ"), source="s3://raw/other")
    with pytest.raises(InvalidInput, match="s3://raw/other"):
        build_bars(SYMBOL, DAY, [parsed])


@pytest.fixture
def new_york_host():
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time_module.tzset()
    yield
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    time_module.tzset()


def test_host_time_zone_does_not_matter(new_york_host):
    assert time_module.localtime(OPEN).tm_hour == 22  # the host really is in New York now
    session = full_session()
    envelopes = [(session[:200], AFTER_CLOSE), (session[100:], datetime(2025, 11, 25, 10, 0, 30, tzinfo=UTC))]
    day = bars_of(envelopes)
    expected, _ = reference(envelopes)
    for timeframe, rows in expected.items():
        assert day.tables[timeframe].to_pylist() == rows
    assert day.rows == {"1m": 375, "5m": 75, "15m": 25, "1d": 1}
    assert day.tables["5m"].column("ts")[0].as_py() == datetime(2025, 11, 25, 3, 45, tzinfo=UTC)
    assert day.tables["1d"].column("ts")[0].as_py() == datetime(2025, 11, 24, 18, 30, tzinfo=UTC)
