"""Parsing one raw envelope: what is kept, what is excluded and why, what is refused; one IST day at a time."""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import orjson
import pytest

from pricefeed.aggregate.candles import (
    EXCLUSION_REASONS,
    parse_envelope,
    read_envelope,
    read_raw_object,
)
from pricefeed.errors import InvalidInput
from pricefeed.lake.envelope import RawReference, build_reference
from pricefeed.simulator.timeutil import session_open as session_open_epoch  # 09:15 IST of a date

DAY = date(2025, 11, 25)
OPEN = session_open_epoch(DAY)  # 09:15 IST
AFTER_CLOSE = "2025-11-25T12:00:00.000000Z"  # 17:30 IST
SOURCE = "s3://raw/ohlcv/raw/symbol=SBIN-EQ/exchange=NSE/year=2025/month=11/day=25/ingest-x.json"


def envelope(candles=None, *, response=None, fetched_at=AFTER_CLOSE, **overrides) -> bytes:
    doc = {
        "envelope_version": 1,
        "symbol": "NSE:SBIN-EQ",
        "resolution": "1",
        "range_from": OPEN,
        "range_to": OPEN + 22499,
        "trading_date": DAY.isoformat(),
        "fetched_at": fetched_at,
        "http_status": 200,
        "response": response if response is not None else {"s": "ok", "candles": candles or []},
    }
    doc.update(overrides)
    return orjson.dumps(doc)


def candle(minute: int, close: float = 100.5, volume: int = 10) -> list:
    """A valid candle ``minute`` minutes after 09:15 IST."""
    return [OPEN + 60 * minute, 100.0, max(101.0, close), min(99.0, close), close, volume]


def accounted(parsed) -> bool:
    return parsed.received == len(parsed.ts) + sum(parsed.excluded.values())


def test_session_open_is_0915_ist_whatever_the_host_tz():
    expected = datetime.combine(DAY, time(9, 15), tzinfo=ZoneInfo("Asia/Kolkata"))
    assert OPEN == int(expected.timestamp()) == int(datetime(2025, 11, 25, 3, 45, tzinfo=UTC).timestamp())


def test_metadata_and_columns():
    parsed = parse_envelope(envelope([candle(0), candle(1, 100.25, 7)]), source=SOURCE)
    assert (str(parsed.symbol), parsed.trading_date, parsed.source) == ("NSE:SBIN-EQ", DAY, SOURCE)
    assert parsed.fetched_at == datetime(2025, 11, 25, 12, tzinfo=UTC)
    assert parsed.ts.tolist() == [OPEN, OPEN + 60]
    assert parsed.close.tolist() == [100.5, 100.25]
    assert parsed.volume.tolist() == [10, 7]
    assert parsed.volume.dtype.name == "int64"
    assert set(parsed.excluded) == set(EXCLUSION_REASONS)
    assert sum(parsed.excluded.values()) == 0


@pytest.mark.parametrize("response", [{"s": "no_data"}, {"s": "no_data", "candles": []}])
def test_no_data_is_zero_candles(response):
    parsed = parse_envelope(envelope(response=response), source=SOURCE)
    assert len(parsed.ts) == 0 and parsed.received == 0


def test_out_of_order_is_sorted_and_the_later_duplicate_wins():
    rows = [candle(3), candle(1, 100.1), candle(2), candle(1, 100.9, 99)]
    parsed = parse_envelope(envelope(rows), source=SOURCE)
    assert parsed.ts.tolist() == [OPEN + 60, OPEN + 120, OPEN + 180]
    assert (parsed.close[0], parsed.volume[0]) == (100.9, 99)
    assert parsed.excluded["duplicate"] == 1
    assert accounted(parsed)


