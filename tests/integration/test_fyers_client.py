"""The Fyers client and OAuth calls against the Fyers simulator on loopback.

The simulator runs on a controllable clock; the client's ``sleep`` advances that clock, so waits
(Retry-After, backoff) take no real time.
"""

import asyncio
import json
from datetime import UTC, date, datetime, time, timedelta, timezone
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest

from pricefeed.auth.fyers_oauth import exchange_auth_code, login_url, parse_callback, refresh_access_token
from pricefeed.errors import (
    BadRequest,
    FyersError,
    InvalidSymbol,
    RateLimited,
    TokenExpired,
    TransientFyersError,
)
from pricefeed.fyers.client import FyersClient
from pricefeed.simulator import SimulatorConfig, SimulatorServer

IST = timezone(timedelta(hours=5, minutes=30))
APP_ID, SECRET, PIN = "PFSIM1-100", "sim-secret", "1234"
REDIRECT = "http://127.0.0.1:8765/oauth/callback"
START = datetime(2025, 3, 7, 12, 0, tzinfo=UTC)  # Friday 17:30 IST
WEEKDAY, SATURDAY = date(2025, 3, 4), date(2025, 3, 8)


class Clock:
    """The simulator's clock; ``sleep`` is handed to the client so its waits move this clock."""

    def __init__(self, start: datetime):
        self.t = start.timestamp()
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def day_range(day: date) -> tuple[int, int]:
    start = datetime.combine(day, time(0, 0), IST)
    return int(start.timestamp()), int((start + timedelta(days=1)).timestamp()) - 1


def history_requests(sim) -> int:
    return sim.stats()["requests"].get("/data/history", 0)


@pytest.fixture
def clock():
    return Clock(START)


@pytest.fixture
def make_sim(clock):
    servers = []

    def make(**overrides):
        values = dict(app_id=APP_ID, secret_key=SECRET, redirect_uri=REDIRECT, pin=PIN, seed=7, clock=clock)
        refresh_policy = overrides.pop("refresh_policy", "honoured")  # the refresh tests: where Fyers honours it
        values.update(overrides)
        server = SimulatorServer(SimulatorConfig(**values), port=0)
        server.__enter__()
        server.set_faults(refresh_policy=refresh_policy)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture
def sim(make_sim):
    return make_sim()


async def login(session, sim, clock):
    """The whole browser + callback + exchange flow, stopping at the redirect to our callback.

    Each step takes the user a minute, so the tests' history calls start with a fresh rate budget.
    """
    url = login_url(sim.url, APP_ID, REDIRECT, "state-42")
    async with session.get(url, allow_redirects=False) as resp:
        assert resp.status in (302, 303, 307)
        location = resp.headers["Location"]
    assert location.startswith(REDIRECT)
    auth_code = parse_callback(dict(parse_qsl(urlsplit(location).query)), expected_state="state-42")
    clock.t += 60
    now = datetime.fromtimestamp(clock.t, UTC)
    tokens = await exchange_auth_code(session, sim.url, APP_ID, SECRET, auth_code, now=now)
    clock.t += 60
    return tokens, auth_code


def logged_in(sim, clock):
    async def go():
        async with aiohttp.ClientSession() as session:
            tokens, _ = await login(session, sim, clock)
            return tokens

    return asyncio.run(go())


def fetch(sim, clock, token, symbol="NSE:SBIN-EQ", day=WEEKDAY, resolution="1", **client_kw):
    async def go():
        client_kw.setdefault("sleep", clock.sleep)
        async with FyersClient(sim.url, APP_ID, token, **client_kw) as client:
            return await client.history(symbol, resolution, *day_range(day))

    return asyncio.run(go())


def raised(sim, clock, token, **kw) -> FyersError:
    with pytest.raises(FyersError) as caught:
        fetch(sim, clock, token, **kw)
    assert token not in str(caught.value)
    return caught.value


