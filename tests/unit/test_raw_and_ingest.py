"""The raw envelope keeps Fyers' answer byte-for-byte; ingest asks for exactly the ended part of an IST day."""

import json
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricefeed.errors import InvalidInput
from pricefeed.ingest import IngestRequest, request_range
from pricefeed.raw import ENVELOPE_VERSION, build_envelope

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


# --- IngestRequest.parse -----------------------------------------------------------------------------
def test_a_map_item_becomes_a_request():
    assert IngestRequest.parse({"symbol": "NSE:SBIN-EQ", "date": "2026-11-25", "run_id": "r1"}) == IngestRequest(
        "NSE:SBIN-EQ", DAY, "r1"
    )


def test_run_id_is_optional():
    assert IngestRequest.parse({"symbol": "NSE:SBIN-EQ", "date": "2026-11-25"}).run_id == ""


@pytest.mark.parametrize(
    ("item", "named"),
    [
        (None, "must be an object, got NoneType"),
        (["NSE:SBIN-EQ"], "must be an object, got list"),
        ({"date": "2026-11-25"}, "no 'symbol' string"),
        ({"symbol": ["NSE:SBIN-EQ"], "date": "2026-11-25"}, "no 'symbol' string"),
        ({"symbol": "SBIN-EQ", "date": "2026-11-25"}, "'SBIN-EQ'"),
        ({"symbol": "NSE:SBIN-EQ"}, "ingest item 'date'"),
        ({"symbol": "NSE:SBIN-EQ", "date": "2026-11-31"}, "ingest item 'date'"),
        ({"symbol": "NSE:SBIN-EQ", "date": 20261125}, "ingest item 'date'"),
    ],
)
def test_a_bad_map_item_is_an_invalid_input_naming_what_is_wrong(item, named):
    with pytest.raises(InvalidInput, match=named):
        IngestRequest.parse(item)


# --- request_range -----------------------------------------------------------------------------------
def ist_epoch(*args) -> int:
    return int(datetime(*args, tzinfo=IST).timestamp())


def test_a_past_day_is_asked_for_whole_from_ist_midnight_to_its_last_second():
    # Given a date well in the past
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    # When the range is computed / Then it is the whole IST day
    assert request_range(DAY, now) == (ist_epoch(2026, 11, 25, 0, 0, 0), ist_epoch(2026, 11, 25, 23, 59, 59))
    assert request_range(DAY, now) == (1_795_545_000, 1_795_631_399)


def test_yesterday_in_ist_is_whole_even_when_it_is_still_that_date_in_utc():
    # Given 00:10 IST on the 26th, which is 18:40 UTC on the 25th
    now = datetime(2026, 11, 25, 18, 40, tzinfo=UTC)
    # Then the 25th is already over in India and is asked for up to its last second
    assert request_range(DAY, now)[1] == ist_epoch(2026, 11, 25, 23, 59, 59)


def test_today_is_cut_at_the_last_minute_that_has_ended():
    # Given 10:07:30 IST during the session
    now = datetime(2026, 11, 25, 10, 7, 30, tzinfo=IST)
    # When today's range is computed
    range_from, range_to = request_range(DAY, now)
    # Then the 10:07 candle (still forming) is not asked for; 10:06 is, to its last second
    assert range_from == ist_epoch(2026, 11, 25, 0, 0, 0)
    assert range_to == ist_epoch(2026, 11, 25, 10, 6, 59)


def test_on_the_exact_minute_boundary_the_minute_just_started_is_excluded():
    now = datetime(2026, 11, 25, 10, 7, 0, tzinfo=IST)
    assert request_range(DAY, now)[1] == ist_epoch(2026, 11, 25, 10, 6, 59)


@given(st.integers(min_value=0, max_value=86_399), st.integers(min_value=0, max_value=999_999))
def test_today_never_reaches_into_the_current_minute(second_of_day, micro):
    now = datetime(2026, 11, 25, tzinfo=IST) + timedelta(seconds=second_of_day, microseconds=micro)
    current_minute_start = int(now.timestamp()) // 60 * 60
    try:
        range_from, range_to = request_range(DAY, now)
    except InvalidInput:
        # only in the day's very first minute, when no minute has ended yet
        assert second_of_day < 60
        return
    assert range_to == current_minute_start - 1
    assert range_from == ist_epoch(2026, 11, 25, 0, 0, 0)


def test_a_future_date_is_an_invalid_input():
    now = datetime(2026, 11, 25, 12, 0, tzinfo=IST)
    with pytest.raises(InvalidInput, match="2026-11-26 has not started yet in IST"):
        request_range(date(2026, 11, 26), now)


def test_the_ist_date_of_tomorrow_is_not_future_once_india_has_reached_it():
    # Given 18:31 UTC on the 25th = 00:01 IST on the 26th
    now = datetime(2026, 11, 25, 18, 31, 30, tzinfo=UTC)
    # Then the 26th's first (ended) minute is asked for
    assert request_range(date(2026, 11, 26), now) == (
        ist_epoch(2026, 11, 26, 0, 0, 0),
        ist_epoch(2026, 11, 26, 0, 0, 59),
    )
