"""Raw objects keep Fyers' answer byte-for-byte; ingest items parse strictly; a run asks up to the last ended minute."""

import itertools
import json
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlerkit import sample_event
from pricefeed.errors import InvalidInput
from pricefeed.ingest.item import IngestRequest
from pricefeed.ingest.settled import Settled
from pricefeed.ingest.symbol_range import plan_windows
from pricefeed.lake.envelope import (
    ENVELOPE_VERSION,
    RawReference,
    build_envelope,
    build_reference,
    is_reference,
    parse_reference,
)
from pricefeed.symbol import Symbol

IST = ZoneInfo("Asia/Kolkata")
DAY = date(2026, 11, 25)
FETCHED = datetime(2026, 11, 25, 10, 7, 30, 5, tzinfo=UTC)


def envelope(body: bytes, fetched_at: datetime = FETCHED) -> bytes:
    return build_envelope(
        symbol="NSE:M&M-EQ",
        resolution="1",
        range_from=1_795_545_000,
        range_to=1_795_631_399,
        trading_date=DAY,
        fetched_at=fetched_at,
        http_status=200,
        body=body,
    )


# --- build_envelope --------------------------------------------------------------------------------
def test_the_envelope_is_json_with_the_request_and_the_parsed_answer():
    # Given a Fyers answer
    body = b'{"s":"ok","candles":[[1795545000,101.5,102.0,101.0,101.75,1200]]}'
    # When it is wrapped
    doc = json.loads(envelope(body))
    # Then the envelope says what was asked, when, and holds the answer itself
    assert doc == {
        "envelope_version": ENVELOPE_VERSION,
        "symbol": "NSE:M&M-EQ",
        "resolution": "1",
        "range_from": 1_795_545_000,
        "range_to": 1_795_631_399,
        "trading_date": "2026-11-25",
        "last_trading_date": "2026-11-25",
        "fetched_at": "2026-11-25T10:07:30.000005Z",
        "http_status": 200,
        "response": json.loads(body),
    }


def test_the_answer_bytes_survive_verbatim_unusual_floats_spacing_and_key_order_included():
    # Given an answer whose formatting json.dumps would change (1.50, 1e2, -0.0, spaces, unicode escape, key order)
    body = b'{ "s" : "ok",  "candles": [[1795545000, 1.50, 1e2, 0.1000, -0.0, 7]], "code":200, "a":"\\u00e9" }'
    # When it is wrapped
    wrapped = envelope(body)
    # Then the exact bytes are inside, and they are what "response" parses to
    assert body in wrapped
    assert json.loads(wrapped)["response"] == json.loads(body)
    assert list(json.loads(wrapped)["response"]) == ["s", "candles", "code", "a"]


def test_surrounding_whitespace_of_the_answer_is_dropped_but_the_json_is_untouched():
    body = b'\n  {"s":"ok","candles":[]}\r\n'
    wrapped = envelope(body)
    assert wrapped.endswith(b',"response":{"s":"ok","candles":[]}}')
    json.loads(wrapped)


def test_the_fetch_time_is_written_in_utc_whatever_zone_it_was_given_in():
    ist = FETCHED.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert json.loads(envelope(b"{}", fetched_at=ist))["fetched_at"] == "2026-11-25T10:07:30.000005Z"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(json_values, st.sampled_from([(",", ":"), (", ", ": "), (",", " : ")]), st.booleans())
def test_any_json_answer_is_kept_verbatim_and_parses_back(value, separators, ascii_only):
    body = json.dumps(value, separators=separators, ensure_ascii=ascii_only).encode()
    wrapped = envelope(body)
    assert body in wrapped
    assert json.loads(wrapped)["response"] == json.loads(body)


def test_a_multi_day_envelope_names_its_last_date_and_cannot_end_before_it_starts():
    doc = json.loads(
        build_envelope(
            symbol="NSE:SBIN-EQ",
            resolution="1",
            range_from=1_795_545_000,
            range_to=1_795_545_000 + 3 * 86_400 - 1,
            trading_date=DAY,
            last_trading_date=date(2026, 11, 27),
            fetched_at=FETCHED,
            http_status=200,
            body=b'{"s":"no_data"}',
        )
    )
    assert (doc["trading_date"], doc["last_trading_date"]) == ("2026-11-25", "2026-11-27")
    with pytest.raises(InvalidInput, match="last_trading_date"):
        build_envelope(
            symbol="NSE:SBIN-EQ",
            resolution="1",
            range_from=0,
            range_to=1,
            trading_date=DAY,
            last_trading_date=date(2026, 11, 24),
            fetched_at=FETCHED,
            http_status=200,
            body=b"{}",
        )