def test_the_forming_last_candle_is_excluded():
    # fetched at 10:00:30 IST: the 10:00 minute is still forming, 09:59 has ended exactly at 10:00.
    fetched = "2025-11-25T04:30:30.000000Z"
    rows = [candle(44), candle(45)]
    parsed = parse_envelope(envelope(rows, fetched_at=fetched), source=SOURCE)
    assert parsed.ts.tolist() == [OPEN + 44 * 60]
    assert parsed.excluded["forming"] == 1
    at_minute_end = parse_envelope(envelope([candle(44)], fetched_at="2025-11-25T04:30:00Z"), source=SOURCE)
    assert at_minute_end.ts.tolist() == [OPEN + 44 * 60]


def test_a_minute_past_the_range_asked_is_treated_as_forming():
    # asked up to 10:06:59 IST; Fyers also sent 10:07 and 10:08, which may still have been forming then
    rows = [candle(51), candle(52), candle(53)]
    parsed = parse_envelope(envelope(rows, range_to=OPEN + 52 * 60 - 1), source=SOURCE)
    assert parsed.ts.tolist() == [OPEN + 51 * 60]
    assert parsed.excluded["forming"] == 2 and accounted(parsed)


def test_only_the_regular_session_is_kept():
    rows = [candle(-1), candle(0), candle(374), candle(375), candle(-600)]
    parsed = parse_envelope(envelope(rows), source=SOURCE)
    assert parsed.ts.tolist() == [OPEN, OPEN + 374 * 60]  # 09:15 and 15:29
    assert parsed.excluded["out_of_session"] == 3


def test_oi_column_is_ignored_even_when_only_some_rows_have_it():
    rows = [[*candle(0), 5000], candle(1), [*candle(2), None]]
    parsed = parse_envelope(envelope(rows), source=SOURCE)
    assert parsed.ts.tolist() == [OPEN, OPEN + 60, OPEN + 120]
    all_oi = parse_envelope(envelope([[*candle(0), 1], [*candle(1), 2]]), source=SOURCE)
    assert all_oi.ts.tolist() == [OPEN, OPEN + 60] and sum(all_oi.excluded.values()) == 0


def test_broken_candles_are_counted_by_reason():
    t = OPEN + 600
    rows = [
        candle(0),
        [t, 100.0, 99.0, 98.0, 100.5, 1],  # high < open (and close): Fyers' common defect
        [t, 100.0, 100.2, 99.0, 100.5, 1],  # high < close
        [t, 100.0, 101.0, 100.2, 100.5, 1],  # low > open
        [t, 100.0, 101.0, 0.0, 100.5, 1],  # a price of 0
        [t, -1.0, 101.0, -2.0, 100.5, 1],  # negative prices
        [t, 100.0, 101.0, 99.0, 100.5, 429_496_726_000],  # the volume sentinel
        [t, 100.0, 101.0, 102.0, 100.5, 1],  # low > high
        [t, 100.0, 101.0, 99.0, 100.5, -1],  # negative volume
        [t, 100.0, 101.0, 99.0, 100.5, 1.5],  # fractional volume
        [t + 30, 100.0, 101.0, 99.0, 100.5, 1],  # not a minute start
        [t + 0.5, 100.0, 101.0, 99.0, 100.5, 1],  # not an integer epoch
        [t, "100.0", 101.0, 99.0, 100.5, 1],  # a string
        [t, None, 101.0, 99.0, 100.5, 1],  # a null
        [t, 100.0, 101.0, 99.0, 100.5],  # too short
        "not a row",
    ]
    parsed = parse_envelope(envelope(rows), source=SOURCE)
    assert parsed.ts.tolist() == [OPEN]
    assert parsed.excluded["high_below_open"] == 1
    assert parsed.excluded["invalid_ohlc"] == 3
    assert parsed.excluded["non_positive_price"] == 2
    assert parsed.excluded["volume_sentinel"] == 1
    assert parsed.excluded["bad_volume"] == 2
    assert parsed.excluded["bad_ts"] == 2
    assert parsed.excluded["malformed_row"] == 4
    assert accounted(parsed)


