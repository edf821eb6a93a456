"""S3 key conventions: the exact strings other components and Athena depend on."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricefeed.errors import InvalidInput
from pricefeed.lake import paths
from pricefeed.symbol import Symbol

DAY = date(2026, 11, 25)
FETCHED = datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("NSE:SBIN-EQ", ("NSE", "SBIN-EQ")),
        ("NSE:M&M-EQ", ("NSE", "M&M-EQ")),
        ("NSE:BAJAJ-AUTO-EQ", ("NSE", "BAJAJ-AUTO-EQ")),
        ("NSE:NIFTY50-INDEX", ("NSE", "NIFTY50-INDEX")),
        ("MCX:CRUDEOIL20OCTFUT", ("MCX", "CRUDEOIL20OCTFUT")),
    ],
)
def test_a_symbol_parses_into_its_exchange_and_name_and_prints_as_fyers_writes_it(symbol, expected):
    parsed = Symbol.parse(symbol)
    assert (parsed.exchange, parsed.name) == expected
    assert str(parsed) == symbol


@pytest.mark.parametrize(
    "bad",
    [
        "SBIN-EQ",
        ":SBIN-EQ",
        "NSE:",
        "NSE:SBIN EQ",
        " NSE:SBIN-EQ",
        "NSE:SB/IN",
        "NSE:A=B",
        "NSE:A:B",
        "",
        "N SE:X",
    ],
)
def test_a_malformed_symbol_is_refused_naming_the_value(bad):
    with pytest.raises(InvalidInput) as err:
        Symbol.parse(bad)
    assert repr(bad) in str(err.value)


@pytest.mark.parametrize(("exchange", "name"), [("", "SBIN-EQ"), ("NSE", ""), ("NSE", "SB/IN"), ("N SE", "X")])
def test_a_symbol_made_of_bad_parts_is_refused_too(exchange, name):
    with pytest.raises(InvalidInput, match="invalid"):
        Symbol(exchange, name)


def test_raw_key_renders_utc_with_microseconds():
    key = paths.raw_key(Symbol.parse("NSE:SBIN-EQ"), DAY, FETCHED)
    assert key == ("ohlcv/raw/symbol=SBIN-EQ/exchange=NSE/year=2026/month=11/day=25/ingest-20261125T100000123456Z.json")
    ist = FETCHED.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert paths.raw_key(Symbol.parse("NSE:SBIN-EQ"), DAY, ist) == key
    assert key.startswith(paths.raw_day_prefix(Symbol.parse("NSE:SBIN-EQ"), DAY))


def test_raw_keys_sort_by_fetch_time():
    times = [FETCHED + timedelta(microseconds=n) for n in (0, 1, 999_999, 1_000_000, 10**9)]
    keys = [paths.raw_key(Symbol.parse("NSE:M&M-EQ"), DAY, t) for t in times]
    assert keys == sorted(keys)
    assert "symbol=M&M-EQ/" in keys[0]


def test_naive_timestamps_are_rejected():
    with pytest.raises(InvalidInput, match="fetched_at"):
        paths.raw_key(Symbol.parse("NSE:SBIN-EQ"), DAY, datetime(2026, 11, 25, 10))
    with pytest.raises(InvalidInput, match="failed_at"):
        paths.dead_letter_key(Symbol.parse("NSE:SBIN-EQ"), DAY, datetime(2026, 11, 25, 10))


def test_a_datetime_is_not_a_trading_date():
    with pytest.raises(InvalidInput, match="trading_date"):
        paths.raw_day_prefix(Symbol.parse("NSE:SBIN-EQ"), FETCHED)


def test_every_raw_object_of_a_symbol_lies_under_its_symbol_prefix():
    prefix = paths.raw_symbol_prefix(Symbol.parse("NSE:M&M-EQ"))
    assert prefix == "ohlcv/raw/symbol=M&M-EQ/exchange=NSE/"
    assert paths.raw_day_prefix(Symbol.parse("NSE:M&M-EQ"), DAY) == prefix + "year=2026/month=11/day=25/"


def test_ingest_manifest_key_is_one_per_symbol_under_the_runs_prefix():
    prefix = "ohlcv/runs/r-1/ingested/"
    assert paths.ingested_manifest_key(prefix, Symbol("NSE", "SBIN-EQ")) == "ohlcv/runs/r-1/ingested/NSE/SBIN-EQ.json"
    assert paths.ingested_manifest_key(prefix, Symbol.parse("BSE:M&M-A")) == "ohlcv/runs/r-1/ingested/BSE/M&M-A.json"


@pytest.mark.parametrize("bad", ["", "ohlcv/runs/r-1/ingested", "/ohlcv/", "/", " ohlcv/", None])
def test_a_manifest_prefix_must_be_a_relative_prefix_ending_with_a_slash(bad):
    with pytest.raises(InvalidInput, match="ingested_prefix"):
        paths.ingested_manifest_key(bad, Symbol.parse("NSE:SBIN-EQ"))


def test_dead_letter_key():
    assert paths.dead_letter_key(Symbol.parse("NSE:SBIN-EQ"), DAY, FETCHED) == (
        "ohlcv/errors/symbol=SBIN-EQ/year=2026/month=11/day=25/failed-20261125T100000123456Z.json"
    )


def test_processed_partition_layout():
    prefix = paths.processed_prefix("5m", Symbol("NSE", "SBIN-EQ"), DAY)
    assert prefix == "processed/timeframe=5m/exchange=NSE/symbol=SBIN-EQ/year=2026/month=11/day=25/"
    assert paths.processed_key("5m", Symbol("NSE", "SBIN-EQ"), DAY) == prefix + "part-00000.parquet"
    values = paths.partition_values("5m", Symbol("NSE", "SBIN-EQ"), date(2026, 1, 5))
    assert values == ["5m", "NSE", "SBIN-EQ", "2026", "01", "05"]
    assert paths.PARTITION_KEYS == ("timeframe", "exchange", "symbol", "year", "month", "day")
    assert paths.TIMEFRAMES == ("1m", "5m", "15m", "1d")


def test_unknown_timeframe_is_rejected():
    with pytest.raises(InvalidInput, match="'1h'"):
        paths.processed_key("1h", Symbol("NSE", "SBIN-EQ"), DAY)


exchanges = st.from_regex(r"[A-Z]{2,5}", fullmatch=True)
names = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/=:\\"),
    min_size=1,
    max_size=30,
)


@given(exchanges, names)
def test_a_symbol_round_trips_through_its_text_and_its_keys(exchange, name):
    symbol = Symbol(exchange, name)
    assert Symbol.parse(str(symbol)) == symbol
    key = paths.processed_key("1d", symbol, DAY)
    assert f"/exchange={exchange}/symbol={name}/" in key
    assert paths.raw_day_prefix(symbol, DAY).startswith(f"ohlcv/raw/symbol={name}/exchange={exchange}/")