# --- references ----------------------------------------------------------------------------------
ENVELOPE_KEY = "ohlcv/raw/symbol=SBIN-EQ/exchange=NSE/year=2026/month=11/day=25/ingest-20261125T100730000005Z.json"


def reference(**overrides) -> dict:
    doc = json.loads(
        build_reference(
            envelope_key=ENVELOPE_KEY,
            symbol="NSE:SBIN-EQ",
            trading_date=date(2026, 11, 26),
            range_from=1_795_545_000,
            range_to=1_795_717_799,
            fetched_at=FETCHED,
        )
    )
    doc.update(overrides)
    return doc


def test_a_reference_names_the_envelope_the_day_and_the_request():
    doc = reference()
    assert doc == {
        "envelope_version": 1,
        "ref": ENVELOPE_KEY,
        "symbol": "NSE:SBIN-EQ",
        "trading_date": "2026-11-26",
        "range_from": 1_795_545_000,
        "range_to": 1_795_717_799,
        "fetched_at": "2026-11-25T10:07:30.000005Z",
    }
    assert is_reference(doc) and not is_reference(json.loads(envelope(b"{}")))
    assert parse_reference(doc, source="s3://raw/x") == RawReference(
        ENVELOPE_KEY, Symbol("NSE", "SBIN-EQ"), date(2026, 11, 26), 1_795_545_000, 1_795_717_799, FETCHED
    )


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"envelope_version": 2}, "envelope_version"),
        ({"symbol": "SBIN-EQ"}, "SBIN-EQ"),
        ({"ref": ENVELOPE_KEY.replace("SBIN-EQ", "INFY-EQ")}, "not a raw envelope"),
        ({"ref": 7}, "not a raw envelope"),
        ({"trading_date": "26/11/2026"}, "trading_date"),
        ({"fetched_at": "2026-11-25T10:07:30"}, "time zone"),
        ({"range_from": "0"}, "range"),
        ({"range_from": 10, "range_to": 9}, "range"),
    ],
)
def test_a_malformed_reference_names_its_source_and_the_problem(overrides, named):
    with pytest.raises(InvalidInput, match=named) as err:
        parse_reference(reference(**overrides), source="s3://raw/the-ref")
    assert "s3://raw/the-ref" in str(err.value)


# --- IngestRequest.parse -----------------------------------------------------------------------------
ITEM = {"symbol": "NSE:SBIN-EQ", "from": "2026-11-20", "to": "2026-11-26", "incremental": False, "run_id": "r1"}


def test_a_map_item_becomes_a_request():
    item = {**ITEM, "attempt": 2, "ingested_prefix": "ohlcv/runs/r1/ingested/"}
    assert IngestRequest.parse(item) == IngestRequest(
        Symbol.parse("NSE:SBIN-EQ"), date(2026, 11, 20), date(2026, 11, 26), False, "r1", 2, "ohlcv/runs/r1/ingested/"
    )


def test_optional_fields_default():
    request = IngestRequest.parse({"symbol": "NSE:SBIN-EQ", "from": "2026-11-25", "to": "2026-11-25"})
    assert (request.run_id, request.incremental, request.attempt, request.ingested_prefix) == ("", False, 0, None)
    assert IngestRequest.parse({**ITEM, "ingested_prefix": ""}).ingested_prefix is None


def test_an_item_carries_the_trading_date_it_names_in_logs_and_dead_letters():
    assert IngestRequest.parse(ITEM).trading_date == date(2026, 11, 26)