# --- login and refresh -------------------------------------------------------------------------
def test_full_login_gives_tokens_with_the_jwt_expiry(sim, clock):
    tokens = logged_in(sim, clock)
    # the simulator's access tokens expire at the next 06:00 IST: Saturday 00:30 UTC
    assert tokens.access_expires_at == datetime(2025, 3, 8, 0, 30, tzinfo=UTC)
    assert tokens.issued_at == START + timedelta(minutes=1)  # when the exchange happened
    assert tokens.refresh_expires_at == tokens.issued_at + timedelta(days=15)
    assert tokens.access_token not in repr(tokens)


def test_an_auth_code_works_once(sim, clock):
    async def go():
        async with aiohttp.ClientSession() as session:
            _, code = await login(session, sim, clock)
            with pytest.raises(BadRequest) as caught:
                await exchange_auth_code(session, sim.url, APP_ID, SECRET, code)
            assert "-437" in str(caught.value) and code not in str(caught.value)

    asyncio.run(go())


def test_a_wrong_app_secret_is_a_bad_request_naming_no_secret(sim, clock):
    async def go():
        async with aiohttp.ClientSession() as session:
            async with session.get(login_url(sim.url, APP_ID, REDIRECT, "s"), allow_redirects=False) as resp:
                code = parse_callback(dict(parse_qsl(urlsplit(resp.headers["Location"]).query)))
            with pytest.raises(BadRequest) as caught:
                await exchange_auth_code(session, sim.url, APP_ID, "wrong-secret", code)
            assert "-371" in str(caught.value) and "wrong-secret" not in str(caught.value)

    asyncio.run(go())


def test_refresh_with_the_right_pin_gives_a_working_access_token(sim, clock):
    tokens = logged_in(sim, clock)
    sim.expire_tokens_in(0)
    assert isinstance(raised(sim, clock, tokens.access_token), TokenExpired)

    clock.t += 3600
    later = datetime.fromtimestamp(clock.t, UTC)

    async def go():
        async with aiohttp.ClientSession() as session:
            return await refresh_access_token(session, sim.url, APP_ID, SECRET, tokens, PIN, now=later)

    fresh = asyncio.run(go())
    assert fresh.access_token != tokens.access_token
    assert fresh.refresh_token == tokens.refresh_token
    assert fresh.refresh_expires_at == tokens.refresh_expires_at  # 15 days from the original issue
    assert fresh.issued_at == later
    assert len(fetch(sim, clock, fresh.access_token).candles) == 375


def test_refresh_with_a_wrong_pin_is_a_bad_request_without_the_pin(sim, clock):
    tokens = logged_in(sim, clock)

    async def go():
        async with aiohttp.ClientSession() as session:
            await refresh_access_token(session, sim.url, APP_ID, SECRET, tokens, "9999")

    with pytest.raises(BadRequest) as caught:
        asyncio.run(go())
    message = str(caught.value)
    assert "9999" not in message and tokens.refresh_token not in message and SECRET not in message


def test_refresh_adopts_a_rotated_refresh_token(sim, clock):
    sim.set_faults(refresh_rotates=True)
    tokens = logged_in(sim, clock)

    async def go(current):
        async with aiohttp.ClientSession() as session:
            return await refresh_access_token(session, sim.url, APP_ID, SECRET, current, PIN)

    fresh = asyncio.run(go(tokens))
    assert fresh.refresh_token != tokens.refresh_token
    with pytest.raises(TokenExpired):  # the old refresh token was revoked by the rotation
        asyncio.run(go(tokens))
    assert asyncio.run(go(fresh)).access_token