def test_booleans_are_not_numbers():
    parsed = parse_envelope(envelope([candle(0), [OPEN + 60, True, True, True, True, 1]]), source=SOURCE)
    assert parsed.ts.tolist() == [OPEN] and parsed.excluded["malformed_row"] == 1


def test_an_integer_valued_float_epoch_is_accepted():
    parsed = parse_envelope(envelope([[float(OPEN), 100, 101, 99, 100, 5.0]]), source=SOURCE)
    assert parsed.ts.tolist() == [OPEN] and parsed.volume.tolist() == [5]


@pytest.mark.parametrize(
    ("raw", "mentions"),
    [
        (b"{not json", "JSON"),
        (b"[1, 2]", "object"),
        (envelope(envelope_version=2), "envelope_version"),
        (envelope(symbol="SBIN-EQ"), "SBIN-EQ"),
        (envelope(resolution="D"), "resolution"),
        (envelope(trading_date="25/11/2025"), "trading_date"),
        (envelope(fetched_at="2025-11-25T12:00:00"), "time zone"),
        (envelope(http_status=500), "http_status"),
        (envelope(range_to=None), "range"),
        (envelope(range_from="0"), "range"),
        (envelope(range_from=OPEN + 1, range_to=OPEN), "range"),
        (envelope(response={"s": "error", "code": -300, "message": "invalid symbol"}), "'error'"),
        (envelope(response={"s": "ok"}), "candles"),
        (envelope(response={"s": "ok", "candles": {"0": 1}}), "candles"),
    ],
)
def test_a_malformed_envelope_names_its_source(raw, mentions):
    with pytest.raises(InvalidInput) as err:
        parse_envelope(raw, source=SOURCE)
    assert SOURCE in str(err.value) and mentions in str(err.value)


# --- multi-day envelopes: each IST day takes its own candles -------------------------------------------
DAY2, DAY3 = date(2025, 11, 26), date(2025, 11, 27)
OPEN2, OPEN3 = session_open_epoch(DAY2), session_open_epoch(DAY3)
AFTER_LAST_CLOSE = "2025-11-27T12:00:00.000000Z"  # 17:30 IST on DAY3


def three_days(rows, *, fetched_at=AFTER_LAST_CLOSE) -> bytes:
    return envelope(
        rows,
        fetched_at=fetched_at,
        range_from=OPEN - 33_300,  # 00:00 IST of DAY
        range_to=OPEN3 - 33_300 + 86_399,  # 23:59:59 IST of DAY3
        last_trading_date=DAY3.isoformat(),
    )


def at(open_epoch: int, minute: int) -> list:
    return [open_epoch + 60 * minute, 100.0, 101.0, 99.0, 100.5, 10]


def test_a_multi_day_envelope_gives_each_ist_day_only_its_own_candles():
    rows = [candle(0), candle(374), at(OPEN2, 0), at(OPEN3, 1), at(OPEN3, 2)]
    env = read_envelope(three_days(rows), source=SOURCE)
    assert (env.trading_date, env.last_trading_date) == (DAY, DAY3)
    assert env.candles().ts.tolist() == [OPEN, OPEN + 374 * 60]
    assert env.candles(DAY2).ts.tolist() == [OPEN2]
    day3 = env.candles(DAY3)
    assert (day3.trading_date, day3.ts.tolist()) == (DAY3, [OPEN3 + 60, OPEN3 + 120])
    assert parse_envelope(three_days(rows), source=SOURCE, trading_date=DAY2).ts.tolist() == [OPEN2]


def test_an_early_morning_candle_belongs_to_its_ist_date_not_its_utc_date():
    # 00:10 IST on the 26th is still the 25th in UTC
    early = [OPEN2 - (9 * 60 + 5) * 60, 100.0, 101.0, 99.0, 100.5, 1]
    env = read_envelope(three_days([early]), source=SOURCE)
    assert env.candles(DAY).received == 0
    assert env.candles(DAY2).excluded["out_of_session"] == 1