@pytest.mark.parametrize(
    ("item", "named"),
    [
        (None, "must be an object, got NoneType"),
        (["NSE:SBIN-EQ"], "must be an object, got list"),
        ({"from": "2026-11-25", "to": "2026-11-25"}, "no 'symbol' string"),
        ({"symbol": ["NSE:SBIN-EQ"], "from": "2026-11-25", "to": "2026-11-25"}, "no 'symbol' string"),
        ({"symbol": "SBIN-EQ", "from": "2026-11-25", "to": "2026-11-25"}, "'SBIN-EQ'"),
        ({"symbol": "NSE:SBIN-EQ"}, "ingest item 'from'"),
        ({**ITEM, "from": "2026-11-31"}, "ingest item 'from'"),
        ({**ITEM, "to": 20261125}, "ingest item 'to'"),
        ({**ITEM, "to": "20261125"}, "ingest item 'to' must be a YYYY-MM-DD"),
        ({"symbol": "NSE:SBIN-EQ", "from": "2026-11-25"}, "ingest item 'to'"),
        ({"symbol": "NSE:SBIN-EQ", "to": "2026-11-25"}, "ingest item 'from'"),
        ({**ITEM, "from": "2026-11-27"}, r"'from' \(2026-11-27\) is after 'to' \(2026-11-26\)"),
        ({**ITEM, "to": "2026-02-30"}, "ingest item 'to'"),
        ({"symbol": "NSE:SBIN-EQ", "date": "2026-11-25"}, "unknown field\\(s\\): date \\(it takes symbol, from, to"),
        ({**ITEM, "Symbol": "NSE:SBIN-EQ"}, "unknown field\\(s\\): Symbol"),
        ({**ITEM, "incremental": "false"}, "'incremental' must be a bool"),
        ({**ITEM, "incremental": 1}, "'incremental' must be a bool"),
        ({**ITEM, "run_id": 7}, "'run_id' must be a str"),
        ({**ITEM, "attempt": True}, "'attempt' must be a int"),
        ({**ITEM, "attempt": -1}, "'attempt' must be a non-negative"),
        ({**ITEM, "ingested_prefix": "ohlcv/runs/r1/ingested"}, "'ingested_prefix'"),
        ({**ITEM, "ingested_prefix": "/abs/"}, "'ingested_prefix'"),
    ],
)
def test_a_bad_map_item_is_an_invalid_input_naming_what_is_wrong(item, named):
    with pytest.raises(InvalidInput, match=named):
        IngestRequest.parse(item)


# --- what a run asks ------------------------------------------------------------------------------------
def plan_range(request: IngestRequest, now: datetime, watermark: int | None = None) -> tuple[int, int] | None:
    """The first and last second the run asks (``None``: nothing), for a symbol settled through ``watermark``."""
    windows = plan_windows(request, now, None if watermark is None else Settled(watermark))
    assert windows == sorted(windows) and all(a[1] + 1 == b[0] for a, b in itertools.pairwise(windows))
    return (windows[0][0], windows[-1][1]) if windows else None


def ist_epoch(*args) -> int:
    return int(datetime(*args, tzinfo=IST).timestamp())


def explicit(first: date, last: date | None = None) -> IngestRequest:
    return IngestRequest(Symbol.parse("NSE:SBIN-EQ"), first, last or first)


def incremental(day: date) -> IngestRequest:
    return IngestRequest(Symbol.parse("NSE:SBIN-EQ"), day, day, incremental=True)


def test_a_past_day_is_asked_for_whole_from_ist_midnight_to_its_last_second():
    # Given a date well in the past
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    # When the range is computed / Then it is the whole IST day
    assert plan_range(explicit(DAY), now) == (ist_epoch(2026, 11, 25, 0, 0, 0), ist_epoch(2026, 11, 25, 23, 59, 59))
    assert plan_range(explicit(DAY), now) == (1_795_545_000, 1_795_631_399)


def test_an_explicit_range_is_from_the_first_midnight_to_the_end_of_the_last_day():
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert plan_range(explicit(date(2025, 1, 1), date(2025, 12, 31)), now) == (
        ist_epoch(2025, 1, 1, 0, 0, 0),
        ist_epoch(2025, 12, 31, 23, 59, 59),
    )


def test_an_explicit_run_ignores_the_watermark():
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert plan_range(explicit(DAY), now, watermark=ist_epoch(2026, 11, 25, 12, 0, 59)) == plan_range(
        explicit(DAY), now
    )


def test_yesterday_in_ist_is_whole_even_when_it_is_still_that_date_in_utc():
    # Given 00:10 IST on the 26th, which is 18:40 UTC on the 25th
    now = datetime(2026, 11, 25, 18, 40, tzinfo=UTC)
    # Then the 25th is already over in India and is asked for up to its last second
    assert plan_range(explicit(DAY), now)[1] == ist_epoch(2026, 11, 25, 23, 59, 59)


def test_today_is_cut_at_the_last_minute_that_has_ended():
    # Given 10:07:30 IST during the session
    now = datetime(2026, 11, 25, 10, 7, 30, tzinfo=IST)
    # When today's range is computed
    range_from, range_to = plan_range(explicit(DAY), now)
    # Then the 10:07 candle (still forming) is not asked for; 10:06 is, to its last second
    assert range_from == ist_epoch(2026, 11, 25, 0, 0, 0)
    assert range_to == ist_epoch(2026, 11, 25, 10, 6, 59)


