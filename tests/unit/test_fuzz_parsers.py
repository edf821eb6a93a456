"""Random garbage into every parser of outside input: each returns a valid result or raises one of the
project's named errors (``PricefeedError`` subclasses) whose message names the bad input; never a bare
KeyError/TypeError/ValueError/IndexError/AttributeError/UnicodeError/OverflowError/RecursionError.

Candle parsing never fails on a bad row: every row of an answer comes out as a candle or is counted under
exactly one exclusion reason, across all the days an envelope covers.

Deterministic (``derandomize``, no example database); the whole file runs in well under a minute.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import math
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import boto3
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from pricefeed.aggregate import arguments as job_arguments
from pricefeed.aggregate.candles import EXCLUSION_REASONS, Envelope, read_raw_object
from pricefeed.aggregate.raw_reader import EnvelopeCache, day_envelopes, raw_day_keys
from pricefeed.auth import callback as oauth
from pricefeed.auth import fyers_oauth as auth
from pricefeed.auth.store import AppConfig
from pricefeed.errors import FyersError, InvalidInput, PricefeedError, RateLimited
from pricefeed.fyers.answers import parse_answer, retry_after_seconds
from pricefeed.fyers.symbol_master import parse_master
from pricefeed.ingest.plan import PlanRequest, _read_ticker_list
from pricefeed.ingest.tickers import parse_ticker_csv
from pricefeed.istime import MINUTE_HISTORY_START
from pricefeed.lake.envelope import RawReference, build_envelope, build_reference
from pricefeed.simulator.timeutil import session_open as session_open_epoch  # 09:15 IST of a date
from pricefeed.symbol import Symbol, normalize_symbol

ROOT = Path(__file__).resolve().parents[2]


#: Run longer by hand, e.g. PRICEFEED_FUZZ_SCALE=20 (PRICEFEED_FUZZ_RANDOM=1 for fresh random examples).
SCALE = float(os.environ.get("PRICEFEED_FUZZ_SCALE", "1"))


def fuzz(n: int):
    return settings(
        max_examples=max(1, int(n * SCALE)),
        derandomize=not os.environ.get("PRICEFEED_FUZZ_RANDOM"),
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


def named(call, *names: str):
    """``call()``'s result, or the named error it raised (its message must contain one of ``names``).
    Any other exception propagates and fails the test."""
    try:
        return call()
    except PricefeedError as exc:
        message = str(exc)
        assert any(n in message for n in names), f"{type(exc).__name__} does not name the input: {message!r}"
        return exc


# --- shared garbage ---------------------------------------------------------------------------------
NASTY_NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 2**63, 2**64, -(2**63) - 1, 10**30, 1e308, -1e308, 5e-324, 10**400]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NASTY_NUMBERS, st.text(max_size=12))
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)
DEEP = [b"[" * 5000, b'{"a":' * 5000, b"[" * 2000 + b"]" * 2000, b'{"s":"ok","candles":' + b"[" * 5000]


def dumps(value: object) -> bytes:
    """Serialised the way a careless server might: NaN/Infinity tokens, integers of any size."""
    return json.dumps(value, allow_nan=True).encode()


# --- candles: raw envelopes and references -----------------------------------------------------------
DAY = date(2025, 11, 25)  # a Tuesday, a regular NSE session
OPEN = session_open_epoch(DAY)
SOURCE = "s3://raw/ohlcv/raw/symbol=SBIN-EQ/exchange=NSE/year=2025/month=11/day=25/ingest-fuzz.json"
ENVELOPE_KEYS = (
    "envelope_version",
    "symbol",
    "resolution",
    "range_from",
    "range_to",
    "trading_date",
    "last_trading_date",
    "fetched_at",
    "http_status",
    "response",
)
HEADER_VALUES = st.one_of(
    JSON_VALUES,
    st.sampled_from(
        [
            "0001-01-01",
            "9999-12-31",
            "2025-11-24",
            "2025-11-30",
            "0001-01-01T00:00:00+05:00",
            "9999-12-31T23:59:59-05:00",
            "0001-01-01T00:00:00Z",
            "2025-11-25T12:00:00",
            "2025-11-25T12:00:00.000000Z",
            "NSE:SBIN-EQ",
            "nse:sbin-eq",
            "NSE:",
            "NSE:A:B",
            "1",
            "5",
            1,
            200,
            "200",
            OPEN,
            OPEN + 22_499,
            -(2**62),
            2**62,
        ]
    ),
)


@st.composite
def candle_rows(draw) -> list:
    """Mostly valid candles across a few IST days, with every kind of broken row mixed in."""
    rows = []
    for _ in range(draw(st.integers(0, 25))):
        day = draw(st.integers(-1, 4))
        minute = draw(st.integers(-60, 420))
        ts = OPEN + 86_400 * day + 60 * minute
        row = [ts, 100.0, 101.0, 99.0, 100.5, 10]
        kind = draw(
            st.sampled_from(
                [
                    "good",
                    "good",
                    "oi",
                    "field",
                    "short",
                    "long",
                    "ts_offset",
                    "high_low",
                    "neg_vol",
                    "frac_vol",
                    "not_list",
                    "ts_far",
                    "dup",
                    "strings",
                    "ints",
                ]
            )
        )
        if kind == "oi":
            row.append(draw(NASTY_NUMBERS))
        elif kind == "field":
            row[draw(st.integers(0, 5))] = draw(SCALARS | st.just([]) | st.just({}))
        elif kind == "short":
            row = row[: draw(st.integers(0, 5))]
        elif kind == "long":
            row += draw(st.lists(SCALARS, min_size=2, max_size=4))
        elif kind == "ts_offset":
            row[0] += draw(st.integers(1, 59) | st.floats(0.001, 59.9))
        elif kind == "high_low":
            row[2], row[3] = 98.0, 102.0
        elif kind == "neg_vol":
            row[5] = draw(st.integers(max_value=-1) | st.floats(max_value=-1e-9))
        elif kind == "frac_vol":
            row[5] = 10.5
        elif kind == "not_list":
            row = draw(SCALARS | st.dictionaries(st.text(max_size=3), SCALARS, max_size=3))
        elif kind == "ts_far":
            row[0] = draw(st.sampled_from([0, -60, 2**62, 2**63, 1e300, -1e300, 253_402_300_800, -62_135_596_800]))
        elif kind == "dup" and rows:
            row = list(rows[-1]) if isinstance(rows[-1], list) else row
        elif kind == "strings":
            row = [str(x) for x in row]
        elif kind == "ints":
            row = [int(x) for x in row]
        rows.append(row)
    return rows


@st.composite
def envelopes(draw) -> tuple[bytes, list | None]:
    """A near-valid envelope (bytes) and the candle rows it carries (``None`` if it carries no list)."""
    span = draw(st.integers(0, 3))
    rows = draw(candle_rows())
    status = draw(st.sampled_from(["ok", "ok", "ok", "no_data", "error", None, "OK", 1]))
    response: object = {"s": status, "candles": rows}
    if status == "no_data" and draw(st.booleans()):
        response = {"s": status}
    if draw(st.integers(0, 9)) == 0:
        response["code"] = draw(JSON_VALUES)  # type: ignore[index]
    if draw(st.integers(0, 9)) == 0:
        response = draw(JSON_VALUES)
    doc = {
        "envelope_version": 1,
        "symbol": "NSE:SBIN-EQ",
        "resolution": "1",
        "range_from": OPEN,
        "range_to": OPEN + 86_400 * span + 22_499,
        "trading_date": DAY.isoformat(),
        "last_trading_date": (DAY + timedelta(days=span)).isoformat(),
        "fetched_at": draw(st.sampled_from(["2025-11-30T12:00:00.000000Z", "2025-11-25T05:00:30.000000Z"])),
        "http_status": 200,
        "response": response,
    }
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["drop", "set", "extra"]))
        key = draw(st.sampled_from(ENVELOPE_KEYS))
        if op == "drop":
            doc.pop(key, None)
        elif op == "set":
            doc[key] = draw(HEADER_VALUES)
        else:
            doc[draw(st.text(max_size=10))] = draw(JSON_VALUES)
    if draw(st.booleans()):  # reorder the fields
        keys = draw(st.permutations(list(doc)))
        doc = {k: doc[k] for k in keys}
    raw = dumps(doc)
    if draw(st.integers(0, 14)) == 0:
        raw = raw[: draw(st.integers(0, len(raw)))]  # cut off in transit
    if draw(st.integers(0, 19)) == 0:
        raw = b"\xef\xbb\xbf" + raw
    response = doc.get("response")
    carried = response.get("candles") if isinstance(response, dict) else None
    return raw, carried if isinstance(carried, list) else None


def check_day(parsed, day: date) -> None:
    assert parsed.trading_date == day
    assert set(parsed.excluded) == set(EXCLUSION_REASONS) and min(parsed.excluded.values()) >= 0
    assert parsed.received == len(parsed.ts) + sum(parsed.excluded.values())
    ts = parsed.ts
    assert ts.dtype == np.int64 and parsed.volume.dtype == np.int64
    assert (np.diff(ts) > 0).all() and (ts % 60 == 0).all()
    for column in (parsed.open, parsed.high, parsed.low, parsed.close):
        assert len(column) == len(ts) and np.isfinite(column).all()
    assert (parsed.high >= np.maximum(parsed.open, parsed.close)).all()
    assert (parsed.low <= np.minimum(parsed.open, parsed.close)).all()
    assert (parsed.volume >= 0).all()


def check_envelope(raw: bytes, carried: list | None) -> None:
    parsed = named(lambda: read_raw_object(raw, source=SOURCE), SOURCE)
    if isinstance(parsed, PricefeedError):
        assert isinstance(parsed, InvalidInput)
        return
    if isinstance(parsed, RawReference):
        return
    assert isinstance(parsed, Envelope)
    span = (parsed.last_trading_date - parsed.trading_date).days
    days = [parsed.trading_date + timedelta(days=i) for i in range(span + 1)] if span <= 40 else []
    received = 0
    for day in days or [parsed.trading_date, parsed.last_trading_date]:
        candles = named(lambda day=day: parsed.candles(day), SOURCE)
        assert not isinstance(candles, PricefeedError), candles
        check_day(candles, day)
        received += candles.received
    if days:  # every row of the answer accounted for exactly once across the envelope's days
        assert received == len(carried or [])
    outside = parsed.last_trading_date + timedelta(days=1) if parsed.last_trading_date < date.max else None
    if outside is not None:
        with pytest.raises(InvalidInput, match=SOURCE):
            parsed.candles(outside)


def envelope_case(response: object = None, **header: object) -> tuple[bytes, list | None]:
    """A hand-made envelope for the regression examples, and the candle rows it carries."""
    response = {"s": "ok", "candles": [[OPEN, 100.0, 101.0, 99.0, 100.5, 10]]} if response is None else response
    doc = {
        "envelope_version": 1,
        "symbol": "NSE:SBIN-EQ",
        "resolution": "1",
        "range_from": OPEN,
        "range_to": OPEN + 22_499,
        "trading_date": DAY.isoformat(),
        "fetched_at": "2025-11-30T12:00:00.000000Z",
        "http_status": 200,
        "response": response,
        **header,
    }
    carried = response.get("candles") if isinstance(response, dict) else None
    return dumps(doc), carried if isinstance(carried, list) else None


@fuzz(600)
@given(envelopes())
# Found by this test: fetched_at before datetime.min once in UTC (OverflowError); a NaN/Infinity row counted
# twice in `received`; a no_data answer whose candles are not a list (stored by the client, then unreadable).
@example(envelope_case(fetched_at="0001-01-01T00:00:00+05:00"))
@example(envelope_case(fetched_at="9999-12-31T23:59:59-05:00"))
@example(envelope_case({"s": "ok", "candles": [[OPEN, 100.0, 101.0, 99.0, 100.5, -math.inf], [OPEN, math.nan]]}))
@example(envelope_case({"s": "ok", "candles": [[OPEN, 1e400, 101.0, 99.0, 100.5, 10]]}))
@example(envelope_case({"s": "no_data", "candles": 5}))
@example(envelope_case(trading_date="0001-01-01", last_trading_date="9999-12-31", range_from=0))
def test_near_valid_envelopes_parse_or_fail_naming_the_object(case):
    check_envelope(*case)


@fuzz(150)
@given(st.one_of(st.binary(max_size=300), JSON_VALUES.map(dumps), st.sampled_from(DEEP)))
@example(b"[" * 5000)
@example(b'{"envelope_version":1,"fetched_at":"0001-01-01T00:00:00+05:00"}')
def test_garbage_is_never_an_envelope_and_never_a_crash(raw):
    check_envelope(raw, None)


@st.composite
def references(draw) -> bytes:
    doc = json.loads(
        build_reference(
            envelope_key="ohlcv/raw/symbol=SBIN-EQ/exchange=NSE/year=2025/month=11/day=24/ingest-x.json",
            symbol="NSE:SBIN-EQ",
            trading_date=DAY,
            range_from=OPEN - 86_400,
            range_to=OPEN + 22_499,
            fetched_at=datetime(2025, 11, 25, 12, tzinfo=UTC),
        )
    )
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from([*doc, "response"]))
        if draw(st.booleans()):
            doc.pop(key, None)
        else:
            doc[key] = draw(
                HEADER_VALUES
                | st.sampled_from(
                    [
                        "ohlcv/raw/symbol=SBIN-EQ/exchange=NSE/../../../etc/passwd",
                        "ohlcv/raw/symbol=INFY-EQ/exchange=NSE/year=2025/month=11/day=24/ingest-x.json",
                        "/ohlcv/raw/symbol=SBIN-EQ/exchange=NSE/x.json",
                    ]
                )
            )
    return dumps(doc)


@fuzz(150)
@given(references())
@example(
    b'{"envelope_version":1,"ref":"ohlcv/raw/symbol=SBIN-EQ/exchange=NSE/x.json","symbol":"NSE:SBIN-EQ",'
    b'"trading_date":"2025-11-25","fetched_at":"0001-01-01T00:00:00+05:00","range_from":1,"range_to":2}'
)
@example(
    b'{"envelope_version":1,"ref":"ohlcv/raw/symbol=SBIN-EQ/exchange=NSE/../../x.json","symbol":"NSE:SBIN-EQ",'
    b'"trading_date":"2025-11-25","fetched_at":"2025-11-25T00:00:00Z","range_from":1,"range_to":2}'
)
def test_reference_objects_parse_or_fail_naming_the_object(raw):
    parsed = named(lambda: read_raw_object(raw, source=SOURCE), SOURCE)
    if isinstance(parsed, RawReference):
        assert parsed.ref.startswith("ohlcv/raw/symbol=SBIN-EQ/exchange=NSE/") and parsed.ref.endswith(".json")
        assert parsed.fetched_at.tzinfo is not None and parsed.range_from <= parsed.range_to
        assert ".." not in parsed.ref.split("/")


# --- raw objects of a day, read from S3 (rawstore) ----------------------------------------------------
class FakeS3:
    """Just enough of an S3 client for the readers: get_object, list_objects_v2 pages, NoSuchKey."""

    class exceptions:
        class NoSuchKey(Exception):
            pass

    def __init__(self, objects: dict[str, bytes]):
        self.objects = objects

    def get_object(self, Bucket, Key):
        if Key not in self.objects:
            raise self.exceptions.NoSuchKey(Key)
        return {"Body": io.BytesIO(self.objects[Key])}

    def get_paginator(self, name):
        objects = self.objects

        class Pages:
            def paginate(self, Bucket, Prefix):
                yield {"Contents": [{"Key": k} for k in sorted(objects) if k.startswith(Prefix)]}

        return Pages()


DAY_PREFIX = "ohlcv/raw/symbol=SBIN-EQ/exchange=NSE/year=2025/month=11/day=25/"


@fuzz(80)
@given(st.lists(st.one_of(envelopes().map(lambda c: c[0]), references(), st.binary(max_size=40)), max_size=4))
def test_a_days_raw_objects_are_read_or_fail_naming_the_object(bodies):
    objects = {f"{DAY_PREFIX}ingest-{i}.json": body for i, body in enumerate(bodies)}
    s3 = FakeS3(objects)
    keys = raw_day_keys(s3, "raw", Symbol.parse("NSE:SBIN-EQ"), DAY)
    got = named(lambda: day_envelopes(EnvelopeCache(s3, "raw"), keys, "NSE:SBIN-EQ", DAY), "s3://raw/ohlcv/raw/")
    if not isinstance(got, PricefeedError):
        for candles in got:
            check_day(candles, DAY)


# --- Fyers answers: history and token endpoints --------------------------------------------------------
HTTP_STATUSES = st.sampled_from([200, 200, 200, 201, 204, 301, 400, 401, 403, 404, 429, 500, 502, 503]) | st.integers(
    0, 999
)
HEADER_TEXT = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "1",
            "0.5",
            "-3",
            "inf",
            "-inf",
            "nan",
            "1e309",
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Wed, 21 Oct 2015 07:28:00 -0000",
        ]
    ),
)
HEADERS = st.dictionaries(st.sampled_from(["Retry-After", "X-Retry-After-Ms", "Content-Type"]), HEADER_TEXT, max_size=3)
CODES = st.sampled_from([-8, -15, -16, -17, -50, -300, -352, -429, 429, 200, 500, -437, -371, -441, "-300", "x"])


@st.composite
def history_bodies(draw) -> bytes:
    """A near-valid /data/history body: fields dropped, duplicated (as raw JSON), retyped, reordered."""
    answer: dict = {"s": "ok", "candles": draw(candle_rows())}
    if draw(st.booleans()):
        answer["code"] = draw(CODES | JSON_VALUES)
    if draw(st.booleans()):
        answer["message"] = draw(st.text(max_size=20) | JSON_VALUES)
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from(["s", "candles", "code", "message", "extra"]))
        if draw(st.booleans()):
            answer.pop(key, None)
        else:
            answer[key] = draw(st.sampled_from(["ok", "no_data", "error", "OK", ""]) | JSON_VALUES)
    answer = {k: answer[k] for k in draw(st.permutations(list(answer)))}
    body = dumps(answer)
    if draw(st.integers(0, 9)) == 0:  # a duplicated field: the last one wins in both parsers
        body = body[:-1] + b', "s": ' + dumps(draw(JSON_VALUES)) + b"}" if body.endswith(b"}") else body
    return body


def check_answer(status: int, headers: dict, body: bytes) -> dict | None:
    try:
        payload = parse_answer(status, headers, body, context="history NSE:SBIN-EQ")
    except FyersError as exc:
        assert str(exc).startswith("history NSE:SBIN-EQ: "), str(exc)
        if isinstance(exc, RateLimited):
            assert exc.retry_after is None or (math.isfinite(exc.retry_after) and exc.retry_after >= 0)
        return None
    assert isinstance(payload, dict) and payload["s"] in ("ok", "no_data")
    return payload


@fuzz(400)
@given(
    HTTP_STATUSES, HEADERS, st.one_of(history_bodies(), history_bodies(), st.binary(max_size=80), st.sampled_from(DEEP))
)
@example(200, {}, b'{"s":"ok","code":Infinity}')
@example(429, {"Retry-After": "inf"}, b"")
def test_history_answers_classify_and_their_envelope_parses(status, headers, body):
    payload = check_answer(status, headers, body)
    if payload is None:
        return
    # pricefeed.fyers.client stores an answer verbatim in an envelope when it is no_data, or ok with a candles list.
    candles = payload.get("candles")
    if payload["s"] == "ok" and not isinstance(candles, list):
        return
    raw = build_envelope(
        symbol="NSE:SBIN-EQ",
        resolution="1",
        range_from=OPEN,
        range_to=OPEN + 22_499,
        trading_date=DAY,
        fetched_at=datetime(2025, 11, 30, 12, tzinfo=UTC),
        http_status=200,
        body=body,
    )
    parsed = read_raw_object(raw, source=SOURCE)
    assert isinstance(parsed, Envelope)
    day = parsed.candles()
    check_day(day, DAY)
    assert day.received == (len(candles) if isinstance(candles, list) else 0)


@fuzz(100)
@given(HEADERS)
def test_retry_after_is_a_finite_wait_or_none(headers):
    wait = retry_after_seconds(headers)
    assert wait is None or (math.isfinite(wait) and wait >= 0)


def jwt(claims: object) -> str:
    payload = base64.urlsafe_b64encode(claims if isinstance(claims, bytes) else dumps(claims)).rstrip(b"=").decode()
    return f"eyJhbGciOiJIUzI1NiJ9.{payload}.sig"


TOKENS = st.one_of(
    st.text(max_size=30),
    st.builds(lambda exp: jwt({"exp": exp}), JSON_VALUES),
    st.builds(jwt, JSON_VALUES),
    st.builds(jwt, st.binary(max_size=30)),
    st.sampled_from([jwt(b"[" * 5000), jwt({"exp": 1e300}), jwt({"exp": -1e300}), "a.b.c", "tok\r\nX-Injected: 1"]),
    JSON_VALUES,
)
NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


@st.composite
def token_bodies(draw) -> bytes:
    answer: dict = {"s": "ok", "code": 200, "message": "", "access_token": draw(TOKENS), "refresh_token": draw(TOKENS)}
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from([*answer, "extra"]))
        if draw(st.booleans()):
            answer.pop(key, None)
        else:
            answer[key] = draw(CODES | JSON_VALUES)
    return dumps(answer)


def check_tokens(tokens: auth.Tokens) -> None:
    for value in (tokens.access_token, tokens.refresh_token or "r"):  # no refresh token: Fyers issued none
        assert isinstance(value, str) and value and value.isprintable() and not any(c.isspace() for c in value)
    assert tokens.refresh_token or tokens.refresh_expires_at == tokens.issued_at
    for moment in (tokens.access_expires_at, tokens.refresh_expires_at, tokens.issued_at):
        assert moment.tzinfo is not None
    assert auth.Tokens.from_json(tokens.to_json()) is not None


OLD = auth.Tokens("old-access", "old-refresh", NOW, NOW + timedelta(days=10), NOW - timedelta(days=5))


@fuzz(250)
@given(HTTP_STATUSES, token_bodies() | st.binary(max_size=60) | st.sampled_from(DEEP))
@example(200, b'{"s":"ok","access_token":"' + jwt(b"[" * 5000).encode() + b'","refresh_token":"r"}')
@example(200, b'{"s":"ok","access_token":"a\\nb","refresh_token":"r"}')
def test_token_endpoint_answers_give_tokens_or_a_named_fyers_error(status, body):
    for context, make in (
        ("validate-authcode", lambda payload: auth.tokens_from_exchange(payload, NOW)),
        ("validate-refresh-token", lambda payload: auth.tokens_after_refresh(OLD, payload, NOW)),
    ):
        try:
            tokens = make(parse_answer(status, {}, body, context=context))
        except FyersError as exc:
            assert str(exc).startswith(f"{context}: "), str(exc)
            continue
        check_tokens(tokens)


@fuzz(150)
@given(
    st.one_of(
        JSON_VALUES.map(dumps),
        st.binary(max_size=60),
        st.sampled_from(DEEP),
        st.builds(
            lambda d: json.dumps(d, allow_nan=True),
            st.fixed_dictionaries(
                {},
                optional={
                    "access_token": TOKENS,
                    "refresh_token": TOKENS,
                    "access_expires_at": HEADER_VALUES,
                    "refresh_expires_at": HEADER_VALUES,
                    "issued_at": HEADER_VALUES,
                },
            ),
        ),
    )
)
def test_stored_tokens_load_or_fail_naming_the_field(text):
    loaded = named(lambda: auth.Tokens.from_json(text), "stored tokens")
    if not isinstance(loaded, PricefeedError):
        assert loaded.access_expires_at.tzinfo is not None


@fuzz(150)
@given(TOKENS)
def test_jwt_expiry_is_a_utc_datetime_or_none(token):
    found = auth.jwt_expiry(token)
    assert found is None or (isinstance(found, datetime) and found.tzinfo is not None)


# --- the OAuth callback query ----------------------------------------------------------------------------
APP = AppConfig(app_id="XA1234-100", secret_key="s3cr3t", redirect_uri="http://127.0.0.1/oauth/callback", pin="1234")
CLOCK = 1_795_600_000.0
GOOD_STATE = oauth.new_state(APP, now=CLOCK - 5)
QUERY_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "ok",
            "error",
            "200",
            "-437",
            "",
            GOOD_STATE,
            GOOD_STATE + "x",
            "²³.nonce-nonce.sig",
            "1795600000.nonce-nonce.sïg",
            "9" * 5000 + ".nonce-nonce.sig",
            "١٧٩٥٦٠٠٠٠٠.nonce-nonce.sig",
            "eyJhbGciOi.example.sig",
            "a b",
            "x" * 10_000,
        ]
    ),
)
QUERY_VALUES = QUERY_TEXT | st.lists(QUERY_TEXT, max_size=3) | st.none() | st.integers()
QUERIES = st.dictionaries(
    st.sampled_from(["s", "code", "auth_code", "state", "state ", "S", "extra"]) | st.text(max_size=5),
    QUERY_VALUES,
    max_size=6,
)


@fuzz(300)
@given(QUERIES)
@example({"s": "ok", "auth_code": "abc", "state": "²³.nonce-nonce.sig"})
@example({"s": "ok", "auth_code": "abc", "state": "1795600000.nonce-nonce.sïg"})
@example({"s": "ok", "auth_code": "abc", "state": "9" * 5000 + ".nonce-nonce.sig"})
def test_the_callback_query_gives_a_code_or_names_the_bad_parameter(query):
    # What complete_login checks before anything is stored: the state, then the callback.
    nonce = named(lambda: oauth.check_state(APP, auth.query_value(query.get("state")), now=CLOCK), "login state")
    code = named(lambda: auth.parse_callback(query), "login callback: parameter '")
    if isinstance(code, str):
        assert code and code == code.strip() and len(code) <= 8192
    if isinstance(nonce, str):
        assert auth.query_value(query.get("state")) == GOOD_STATE


@fuzz(40)
@given(QUERIES | st.sampled_from([[], "s=ok", None, 5]))
def test_complete_login_refuses_a_bad_callback_before_storing_anything(query):
    class Refuse:
        def __getattr__(self, name):
            raise AssertionError(f"{name} must not be called for a refused callback")

    try:
        asyncio.run(
            oauth.complete_login(
                query,
                app=APP,
                base_url="http://127.0.0.1:1",
                store=Refuse(),
                dynamodb_client=Refuse(),
                table_name="t",
                clock=lambda: CLOCK,
            )
        )
    except InvalidInput as exc:
        assert "login state" in str(exc) or "login callback" in str(exc), str(exc)
    except AssertionError:
        # Only a query with a good state and a well-formed code may get as far as storing the state.
        assert auth.query_value(query.get("state")) == GOOD_STATE  # type: ignore[union-attr]


# --- the ticker list ---------------------------------------------------------------------------------------
TICKER_CELLS = st.sampled_from(
    [
        "NSE:SBIN-EQ",
        "nse:sbin-eq",
        " NSE:INFY-EQ ",
        "BSE:SBIN-A",
        "XYZ:FOO",
        "NSE:M&M-EQ",
        "NSE:NIFTY20OCT11000CE",
        "NSE:",
        ":SBIN",
        "NSE:SB IN",
        "NSE:ŞBIN",
        "\uff2e\uff33\uff25:SBIN-EQ",
        "NSE:A:B",
        "NSE:x/y",
        "NSE:a=b",
        "",
        " ",
        '"NSE:TCS-EQ"',
        '"NSE:TCS-EQ,x"',
        '"unterminated',
        'a"b',
        "\x00",
        "🙂",
        "symbol",
        "x" * 200,
        "\u200bNSE:SBIN-EQ",
    ]
) | st.text(max_size=12)
TICKER_HEADERS = st.sampled_from(
    [
        "symbol",
        "Symbol,name",
        "name,symbol",
        "\ufeffsymbol",
        " SYMBOL ",
        '"symbol"',
        "ticker",
        "",
        "symbol,symbol",
        "a,b,c",
    ]
) | st.text(max_size=12)


@st.composite
def ticker_csvs(draw) -> str:
    lines = [] if draw(st.integers(0, 9)) == 0 else [draw(TICKER_HEADERS)]
    for _ in range(draw(st.integers(0, 12))):
        lines.append(",".join(draw(st.lists(TICKER_CELLS, min_size=0, max_size=4))))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = ending.join(lines) + draw(st.sampled_from(["", ending, ending * 3]))
    return ("\ufeff" if draw(st.integers(0, 4)) == 0 else "") + text


def check_tickers(result, source: str, text: str | None = None) -> None:
    if isinstance(result, PricefeedError):
        assert str(result).startswith(source), str(result)
        return
    if text is not None:  # every data row is a symbol, a duplicate or a rejection (blank lines are no rows)
        rows = [row for row in csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))][1:]
        assert len(result.symbols) + result.duplicates + len(result.rejected) == sum(1 for row in rows if row)
    assert result.symbols and len(set(result.symbols)) == len(result.symbols)
    for symbol in result.symbols:
        assert isinstance(symbol, Symbol) and str(symbol) == normalize_symbol(str(symbol))
    assert result.duplicates >= 0
    for rejected in result.rejected:
        assert isinstance(rejected["line"], int) and rejected["line"] >= 2
        assert isinstance(rejected["reason"], str) and len(rejected["value"]) <= 64


@fuzz(400)
@given(ticker_csvs() | st.text(max_size=200))
@example("symbol\n" + "x" * 200_000 + "\n")
@example('symbol\n"NSE:SBIN-EQ\n')
def test_ticker_csv_text_gives_symbols_or_names_the_list(text):
    source = "ticker list s3://raw/config/nse_tickers.csv"
    check_tickers(named(lambda: parse_ticker_csv(text, source=source), source), source, text)


@fuzz(100)
@given(st.binary(max_size=200) | ticker_csvs().map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_ticker_list_bytes_from_s3_give_symbols_or_name_the_object(body):
    source = "ticker list s3://raw/config/nse_tickers.csv"
    s3 = FakeS3({"config/nse_tickers.csv": body})
    check_tickers(named(lambda: _read_ticker_list(s3, "raw", "config/nse_tickers.csv"), source), source)


# --- the symbol master --------------------------------------------------------------------------------------
MASTER_CELLS = TICKER_CELLS | st.sampled_from(["10100000003045", "STATE BANK OF INDIA", "0915-1530|1815-1915:", "None"])


@st.composite
def master_csvs(draw) -> bytes:
    width = draw(st.integers(1, 22))
    lines = []
    for _ in range(draw(st.integers(0, 15))):
        cells = [draw(MASTER_CELLS) for _ in range(draw(st.integers(0, width)))]
        if len(cells) > 9 and draw(st.booleans()):
            cells[9] = draw(st.sampled_from(["NSE:SBIN-EQ", "NSE:INFY-EQ", "nse:tcs-eq", "NSE:M&M-EQ"]))
        lines.append(",".join(cells))
    return draw(st.sampled_from(["\n", "\r\n"])).join(lines).encode("utf-8", "surrogatepass")


@fuzz(200)
@given(master_csvs() | st.binary(max_size=200))
@example(b"\xef\xbb\xbf" + b"x," * 9 + b"NSE:SBIN-EQ\n" + b'"' + b"y" * 200_000)
def test_symbol_master_csv_gives_tickers_or_names_the_file(data):
    source = "https://public.fyers.in/sym_details/NSE_CM.csv"
    master = named(lambda: parse_master(data, segment="NSE_CM", source=source), "NSE_CM", source)
    if not isinstance(master, PricefeedError):
        assert master.rows >= 1 and master.column >= 0
        assert all(isinstance(t, str) and ":" in t for t in master.tickers)


# --- the state machine's input to the plan ------------------------------------------------------------------
PLAN_NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)  # IST 2026-11-26
DATE_VALUES = st.one_of(
    st.sampled_from(
        [
            "2026-11-25",
            "2026-11-20",
            "2026-11-26",
            "2026-11-27",
            "2017-07-03",
            "2017-07-02",
            "0001-01-01",
            "9999-12-31",
            "2026-13-01",
            "2026-02-30",
            "20261125",
            "2026-W48-3",
            "2026-11-25T10:00",
            " 2026-11-25",
            "\uff12\uff10\uff12\uff16-11-25",
            "",
        ]
    ),
    st.dates().map(date.isoformat),
    JSON_VALUES,
)
TICKER_KEYS = st.one_of(
    st.sampled_from(
        [
            "config/nse_tickers.csv",
            "config/one-off.csv",
            "../secrets.csv",
            "config/../../x.csv",
            "/config/nse_tickers.csv",
            "config//x.csv",
            "./config/x.csv",
            "config/x.csv/..",
            " config/x.csv",
            "config/\x00.csv",
            "config/\ud800.csv",
            "k" * 2000,
            "",
        ]
    ),
    st.text(max_size=20),
    JSON_VALUES,
)
RUN_IDS = st.sampled_from(["run-1", "backfill-2026-08-03-2026-11-20", "", "a/b", "..", ".", "x" * 500, "r\n"]) | SCALARS


@st.composite
def plan_events(draw) -> object:
    given_input = {}
    for name in draw(st.lists(st.sampled_from(["date", "from", "to", "tickers_key", "extra", "Date"]), max_size=4)):
        given_input[name] = draw(TICKER_KEYS if name == "tickers_key" else DATE_VALUES)
    event = {"run_id": draw(RUN_IDS), "input": given_input if draw(st.integers(0, 9)) else draw(JSON_VALUES)}
    if draw(st.integers(0, 9)) == 0:
        event.pop(draw(st.sampled_from(["run_id", "input"])))
    return event if draw(st.integers(0, 19)) else draw(JSON_VALUES)


PLAN_NAMES = ("plan event", "execution input", "run_id", "tickers_key")


def safe_key(key: str) -> bool:
    parts = key.split("/")
    return (
        0 < len(key.encode("utf-8")) <= 1024
        and key == key.strip()
        and not key.startswith("/")
        and all(part not in ("", ".", "..") for part in parts)
        and key.isprintable()
    )


@fuzz(500)
@given(plan_events())
@example({"run_id": "..", "input": None})
@example({"run_id": "r", "input": {"tickers_key": "../secrets.csv"}})
@example({"run_id": "r", "input": {"date": "2026-W48-3"}})
@example({"run_id": "r", "input": {1: "x", "y": 2}})
def test_the_plan_input_gives_a_request_or_names_the_field(event):
    request = named(lambda: PlanRequest.parse(event, now=PLAN_NOW), *PLAN_NAMES)
    if isinstance(request, PricefeedError):
        return
    assert MINUTE_HISTORY_START <= request.from_date <= request.to_date <= date(2026, 11, 26)
    assert request.run_id and "/" not in request.run_id and request.run_id not in (".", "..")
    assert request.tickers_key is None or safe_key(request.tickers_key)
    given_input = event.get("input") or {}
    for name in ("date", "from", "to"):
        value = given_input.get(name)
        if isinstance(value, str) and value:
            assert len(value) == 10 and value[4] == value[7] == "-", value


# --- the Glue job's arguments --------------------------------------------------------------------------------
OPTION_NAMES = st.sampled_from([*job_arguments.JOB_ARGUMENTS, "executor", "JOB_NAME", "job-bookmark-option"]) | st.text(
    max_size=8
)
ARGUMENT_VALUES = st.one_of(
    st.sampled_from(
        [
            "raw",
            "processed",
            "runs/r/symbols.json",
            "runs/r/bad.json",
            "runs/r/missing.json",
            "runs/r/ingested/",
            "runs/r/bad-ingested/",
            "runs/r/aggregate-result.json",
            "no-such-bucket",
            "Not_A_Bucket!",
            " raw ",
            "2026-11-25",
            "2026-11-25,2026-11-24",
            "2026-11-25,,x",
            "2026-13-01",
            "0001-01-01",
            "9999-12-31",
            "-1",
            "--dates",
            "",
            "threads",
            "r\ud800",
        ]
    ),
    st.text(max_size=15),
)


GLUE_BASE_ARGUMENTS = {
    "raw_bucket": "raw",
    "processed_bucket": "processed",
    "symbols_key": "runs/r/symbols.json",
    "result_key": "runs/r/aggregate-result.json",
}


def glue_argv(**changes: str) -> list[str]:
    """The script's argv with the base arguments, some of them changed."""
    argv = ["aggregate_bars.py"]
    for name, value in {**GLUE_BASE_ARGUMENTS, **changes}.items():
        argv += [f"--{name}", value]
    return argv


