"""parse_answer: every kind of Fyers answer maps to success or exactly one named error."""

import json

import pytest

from pricefeed.errors import (
    BadRequest,
    FyersError,
    FyersPermissionDenied,
    InvalidSymbol,
    RateLimited,
    TokenExpired,
    TransientFyersError,
)
from pricefeed.fyers.answers import parse_answer, retry_after_seconds

TOKEN = "eyJhbGciOi.SECRET-ACCESS-TOKEN.sig"
CONTEXT = "history NSE:M&M-EQ 1 1700000000..1700086400"


def answer(status, body, headers=None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_answer(status, headers or {}, raw, context=CONTEXT, redact=[TOKEN])


def error_body(code, message="boom"):
    return {"s": "error", "code": code, "message": message}


def test_ok_returns_the_payload():
    body = {"s": "ok", "code": 200, "message": "", "candles": [[1700000000, 1, 2, 0.5, 1.5, 100]]}
    assert answer(200, body) == body


@pytest.mark.parametrize("body", [{"s": "no_data"}, {"s": "no_data", "candles": []}])
def test_no_data_is_a_success_with_or_without_candles(body):
    assert answer(200, body)["s"] == "no_data"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (429, {"s": "error", "code": -429, "message": "request limit reached"}, RateLimited),
        (429, b"Too Many Requests", RateLimited),
        (200, error_body(-429), RateLimited),
        (200, error_body(429, "request limit reached"), RateLimited),
        (400, error_body(429), RateLimited),
        (200, error_body(-8, "Your token has expired"), TokenExpired),
        (401, error_body(-15), TokenExpired),
        (400, error_body(-16), TokenExpired),
        (200, error_body(-17), TokenExpired),
        (401, b"", TokenExpired),
        (400, error_body(-300, "Invalid symbol provided"), InvalidSymbol),
        (200, error_body(-300), InvalidSymbol),
        (400, error_body(-50, "Invalid input"), BadRequest),
        (400, {"s": "error", "message": "Invalid input"}, BadRequest),
        (200, {"s": "error", "code": -1, "message": "invalid input"}, BadRequest),
        (400, b"<html>bad request</html>", BadRequest),
        (404, b"not found", BadRequest),
        (422, error_body(-99), BadRequest),
        (200, error_body(-437, "invalid auth code"), BadRequest),
        (403, b"Forbidden", FyersPermissionDenied),
        (200, error_body(-352, "Invalid app id"), FyersPermissionDenied),
        (500, error_body(500, "Internal Server Error"), TransientFyersError),
        (502, b"<html>Bad Gateway</html>", TransientFyersError),
        (503, b"", TransientFyersError),
        (200, error_body(500), TransientFyersError),
        (200, b"<html>maintenance</html>", TransientFyersError),
        (200, b'{"s":"ok","candles":[[1700000000,1,2', TransientFyersError),
        (200, b"", TransientFyersError),
        (200, b"[1, 2]", TransientFyersError),
        (200, {"candles": []}, TransientFyersError),
        (200, {"s": "pending"}, TransientFyersError),
    ],
)
def test_error_answers_map_to_named_errors(status, body, expected):
    with pytest.raises(expected) as caught:
        answer(status, body)
    assert type(caught.value) is expected  # exactly this class: the state machine routes on the name
    assert caught.value.http_status == status
    assert CONTEXT in str(caught.value)


def test_message_carries_fyers_code_and_text_but_never_the_token():
    body = error_body(-300, f"Invalid symbol provided (token {TOKEN})")
    with pytest.raises(InvalidSymbol) as caught:
        answer(400, body)
    message = str(caught.value)
    assert "-300" in message and "Invalid symbol provided" in message and "NSE:M&M-EQ" in message
    assert TOKEN not in message
    assert caught.value.code == -300


@pytest.mark.parametrize("status", [200, 400, 401, 403, 429, 500])
@pytest.mark.parametrize("code", [-8, -15, -16, -17, -50, -300, -352, -429, 429, -437, -1005, None])
def test_no_error_message_repeats_a_redacted_value(status, code):
    echo = f"bad token {TOKEN}; hash abc123hash"
    with pytest.raises(FyersError) as caught:
        parse_answer(
            status,
            {},
            json.dumps(error_body(code, echo)).encode(),
            context=CONTEXT,
            redact=[TOKEN, "abc123hash"],
        )
    assert TOKEN not in str(caught.value) and "abc123hash" not in str(caught.value)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": "0.5"}, 0.5),
        ({"X-Retry-After-Ms": "1500"}, 1.5),
        ({"Retry-After": "2", "X-Retry-After-Ms": "900"}, 2.0),
        ({"Retry-After": "soon", "X-Retry-After-Ms": "250"}, 0.25),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past: no wait
        ({"Retry-After": "-4"}, 0.0),
        ({}, None),
    ],
)
def test_retry_after_headers(headers, expected):
    assert retry_after_seconds(headers) == expected


def test_rate_limited_carries_retry_after():
    with pytest.raises(RateLimited) as caught:
        answer(429, error_body(-429), headers={"Retry-After": "2"})
    assert caught.value.retry_after == 2.0
    with pytest.raises(RateLimited) as caught:
        answer(429, error_body(-429))
    assert caught.value.retry_after is None
