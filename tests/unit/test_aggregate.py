"""Bar building, the fixed facts: full-session counts, bucket starts, the 1d timestamp, newest wins.

The comparison with a plain-Python reference on random answers is tests/unit/test_aggregate_property.py;
host time zones are tests/unit/test_timezones.py."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa
import pytest

from pricefeed.aggregate.bars import BAR_SCHEMA, build_bars
from pricefeed.aggregate.candles import parse_envelope
from pricefeed.errors import InvalidInput
from pricefeed.lake.envelope import build_envelope
from pricefeed.symbol import Symbol

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
    return build_bars(Symbol.parse(symbol), DAY, parsed)


def full_session(close_offset: float = 0.0) -> list:
    return [[OPEN + 60 * m, 100.0 + m, 101.0 + m, 99.0 + m, 100.5 + m + close_offset, m + 1] for m in range(375)]


def test_schema_is_exact():
    day = bars_of([(full_session(), AFTER_CLOSE)])
    for table in day.tables.values():
        assert table.schema == BAR_SCHEMA
    assert BAR_SCHEMA.field("ts").type == pa.timestamp("us", tz="UTC")
    # timeframe, exchange and symbol are the path's partition keys, never repeated inside the file
    assert BAR_SCHEMA.names == ("ts open high low close volume bars trade_date oi".split())


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
        build_bars(Symbol.parse(SYMBOL), DAY, [parsed])


def test_open_interest_is_each_bars_last_and_null_for_cash():
    future = "NSE:NIFTY26DECFUT"
    rows = [[*row, 10_000 + 75 * m] for m, row in enumerate(full_session())]
    rows[4] = rows[4][:6]  # 09:19 carried no open interest: its 5m bar takes 09:18's
    rows[9][6] = -3  # not a count: the candle stays, without OI
    day = bars_of([(rows, AFTER_CLOSE)], symbol=future)
    one = day.tables["1m"].column("oi").to_pylist()
    assert one[:5] == [10_000, 10_075, 10_150, 10_225, None] and one[9] is None and one[-1] == 10_000 + 75 * 374
    assert day.tables["5m"].column("oi").to_pylist()[:2] == [10_225, 10_000 + 75 * 8]
    assert day.tables["1d"].column("oi").to_pylist() == [10_000 + 75 * 374]
    assert day.rows["1m"] == 375 and day.excluded["malformed_row"] == 0
    cash = bars_of([(full_session(), AFTER_CLOSE)])
    assert {tf: cash.tables[tf].column("oi").null_count for tf in cash.tables} == cash.rows


def test_a_file_written_before_open_interest_existed_reads_with_a_null_oi():
    from pricefeed.aggregate.compact import BARS, conform

    old = bars_of([(full_session(), AFTER_CLOSE)]).tables["5m"].drop_columns(["oi"])
    old = old.add_column(0, "symbol", pa.array(["M&M-EQ"] * old.num_rows))
    read = conform(old, BARS.schema)
    assert read.schema == BARS.schema and read.column("oi").null_count == old.num_rows
    assert read.drop_columns(["oi"]).equals(old)