@st.composite
def glue_argvs(draw) -> list[str]:
    argv = ["aggregate_bars.py"]
    chosen = dict(GLUE_BASE_ARGUMENTS) if draw(st.booleans()) else {}
    for _ in range(draw(st.integers(0, 4))):
        chosen[draw(OPTION_NAMES)] = draw(ARGUMENT_VALUES)
    for name, value in chosen.items():
        if draw(st.integers(0, 4)) == 0:
            argv.append(f"--{name}={value}")
        else:
            argv += [f"--{name}", value]
    if draw(st.integers(0, 9)) == 0:
        argv.append(draw(st.sampled_from(["--dates", "--from", "stray", "-x", "--"])))
    return argv


@pytest.fixture
def glue_lake(monkeypatch):
    """Moto S3 with a run's documents (good and bad) and a recording stand-in for the aggregation."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    calls = []
    monkeypatch.setattr(job_arguments, "run_aggregation", lambda **kw: calls.append(kw) or {"ok": True})
    with mock_aws():
        s3 = boto3.client("s3", region_name="ap-south-1")
        for bucket in ("raw", "processed"):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
        objects = {
            "runs/r/symbols.json": b'{"symbols": ["NSE:SBIN-EQ"], "dates": ["2026-11-25"]}',
            "runs/r/bad.json": b'{"symbols": "NSE:SBIN-EQ", "dates": [1]}',
            "runs/r/ingested/NSE/SBIN-EQ.json": b'{"symbol": "NSE:SBIN-EQ", "dates": ["2026-11-25"]}',
            "runs/r/bad-ingested/NSE/SBIN-EQ.json": b'{"symbol": "NSE:SBIN-EQ", "dates": ["25-11-2026"]}',
        }
        for key, body in objects.items():
            s3.put_object(Bucket="raw", Key=key, Body=body)
        yield s3, calls


def test_glue_job_arguments_give_a_run_or_name_the_argument(glue_lake):
    s3, calls = glue_lake

    @fuzz(200)
    @given(glue_argvs())
    @example(glue_argv(raw_bucket=" raw "))
    @example(glue_argv(raw_bucket="no-such-bucket"))
    @example(glue_argv(symbols_key="runs/r/\ud800"))
    def run(argv):
        calls.clear()
        parsed = named(lambda: job_arguments.job_arguments(argv), "job argument")
        if isinstance(parsed, PricefeedError):
            return
        args, on_glue = parsed
        assert on_glue is False
        result = named(lambda: job_arguments.run_from_job_arguments(args, s3=s3), "--", "job argument")
        if isinstance(result, PricefeedError):
            assert not calls
            return
        (call,) = calls
        assert call["raw_bucket"] == "raw" and call["symbols"] == [Symbol("NSE", "SBIN-EQ")]
        assert call["dates"] is None or all(type(d) is date for d in call["dates"])

    run()


@fuzz(200)
@given(st.text(max_size=40) | st.sampled_from(["2026-11-25, 2026-11-26", "0001-01-01", "2026-1-5", "²⁰²⁶-11-25"]))
def test_dates_arguments_parse_or_name_the_argument(text):
    dates = named(lambda: job_arguments.parse_dates(text, argument="--dates"), "--dates")
    if not isinstance(dates, PricefeedError):
        assert dates and all(type(d) is date for d in dates)


# --- the Map item the ingest gets, and the app config secret ---------------------------------------------
@st.composite
def ingest_items(draw) -> object:
    item: dict = {}
    fields = {
        "symbol": st.one_of(st.sampled_from(["NSE:SBIN-EQ", "NSE:M&M-EQ", "SBIN", "NSE:", ":X", ""]), SCALARS),
        "from": DATE_VALUES,
        "to": DATE_VALUES,
        "date": DATE_VALUES,
        "incremental": st.one_of(st.booleans(), SCALARS),
        "run_id": st.one_of(st.text(max_size=20), SCALARS),
        "attempt": st.one_of(st.integers(-3, 10), SCALARS),
        "ingested_prefix": st.one_of(st.sampled_from(["ohlcv/runs/r/ingested/", "/abs/", "no-slash", ""]), SCALARS),
    }
    for name in draw(st.lists(st.sampled_from(sorted(fields)), max_size=8, unique=True)):
        item[name] = draw(fields[name])
    return item if draw(st.integers(0, 19)) else draw(JSON_VALUES)


@fuzz(400)
@given(ingest_items())
@example({"symbol": "NSE:SBIN-EQ", "from": "2025-11-26", "to": "2025-11-25"})
@example({"symbol": "NSE:SBIN-EQ", "from": "2025-11-25", "to": "2025-11-25", "attempt": True})
@example({"symbol": "NSE:SBIN-EQ", "date": "2025-11-25"})
def test_an_ingest_item_gives_a_request_or_names_the_field(item):
    from pricefeed.ingest.item import IngestRequest

    request = named(lambda: IngestRequest.parse(item), "ingest item", "symbol")
    if isinstance(request, PricefeedError):
        return
    assert request.from_date <= request.to_date
    assert isinstance(request.attempt, int) and request.attempt >= 0
    assert request.ingested_prefix is None or request.ingested_prefix.endswith("/")


class _OneSecret:
    """A Secrets Manager client that holds one value."""

    def __init__(self, text: str | None):
        self.text = text

    def get_secret_value(self, SecretId: str) -> dict:
        return {"SecretString": self.text}


APP_SECRET_TEXTS = st.one_of(
    st.text(max_size=40),
    JSON_VALUES.map(lambda v: json.dumps(v, allow_nan=True)),
    st.dictionaries(
        st.sampled_from(["app_id", "secret_key", "redirect_uri", "pin", "extra"]), SCALARS | JSON_VALUES, max_size=5
    ).map(json.dumps),
    st.sampled_from([d.decode() for d in DEEP]),
)


@fuzz(300)
@given(APP_SECRET_TEXTS)
@example('{"app_id": "A-100", "secret_key": {"k": 1}, "redirect_uri": "http://127.0.0.1:1/cb", "pin": "1234"}')
@example("[" * 5000)
def test_the_app_config_secret_gives_a_config_or_names_the_field_never_a_value(text):
    from pricefeed.auth.store import load_app_config

    config = named(lambda: load_app_config(_OneSecret(text), "app-config", environ={}), "app config secret")
    if isinstance(config, PricefeedError):
        data = json.loads(text) if text.startswith("{") and len(text) < 4000 else {}
        for value in (data.values() if isinstance(data, dict) else ()):
            if isinstance(value, str) and len(value) >= 4:
                assert value not in str(config), "the error shows a value of the secret"
        return
    assert all(isinstance(getattr(config, f), str) and getattr(config, f) for f in ("app_id", "secret_key", "pin"))