def test_undatable_rows_are_counted_once_on_the_first_day_so_every_candle_is_accounted_for():
    rows = [
        candle(0),
        at(OPEN2, 0),
        "not a row",
        [float("nan"), 1, 1, 1, 1, 1],
        at(OPEN3 + 5 * 86_400, 0),  # a date the envelope does not cover
        at(OPEN - 86_400, 0),  # nor this one
    ]
    env = read_envelope(three_days(rows), source=SOURCE)
    days = [env.candles(d) for d in (DAY, DAY2, DAY3)]
    assert sum(d.received for d in days) == len(rows)
    assert all(accounted(d) for d in days)
    first = days[0]
    assert first.excluded["malformed_row"] == 2 and first.excluded["out_of_session"] == 2
    assert days[1].excluded == dict.fromkeys(EXCLUSION_REASONS, 0) and days[1].ts.tolist() == [OPEN2]


def test_a_forming_candle_in_a_multi_day_answer_is_excluded_on_its_day_only():
    # fetched at 10:00:30 IST on DAY3: its 10:00 minute had not ended
    fetched = "2025-11-27T04:30:30.000000Z"
    rows = [candle(45), at(OPEN2, 45), at(OPEN3, 44), at(OPEN3, 45)]
    env = read_envelope(three_days(rows, fetched_at=fetched), source=SOURCE)
    assert env.candles(DAY).ts.tolist() == [OPEN + 45 * 60]
    assert env.candles(DAY2).ts.tolist() == [OPEN2 + 45 * 60]
    day3 = env.candles(DAY3)
    assert day3.ts.tolist() == [OPEN3 + 44 * 60] and day3.excluded["forming"] == 1


def test_a_day_outside_the_envelope_is_refused_naming_it():
    env = read_envelope(three_days([]), source=SOURCE)
    with pytest.raises(InvalidInput, match=r"covers 2025-11-25\.\.2025-11-27, not 2025-11-28") as err:
        env.candles(date(2025, 11, 28))
    assert SOURCE in str(err.value)
    with pytest.raises(InvalidInput, match="not 2025-11-26"):
        parse_envelope(envelope([]), source=SOURCE, trading_date=DAY2)  # a one-day envelope covers one day


def test_a_last_date_before_the_first_is_malformed():
    with pytest.raises(InvalidInput, match="last_trading_date"):
        parse_envelope(envelope(last_trading_date="2025-11-24"), source=SOURCE)


def test_a_reference_is_read_as_one_and_is_not_an_envelope():
    ref = build_reference(
        envelope_key="ohlcv/raw/symbol=SBIN-EQ/exchange=NSE/year=2025/month=11/day=25/ingest-x.json",
        symbol="NSE:SBIN-EQ",
        trading_date=DAY2,
        range_from=OPEN,
        range_to=OPEN3,
        fetched_at=datetime(2025, 11, 27, 12, tzinfo=UTC),
    )
    assert isinstance(read_raw_object(ref, source=SOURCE), RawReference)
    with pytest.raises(InvalidInput, match="is a reference to"):
        read_envelope(ref, source=SOURCE)


# --- sessions come from the exchange calendar ---------------------------------------------------
HOLIDAY = date(2025, 11, 5)  # Guru Nanak Jayanti: NSE closed
MUHURAT = date(2024, 11, 1)  # Diwali: only the Muhurat hour, 18:00-19:00 IST


def day_envelope(day: date, clock: list[tuple[int, int]]) -> bytes:
    """A one-day envelope of ``day`` fetched the next morning, a candle at each IST (hour, minute)."""
    midnight = int(datetime.combine(day, time(0, 0), tzinfo=ZoneInfo("Asia/Kolkata")).timestamp())
    rows = [[midnight + 3600 * h + 60 * m, 10.0, 11.0, 9.0, 10.5, 7] for h, m in clock]
    return envelope(
        rows,
        trading_date=day.isoformat(),
        range_from=midnight,
        range_to=midnight + 86_399,
        fetched_at=datetime.combine(day, time(23, 0), tzinfo=UTC).isoformat(),
    )