# --- history -----------------------------------------------------------------------------------
def test_a_weekday_has_375_one_minute_candles_and_the_body_is_kept_verbatim(sim, clock):
    tokens = logged_in(sim, clock)
    before = datetime.now(UTC)
    resp = fetch(sim, clock, tokens.access_token)
    assert resp.http_status == 200 and resp.payload["s"] == "ok"
    assert len(resp.candles) == 375
    assert resp.candles[0][0] == int(datetime.combine(WEEKDAY, time(9, 15), IST).timestamp())
    assert json.loads(resp.body) == resp.payload and resp.payload["candles"] == resp.candles
    assert (resp.symbol, resp.resolution, resp.range_from, resp.range_to) == (
        "NSE:SBIN-EQ",
        "1",
        *day_range(WEEKDAY),
    )
    assert resp.fetched_at.tzinfo is not None and resp.fetched_at >= before
    assert history_requests(sim) == 1


def test_sends_the_authorization_and_user_agent_headers_and_leaves_a_given_session_open(sim, clock):
    token = logged_in(sim, clock).access_token
    sent = []

    async def on_request_start(session, context, params):
        sent.append((str(params.url), dict(params.headers)))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)

    async def go():
        async with aiohttp.ClientSession(trace_configs=[trace]) as session:
            async with FyersClient(sim.url, APP_ID, token, session=session, user_agent="pf-test/1") as client:
                await client.history("NSE:M&M-EQ", "5", *day_range(WEEKDAY))
                assert token not in repr(client)
            assert not session.closed  # the caller's session is the caller's to close

    asyncio.run(go())
    [(url, headers)] = sent
    assert headers["Authorization"] == f"{APP_ID}:{token}"
    assert headers["User-Agent"] == "pf-test/1"
    assert url.startswith(f"{sim.url}/data/history?")
    query = dict(parse_qsl(urlsplit(url).query))
    assert "symbol=NSE:M%26M-EQ" in url
    assert query == {
        "symbol": "NSE:M&M-EQ",
        "resolution": "5",
        "date_format": "0",
        "range_from": str(day_range(WEEKDAY)[0]),
        "range_to": str(day_range(WEEKDAY)[1]),
        "cont_flag": "1",
    }


@pytest.mark.parametrize("style", ["empty_list", "absent"])
def test_a_weekend_is_no_data_and_no_candles(sim, clock, style):
    sim.set_faults(no_data_style=style)
    resp = fetch(sim, clock, logged_in(sim, clock).access_token, day=SATURDAY)
    assert resp.payload["s"] == "no_data" and resp.candles == []


def test_symbols_with_an_ampersand_are_url_encoded(sim, clock):
    resp = fetch(sim, clock, logged_in(sim, clock).access_token, symbol="NSE:M&M-EQ")
    assert len(resp.candles) == 375
    assert sim.stats()["history_requests_by_symbol"] == {"NSE:M&M-EQ": 1}


@pytest.mark.parametrize("status", [400, 200])
def test_an_unknown_symbol_is_invalid_symbol_and_not_retried(make_sim, clock, status):
    sim = make_sim(unknown_symbols=frozenset({"NSE:GONE-EQ"}))
    sim.set_faults(invalid_symbol_status=status)
    error = raised(sim, clock, logged_in(sim, clock).access_token, symbol="NSE:GONE-EQ", max_attempts=3)
    assert type(error) is InvalidSymbol and error.code == -300
    assert "NSE:GONE-EQ" in str(error)
    assert history_requests(sim) == 1 and clock.sleeps == []


def test_an_over_long_range_is_a_bad_request_and_not_retried(sim, clock):
    token = logged_in(sim, clock).access_token

    async def go():
        async with FyersClient(sim.url, APP_ID, token, sleep=clock.sleep) as client:
            await client.history("NSE:SBIN-EQ", "1", 1700000000, 1700000000 + 101 * 86400)

    with pytest.raises(BadRequest):
        asyncio.run(go())
    assert history_requests(sim) == 1


def test_an_expired_or_forged_token_is_token_expired_and_not_retried(sim, clock):
    token = logged_in(sim, clock).access_token
    sim.expire_tokens_in(0)
    error = raised(sim, clock, token)
    assert type(error) is TokenExpired and error.code == -8 and error.http_status == 401
    assert type(raised(sim, clock, "not-a-token")) is TokenExpired
    assert history_requests(sim) == 2


