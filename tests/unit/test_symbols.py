"""The Fyers symbol master: which files a ticker list needs, reading them whatever their column order,
which symbols are known, and downloading each file at most once per IST day."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime

import boto3
import pytest

from pricefeed.errors import FyersError, InvalidInput, TransientFyersError
from pricefeed.fyers.symbol_master import (
    MASTER_ROOT,
    SymbolMaster,
    load_master,
    master_key,
    parse_master,
    segments_for,
    segments_of,
    validate,
)
from pricefeed.ingest.tickers import parse_ticker_csv
from pricefeed.symbol import Symbol

BUCKET = "pricefeed-raw"
BASE_URL = "https://public.fyers.example/sym_details"
# The documented example row (ticker at index 9), and two more of the same shape.
SBIN = (
    "10100000003045,STATE BANK OF INDIA,0,1,0.05,INE062A01020,0915-1530|1815-1915:,2026-10-03,,NSE:SBIN-EQ,"
    "10,10,3045,SBIN,3045,-1.0,XX,10100000003045,None,None,None"
)
ROWS = [
    SBIN.split(","),
    [*SBIN.split(",")[:9], "NSE:M&M-EQ", *SBIN.split(",")[10:]],
    [*SBIN.split(",")[:9], "NSE:NIFTY50-INDEX", *SBIN.split(",")[10:]],
]
ROWS[1][1] = "MAHINDRA & MAHINDRA, LTD"  # a comma inside a name: the field is quoted


def to_csv(rows: list[list[str]], *, line_end: str = "\n") -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator=line_end).writerows(rows)
    return out.getvalue()


TICKERS = frozenset({"NSE:SBIN-EQ", "NSE:M&M-EQ", "NSE:NIFTY50-INDEX"})


# --- segments_for ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("symbol", "segments"),
    [
        ("NSE:SBIN-EQ", ("NSE_CM",)),
        ("NSE:BAJAJ-AUTO-EQ", ("NSE_CM",)),
        ("NSE:NIFTY50-INDEX", ("NSE_CM",)),
        ("NSE:NIFTY20OCTFUT", ("NSE_FO", "NSE_COM")),
        ("NSE:NIFTY20OCT11000CE", ("NSE_FO", "NSE_COM")),
        ("NSE:NIFTY20O0811000PE", ("NSE_FO", "NSE_COM")),
        ("NSE:BAJAJ-AUTO20OCTFUT", ("NSE_FO", "NSE_COM")),
        ("NSE:USDINR20OCTFUT", ("NSE_FO", "NSE_CD")),
        ("NSE:EURINR20OCT89.5CE", ("NSE_FO", "NSE_CD")),
        ("BSE:SBIN-A", ("BSE_CM",)),
        ("BSE:SENSEX20OCTFUT", ("BSE_FO",)),
        ("MCX:CRUDEOIL20OCTFUT", ("MCX_COM",)),
        ("nse:sbin-eq", ("NSE_CM",)),
        ("NFO:NIFTY20OCTFUT", ()),
    ],
)
def test_each_symbol_is_looked_up_in_the_segment_file_that_lists_it(symbol, segments):
    assert segments_of(Symbol.parse(symbol)) == segments


def test_a_list_needs_each_segment_once_in_a_fixed_order():
    symbols = parsed("MCX:CRUDEOIL20OCTFUT", "NSE:SBIN-EQ", "NSE:INFY-EQ", "NSE:USDINR20OCTFUT", "BSE:SBIN-A")
    assert segments_for(symbols) == ["NSE_CM", "NSE_FO", "NSE_CD", "BSE_CM", "MCX_COM"]
    assert segments_for(parsed("NSE:SBIN-EQ", "NSE:M&M-EQ")) == ["NSE_CM"]  # an equity list downloads one file
    assert segments_for([]) == []


# --- parse_master ---------------------------------------------------------------------------------
def test_the_documented_layout_is_read_from_column_9_quoted_fields_and_all():
    master = parse_master(to_csv(ROWS).encode(), segment="NSE_CM", source="https://x/NSE_CM.csv")
    assert master.tickers == TICKERS
    assert (master.column, master.rows, master.segment) == (9, 3, "NSE_CM")


def test_shuffled_columns_are_mapped_by_content_not_position():
    # Given a file whose columns were reordered (the ticker is now the second column)
    order = [5, 9, 0, 1, 2, 3, 4, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
    shuffled = [[row[i] for i in order] for row in ROWS]
    # When it is parsed / Then the tickers are still found
    master = parse_master(to_csv(shuffled), segment="NSE_CM", source="s")
    assert master.tickers == TICKERS and master.column == 1


def test_extra_and_missing_columns_are_tolerated():
    # Given rows that gained three columns in front, and one row that lost its reserved tail
    wider = [["x", "y", "z", *row] for row in ROWS]
    wider[2] = wider[2][:14]
    master = parse_master(to_csv(wider), segment="NSE_CM", source="s")
    assert master.tickers == TICKERS and master.column == 12


def test_blank_lines_crlf_a_byte_order_mark_and_no_trailing_newline_are_tolerated():
    text = "\ufeff" + to_csv(ROWS, line_end="\r\n").replace("\r\n", "\r\n\r\n  \r\n", 1).rstrip("\r\n")
    assert parse_master(text, segment="NSE_CM", source="s").tickers == TICKERS


def test_a_few_odd_rows_do_not_hide_the_ticker_column():
    # Given 40 good rows and two whose ticker cell is garbage
    rows = [[*ROWS[0][:9], f"NSE:S{i}-EQ", *ROWS[0][10:]] for i in range(40)]
    rows += [[*ROWS[0][:9], "", *ROWS[0][10:]], [*ROWS[0][:9], "n/a", *ROWS[0][10:]]]
    master = parse_master(to_csv(rows), segment="NSE_CM", source="s")
    assert len(master.tickers) == 40 and "n/a" not in master.tickers


def test_when_two_columns_look_like_tickers_the_documented_column_9_wins():
    # Given the ticker repeated in column 17 (where the underlying fytoken usually is)
    rows = [[*row[:17], row[9], *row[18:]] for row in ROWS]
    assert parse_master(to_csv(rows), segment="NSE_CM", source="s").column == 9


@pytest.mark.parametrize(
    "text",
    ["\n\n", "<html><body>Service Unavailable</body></html>\n", "a,b,c\n1,2,3\n", "NSE:SBIN-EQ is nice,3\nfoo,4\n"],
)
def test_a_file_without_a_ticker_column_is_an_invalid_input_naming_segment_and_url(text):
    with pytest.raises(InvalidInput, match=re.escape("Fyers symbol master NSE_FO (https://x/NSE_FO.csv)")):
        parse_master(text, segment="NSE_FO", source="https://x/NSE_FO.csv")


def test_tickers_are_upper_cased_like_the_ticker_list():
    rows = [[*ROWS[0][:9], " nse:sbin-eq ", *ROWS[0][10:]]]
    assert parse_master(to_csv(rows), segment="NSE_CM", source="s").tickers == {"NSE:SBIN-EQ"}


# --- validate -------------------------------------------------------------------------------------
def parsed(*texts: str) -> list[Symbol]:
    return [Symbol.parse(text) for text in texts]


def masters(**segments: set[str]) -> dict[str, SymbolMaster]:
    return {name: SymbolMaster(name, frozenset(tickers), 9, len(tickers), "test") for name, tickers in segments.items()}


def test_known_and_unknown_keep_the_list_order_and_say_which_segment_was_searched():
    known, unknown = validate(
        parsed("NSE:SBIN-EQ", "NSE:DELISTEDCO-EQ", "NSE:M&M-EQ", "NSE:NIFTY99OCTFUT"),
        masters(NSE_CM={"NSE:SBIN-EQ", "NSE:M&M-EQ"}, NSE_FO={"NSE:NIFTY20OCTFUT"}, NSE_COM=set()),
    )
    assert known == parsed("NSE:SBIN-EQ", "NSE:M&M-EQ")
    assert unknown == [
        {
            "symbol": "NSE:DELISTEDCO-EQ",
            "segments": ["NSE_CM"],
            "reason": "is not in the Fyers symbol master segment NSE_CM",
        },
        {
            "symbol": "NSE:NIFTY99OCTFUT",
            "segments": ["NSE_FO", "NSE_COM"],
            "reason": "is not in the Fyers symbol master segments NSE_FO or NSE_COM",
        },
    ]


def test_an_nse_commodity_future_is_known_from_the_commodity_file():
    known, unknown = validate(parsed("NSE:GOLDGUINEA20OCTFUT"),
                              masters(NSE_FO=set(), NSE_COM={"NSE:GOLDGUINEA20OCTFUT"}))
    assert (known, unknown) == (parsed("NSE:GOLDGUINEA20OCTFUT"), [])


def test_a_currency_future_is_known_if_either_derivatives_file_lists_it():
    known, unknown = validate(parsed("NSE:USDINR20OCTFUT"), masters(NSE_FO=set(), NSE_CD={"NSE:USDINR20OCTFUT"}))
    assert (known, unknown) == (parsed("NSE:USDINR20OCTFUT"), [])
    _, unknown = validate(parsed("NSE:EURINR20OCTFUT"), masters(NSE_FO=set(), NSE_CD=set()))
    assert unknown[0]["reason"] == "is not in the Fyers symbol master segments NSE_FO or NSE_CD"


def test_case_and_whitespace_duplicates_of_a_ticker_list_collapse_onto_the_first_spelling():
    tickers = parse_ticker_csv("symbol\nNSE:SBIN-EQ\n nse:sbin-eq \nNSE:Gone-EQ\nNSE:GONE-EQ\n")
    known, unknown = validate(tickers.symbols, masters(NSE_CM={"NSE:SBIN-EQ"}))
    assert known == parsed("NSE:SBIN-EQ")
    assert [u["symbol"] for u in unknown] == ["NSE:GONE-EQ"]


def test_an_exchange_without_a_master_is_unknown_with_a_reason():
    known, unknown = validate(parsed("NFO:NIFTY20OCTFUT"), {})
    assert known == []
    assert unknown[0]["segments"] == [] and "exchange NFO" in unknown[0]["reason"]


def test_a_master_that_was_not_loaded_is_a_programming_error_not_an_unknown_symbol():
    with pytest.raises(ValueError, match="no symbol master loaded for MCX_COM"):
        validate(parsed("MCX:GOLD20DECFUT"), masters(NSE_CM=set()))


# --- load_master: once per IST day, cached in the raw bucket ----------------------------------------
class FakeFyers:
    """Serves master files by URL and counts downloads; ``down`` makes every download fail."""

    def __init__(self, body: str = to_csv(ROWS)):
        self.body = body
        self.down: FyersError | None = None
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        if self.down is not None:
            raise self.down
        return self.body.encode()


@pytest.fixture
def s3(mocked_aws):
    client = boto3.client("s3", region_name=mocked_aws)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": mocked_aws})
    return client


def at(ist_date: str, hh_mm: str = "12:00") -> datetime:
    """An instant given in IST (UTC+05:30)."""
    return datetime.fromisoformat(f"{ist_date}T{hh_mm}:00+05:30").astimezone(UTC)


def load(s3, fyers, now):
    return load_master("NSE_CM", base_url=BASE_URL + "/", s3=s3, raw_bucket=BUCKET, now=now, fetch=fyers)


def test_the_first_load_of_an_ist_day_downloads_and_caches_the_file_verbatim(s3):
    fyers = FakeFyers()
    copy = load(s3, fyers, at("2026-11-26"))
    assert fyers.urls == [f"{BASE_URL}/NSE_CM.csv"]
    assert (copy.source, copy.as_of, copy.key) == ("download", date(2026, 11, 26), master_key("NSE_CM", copy.as_of))
    assert copy.key == "ohlcv/symbol-master/date=2026-11-26/NSE_CM.csv"
    assert s3.get_object(Bucket=BUCKET, Key=copy.key)["Body"].read() == fyers.body.encode()
    assert copy.master.tickers == TICKERS and copy.warning is None


def test_later_loads_the_same_ist_day_read_the_cache_and_the_next_ist_day_downloads_again(s3):
    fyers = FakeFyers()
    load(s3, fyers, at("2026-11-26", "00:05"))
    # 23:59 IST is still the same IST day (though 18:29 UTC)
    again = load(s3, fyers, at("2026-11-26", "23:59"))
    assert len(fyers.urls) == 1 and again.source == "cache" and again.master.tickers == TICKERS
    tomorrow = load(s3, fyers, at("2026-11-27", "00:00"))
    assert len(fyers.urls) == 2 and tomorrow.source == "download" and tomorrow.as_of == date(2026, 11, 27)


def test_a_failed_download_falls_back_to_the_newest_earlier_copy_and_says_so(s3):
    fyers = FakeFyers()
    load(s3, fyers, at("2026-11-20"))
    load(s3, fyers, at("2026-11-24"))
    s3.put_object(Bucket=BUCKET, Key=master_key("NSE_FO", date(2026, 11, 25)), Body=b"another segment")
    fyers.down = TransientFyersError(f"GET {BASE_URL}/NSE_CM.csv: HTTP 503")
    copy = load(s3, fyers, at("2026-11-26"))
    assert (copy.source, copy.as_of) == ("stale-cache", date(2026, 11, 24))
    assert copy.master.tickers == TICKERS
    assert f"{BASE_URL}/NSE_CM.csv: HTTP 503" in copy.warning and "2026-11-24" in copy.warning
    assert copy.describe()["warning"] == copy.warning
    # nothing is cached for today, so the next plan tries the download again
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{MASTER_ROOT}date=2026-11-26/")


def test_a_failed_download_with_nothing_cached_leaves_the_segment_unchecked_and_says_why(s3):
    fyers = FakeFyers()
    fyers.down = FyersError(f"GET {BASE_URL}/NSE_CM.csv: HTTP 404", http_status=404)
    copy = load(s3, fyers, at("2026-11-26"))

    assert (copy.source, copy.master) == ("unavailable", None)
    assert f"{BASE_URL}/NSE_CM.csv: HTTP 404" in copy.warning and "not checked" in copy.warning
    assert copy.describe()["tickers"] == 0
    assert validate([Symbol("NSE", "ANYTHING-EQ")], {"NSE_CM": None}) == ([Symbol("NSE", "ANYTHING-EQ")], [])


def test_a_download_that_is_not_a_master_is_never_cached_and_an_earlier_copy_is_used(s3):
    load(s3, FakeFyers(), at("2026-11-24"))
    copy = load(s3, FakeFyers("<html>maintenance</html>\n"), at("2026-11-26"))

    assert (copy.source, copy.as_of) == ("stale-cache", date(2026, 11, 24)) and copy.master.tickers == TICKERS
    assert f"NSE_CM ({BASE_URL}/NSE_CM.csv)" in copy.warning
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{MASTER_ROOT}date=2026-11-26/")