def test_on_a_holiday_every_candle_is_out_of_session_and_counted():
    parsed = parse_envelope(day_envelope(HOLIDAY, [(9, 15), (12, 0), (15, 29)]), source=SOURCE)
    assert len(parsed.ts) == 0 and parsed.excluded["out_of_session"] == 3 and accounted(parsed)


def test_on_a_muhurat_day_only_the_special_session_is_kept():
    parsed = parse_envelope(day_envelope(MUHURAT, [(9, 15), (17, 59), (18, 0), (18, 59), (19, 0)]), source=SOURCE)
    kept = [datetime.fromtimestamp(t, ZoneInfo("Asia/Kolkata")).strftime("%H:%M") for t in parsed.ts.tolist()]
    assert kept == ["18:00", "18:59"] and parsed.excluded["out_of_session"] == 3 and accounted(parsed)


def test_every_excluded_candle_but_a_duplicate_is_quarantined_as_sent_with_its_rule():
    from pricefeed.aggregate.bars import build_bars

    t = OPEN + 600
    rows = [
        candle(0),
        [t, 100.0, 99.0, 98.0, 100.5, 7],  # high below open
        [t, 100.0, 101.0, 99.0, 100.5, 429_496_726_000],  # the volume sentinel
        [t, 100.0, 101.0, 99.0, 100.5, 1.5],  # a fractional volume
        [OPEN - 60, 100.0, 101.0, 99.0, 100.5, 1],  # before the session
        [t, "100.0", 101.0, 99.0, 100.5, 1],  # not a number: kept as its text
        candle(0),  # a duplicate: the same minute again, not quarantined
    ]
    parsed = parse_envelope(envelope(rows), source=SOURCE)
    day = build_bars(parsed.symbol, parsed.trading_date, [parsed])
    held = day.quarantine.to_pylist()
    counted = {k: v for k, v in parsed.excluded.items() if v and k != "duplicate"}
    assert sorted(r["rule"] for r in held) == sorted(k for k, v in counted.items() for _ in range(v))
    by_rule = {r["rule"]: r for r in held}
    assert by_rule["volume_sentinel"]["volume"] == 429_496_726_000.0
    assert by_rule["bad_volume"]["volume"] == 1.5 and by_rule["high_below_open"]["high"] == 99.0
    assert by_rule["malformed_row"]["raw_row"] == f'[{t}, "100.0", 101.0, 99.0, 100.5, 1]'
    assert by_rule["malformed_row"]["ts"] is None and by_rule["out_of_session"]["ts"].timestamp() == OPEN - 60
    assert {r["raw_object"] for r in held} == {SOURCE} and parsed.excluded["duplicate"] == 1


def test_a_clean_answer_quarantines_nothing():
    from pricefeed.aggregate.bars import build_bars

    parsed = parse_envelope(envelope([candle(m) for m in range(5)]), source=SOURCE)
    assert build_bars(parsed.symbol, parsed.trading_date, [parsed]).quarantine is None


def test_a_muhurat_session_stamped_15_minutes_late_is_excluded_whole_by_its_rule():
    late = [(18, 15), (18, 30), (18, 59), (19, 0), (19, 14)]  # 18:00-19:00 served as 18:15-19:15
    parsed = parse_envelope(day_envelope(MUHURAT, late), source=SOURCE)
    assert parsed.ts.tolist() == [] and parsed.excluded["muhurat_late"] == 5 and accounted(parsed)
    on_time = parse_envelope(day_envelope(MUHURAT, [(18, 0), (18, 59), (19, 0)]), source=SOURCE)
    assert len(on_time.ts) == 2 and on_time.excluded["muhurat_late"] == 0  # a stray 19:00 is only out of session