@pytest.mark.parametrize("fault", [{"error_5xx_rate": 1.0}, {"malformed_rate": 1.0}], ids=str)
def test_transient_faults_are_retried_exactly_max_attempts_times(sim, clock, fault):
    token = logged_in(sim, clock).access_token
    sim.set_faults(**fault)
    error = raised(sim, clock, token, max_attempts=3)
    assert type(error) is TransientFyersError
    assert history_requests(sim) == 3 and error.attempts == 3
    assert len(clock.sleeps) == 2


def test_connection_resets_are_retried_max_attempts_times(sim, clock):
    token = logged_in(sim, clock).access_token
    sim.set_faults(reset_rate=1.0)
    error = raised(sim, clock, token, max_attempts=3)
    assert type(error) is TransientFyersError
    assert error.attempts == 3 and len(clock.sleeps) == 2
    # aiohttp itself resends an idempotent GET once after a disconnect (RFC 9112 §9.3.1.1)
    assert 3 <= history_requests(sim) <= 6


def test_a_transient_fault_then_success(sim, clock):
    token = logged_in(sim, clock).access_token
    sim.set_faults(error_5xx_rate=0.5)
    resp = fetch(sim, clock, token, max_attempts=20)
    assert len(resp.candles) == 375


def test_a_slow_answer_times_out_as_transient(sim, clock):
    token = logged_in(sim, clock).access_token
    sim.set_faults(latency_ms=400)
    error = raised(sim, clock, token, max_attempts=2, timeout_s=0.1)
    assert type(error) is TransientFyersError and "0.1s" in str(error)


def history_twice(sim, clock, token, **client_kw):
    """Two calls in the same instant: the second meets a spent per-second budget."""

    async def go():
        async with FyersClient(sim.url, APP_ID, token, **client_kw) as client:
            first = await client.history("NSE:SBIN-EQ", "1", *day_range(WEEKDAY))
            return first, await client.history("NSE:SBIN-EQ", "1", *day_range(WEEKDAY))

    return asyncio.run(go())


@pytest.mark.parametrize("body", ["-429", "429"])
def test_rate_limited_waits_retry_after_then_succeeds(make_sim, clock, body):
    sim = make_sim(per_second=1)
    sim.set_faults(rate_limit_body=body)
    token = logged_in(sim, clock).access_token
    first, second = history_twice(sim, clock, token, max_attempts=3, sleep=clock.sleep)
    assert len(first.candles) == len(second.candles) == 375
    assert clock.sleeps == [1.0]  # the simulator's Retry-After
    assert sim.stats()["rate_limited"] == 1 and history_requests(sim) == 3


def test_rate_limited_without_retry_after_backs_off(make_sim, clock):
    sim = make_sim(per_second=1)
    sim.set_faults(retry_after_header=False)
    token = logged_in(sim, clock).access_token
    _, second = history_twice(sim, clock, token, max_attempts=3, sleep=clock.sleep, backoff_initial_s=1.0)
    assert len(second.candles) == 375
    assert len(clock.sleeps) == 1 and 1.0 <= clock.sleeps[0] <= 2.0


def test_rate_limited_propagates_after_max_attempts(make_sim, clock):
    sim = make_sim(per_minute=1)
    token = logged_in(sim, clock).access_token

    async def no_time_passes(seconds):
        clock.sleeps.append(seconds)

    with pytest.raises(RateLimited) as caught:
        history_twice(sim, clock, token, max_attempts=3, sleep=no_time_passes)
    error = caught.value
    assert error.retry_after and error.retry_after >= 1 and clock.sleeps == [error.retry_after] * 2
    assert error.attempts == 3 and history_requests(sim) == 1 + 3
    assert token not in str(error)