def test_on_the_exact_minute_boundary_the_minute_just_started_is_excluded():
    now = datetime(2026, 11, 25, 10, 7, 0, tzinfo=IST)
    assert plan_range(explicit(DAY), now)[1] == ist_epoch(2026, 11, 25, 10, 6, 59)


@given(st.integers(min_value=0, max_value=86_399), st.integers(min_value=0, max_value=999_999), st.booleans())
def test_today_never_reaches_into_the_current_minute(second_of_day, micro, scheduled):
    now = datetime(2026, 11, 25, tzinfo=IST) + timedelta(seconds=second_of_day, microseconds=micro)
    current_minute_start = int(now.timestamp()) // 60 * 60
    request = incremental(DAY) if scheduled else explicit(DAY)
    try:
        planned = plan_range(request, now)
    except InvalidInput:
        # an explicit run in the day's very first minute, when no minute has ended yet
        assert second_of_day < 60 and not scheduled
        return
    if planned is None:  # a scheduled run then simply has nothing to ask yet
        assert second_of_day < 60 and scheduled
        return
    assert planned == (ist_epoch(2026, 11, 25, 0, 0, 0), current_minute_start - 1)


def test_a_future_date_is_an_invalid_input():
    now = datetime(2026, 11, 25, 12, 0, tzinfo=IST)
    with pytest.raises(InvalidInput, match="2026-11-26 has not started yet in IST"):
        plan_range(explicit(date(2026, 11, 26)), now)


def test_the_ist_date_of_tomorrow_is_not_future_once_india_has_reached_it():
    # Given 18:31 UTC on the 25th = 00:01 IST on the 26th
    now = datetime(2026, 11, 25, 18, 31, 30, tzinfo=UTC)
    # Then the 26th's first (ended) minute is asked for
    assert plan_range(explicit(date(2026, 11, 26)), now) == (
        ist_epoch(2026, 11, 26, 0, 0, 0),
        ist_epoch(2026, 11, 26, 0, 0, 59),
    )


def test_a_scheduled_run_without_a_watermark_starts_at_todays_ist_midnight():
    now = datetime(2026, 11, 25, 16, 0, 10, tzinfo=IST)
    assert plan_range(incremental(DAY), now, None) == (ist_epoch(2026, 11, 25), ist_epoch(2026, 11, 25, 15, 59, 59))


def test_a_scheduled_run_resumes_right_after_the_watermark():
    now = datetime(2026, 11, 25, 16, 0, 10, tzinfo=IST)
    watermark = ist_epoch(2026, 11, 25, 12, 0, 59)
    assert plan_range(incremental(DAY), now, watermark) == (
        ist_epoch(2026, 11, 25, 12, 1),
        ist_epoch(2026, 11, 25, 15, 59, 59),
    )


def test_a_scheduled_run_catches_up_from_an_old_watermark():
    now = datetime(2026, 11, 25, 16, 0, 10, tzinfo=IST)
    watermark = ist_epoch(2026, 11, 18, 23, 59, 59)  # a week of missed runs
    expected = (ist_epoch(2026, 11, 19), ist_epoch(2026, 11, 25, 15, 59, 59))
    assert plan_range(incremental(DAY), now, watermark) == expected


def test_a_scheduled_run_already_covered_has_nothing_to_ask():
    now = datetime(2026, 11, 25, 16, 0, 10, tzinfo=IST)
    assert plan_range(incremental(DAY), now, ist_epoch(2026, 11, 25, 15, 59, 59)) is None
    assert plan_range(incremental(DAY), now, ist_epoch(2026, 11, 25, 17, 0)) is None


def test_a_scheduled_run_of_a_day_that_is_over_stops_at_its_end():
    # The Map item of yesterday's run, retried after midnight IST
    now = datetime(2026, 11, 26, 0, 30, tzinfo=IST)
    assert plan_range(incremental(DAY), now, None) == (ist_epoch(2026, 11, 25), ist_epoch(2026, 11, 25, 23, 59, 59))


# --- the sample events (events/ingest_symbol*.json) --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "first", "last", "scheduled"),
    [
        ("ingest_symbol.json", date(2026, 11, 25), date(2026, 11, 25), False),
        ("ingest_symbol_backfill.json", date(2025, 1, 1), date(2025, 12, 31), False),
        ("ingest_symbol_scheduled.json", date(2026, 11, 25), date(2026, 11, 25), True),
    ],
)
def test_every_sample_ingest_event_parses(name, first, last, scheduled):
    request = IngestRequest.parse(sample_event(name.removesuffix(".json")))
    assert (str(request.symbol), request.from_date, request.to_date, request.incremental) == (
        "NSE:SBIN-EQ",
        first,
        last,
        scheduled,
    )
