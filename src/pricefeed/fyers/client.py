"""A small typed aiohttp client for Fyers' ``/data/history``, with Fyers' answers mapped to named errors.

Every answer is classified by :func:`pricefeed.fyers.answers.parse_answer` (also used by
:mod:`pricefeed.auth.fyers_oauth`); only
``TransientFyersError`` and ``RateLimited`` are retried here, a few times, before the error propagates
to the state machine, which retries on a longer scale.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, TypeVar

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from pricefeed.contracts import carries_open_interest
from pricefeed.errors import (
    FyersError,
    InvalidInput,
    RateLimited,
    TokenExpired,
    TransientFyersError,
)
from pricefeed.fyers.answers import parse_answer, request_answer
from pricefeed.symbol import Symbol

__all__ = [
    "AccessTokens",
    "FyersClient",
    "HistoryResponse",
    "RequestGate",
    "call_with_retries",
    "parse_answer",
]

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = "pricefeed/0.1 (+https://github.com/pricefeed)"
#: A Retry-After longer than this is not waited out inside one call: the error propagates at once.
MAX_INLINE_WAIT_S = 60.0

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class RequestGate(Protocol):
    """The account-wide rate budget every request passes (``pricefeed.fyers.ratelimit.AccountRateLimiter``)."""

    async def acquire(self, *, max_wait_s: float = ...) -> float: ...

    async def record_rate_limited(self, retry_after: float | None) -> None: ...


#: Token replacements per call. The first may hand over a token stored earlier that Fyers refuses too (every
#: token issued before 06:00 IST dies then, a newer login's included); the second then refreshes. Refused after
#: that, the fault is not a stale token.
MAX_TOKEN_REPLACEMENTS = 2


class AccessTokens(Protocol):
    """Where the access token comes from and how an expired one is replaced (``pricefeed.auth.keeper.TokenKeeper``)."""

    async def access_token(self) -> str: ...

    async def replace_expired(self, failed_access_token: str) -> str: ...


@dataclass(frozen=True)
class HistoryResponse:
    """One ``/data/history`` answer: what was asked, the HTTP body verbatim, and the parsed candles."""

    symbol: str
    resolution: str
    range_from: int
    range_to: int
    http_status: int
    body: bytes = field(repr=False)
    payload: dict = field(repr=False)
    candles: list[list] = field(repr=False)
    fetched_at: datetime


# --- retries ---------------------------------------------------------------------------------
async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    max_attempts: int = 3,
    sleep: Sleep = asyncio.sleep,
    backoff_initial_s: float = 0.5,
    backoff_max_s: float = 8.0,
    max_inline_wait_s: float = MAX_INLINE_WAIT_S,
    ignore_retry_after: bool = False,
) -> T:
    """Run ``attempt`` until it succeeds, retrying only ``TransientFyersError`` (incl. ``RateLimited``).

    ``RateLimited`` waits its ``retry_after`` when given (and is not retried when that is longer than
    ``max_inline_wait_s``); other transient errors back off exponentially with jitter. After
    ``max_attempts`` attempts the last error propagates, with an ``attempts`` attribute set.
    ``ignore_retry_after``: a ``RateLimited`` is retried at once (the caller's rate gate does the waiting).
    """

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and ignore_retry_after:
            return 0.0
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return exc.retry_after
        base = backoff_initial_s * 2 ** (state.attempt_number - 1)
        return min(backoff_max_s, base + random.uniform(0, backoff_initial_s))  # jitter spreads callers

    def too_long_to_wait(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        return isinstance(exc, RateLimited) and (exc.retry_after or 0.0) > max_inline_wait_s

    def log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "Fyers attempt %d failed (%s: %s); retrying", state.attempt_number, type(exc).__name__, exc
        )

    retrying = AsyncRetrying(
        stop=stop_after_attempt(max(1, max_attempts)) | too_long_to_wait,
        wait=wait,
        retry=retry_if_exception_type(TransientFyersError),
        sleep=sleep,
        before_sleep=log_retry,
        reraise=True,
    )
    attempts = 0

    async def counted() -> T:
        nonlocal attempts
        attempts += 1
        return await attempt()

    try:
        return await retrying(counted)
    except FyersError as exc:
        exc.attempts = attempts  # type: ignore[attr-defined]  # for dead letters and logs
        raise


# --- the client ------------------------------------------------------------------------------
class FyersClient:
    """Fyers market-data calls for one app and access token.

    Use as ``async with FyersClient(...) as client``; when no ``session`` is given the client creates
    one and closes it on exit. ``sleep``, ``backoff_*`` and ``max_wait_s`` (the longest Retry-After
    waited out in-client) tune the retry waits; see :func:`call_with_retries`.

    Give either a fixed ``access_token`` or ``tokens`` (then an expired token is replaced, at most
    ``MAX_TOKEN_REPLACEMENTS`` times per call, and the call redone). With a ``gate`` every attempt first
    takes a slot of the account-wide budget, and a 429 trips the gate's breaker, so all workers pause, not
    only this one.
    """

    def __init__(
        self,
        base_url: str,
        app_id: str,
        access_token: str | None = None,
        *,
        tokens: AccessTokens | None = None,
        gate: RequestGate | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout_s: float = 20.0,
        max_attempts: int = 3,
        user_agent: str = DEFAULT_USER_AGENT,
        sleep: Sleep = asyncio.sleep,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 8.0,
        max_wait_s: float = MAX_INLINE_WAIT_S,
    ):
        if not access_token and tokens is None:
            raise InvalidInput("FyersClient needs an access_token or a tokens source")
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self._access_token = access_token or ""
        self._tokens = tokens
        self._gate = gate
        self._session = session
        self._owns_session = session is None
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.user_agent = user_agent
        self._sleep = sleep
        self._backoff = (backoff_initial_s, backoff_max_s, max_wait_s)

    def __repr__(self) -> str:
        return f"FyersClient(base_url={self.base_url!r}, app_id={self.app_id!r}, access_token=<redacted>)"

    async def __aenter__(self) -> FyersClient:
        self._ensure_session()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if this client created it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    async def history(self, symbol: str, resolution: str, range_from: int, range_to: int) -> HistoryResponse:
        """Candles for ``symbol`` between two epoch seconds (``no_data`` gives ``candles == []``).

        Raises ``RateLimited``/``TransientFyersError`` after ``max_attempts`` tries, or at once
        ``InvalidSymbol``, ``BadRequest``, ``TokenExpired``, ``FyersPermissionDenied``.
        """
        if not symbol or not resolution:
            raise InvalidInput("history needs a symbol and a resolution")
        if range_from > range_to:
            raise InvalidInput(f"history {symbol}: range_from {range_from} is after range_to {range_to}")
        params = {"symbol": symbol, "resolution": resolution, "date_format": "0"}
        params.update(range_from=str(int(range_from)), range_to=str(int(range_to)), cont_flag="1")
        if _open_interest(symbol):  # futures, options and MCX: the 7th candle value (kept verbatim in raw)
            params["oi_flag"] = "1"
        context = f"history {symbol} {resolution} {range_from}..{range_to}"

        async def once() -> HistoryResponse:
            if not self._access_token and self._tokens is not None:
                self._access_token = await self._tokens.access_token()
            if self._gate is not None:
                await self._gate.acquire(max_wait_s=self._backoff[2])
            status, headers, body = await request_answer(
                self._ensure_session(),
                "GET",
                f"{self.base_url}/data/history",
                params=params,
                headers={
                    "Authorization": f"{self.app_id}:{self._access_token}",
                    "User-Agent": self.user_agent,
                },
                context=context,
                timeout_s=self.timeout_s,
                redact=[self._access_token],
            )
            fetched_at = datetime.now(UTC)
            try:
                payload = parse_answer(status, headers, body, context=context, redact=[self._access_token])
            except RateLimited as exc:
                if self._gate is not None:  # the breaker: every worker of the account pauses
                    await self._gate.record_rate_limited(exc.retry_after)
                raise
            candles = payload.get("candles") if payload["s"] == "ok" else []
            if not isinstance(candles, list):
                raise TransientFyersError(f"{context}: HTTP {status}, s='ok' without a candles list")
            return HistoryResponse(
                symbol, resolution, int(range_from), int(range_to), status, body, payload, candles, fetched_at
            )

        for replaced in range(MAX_TOKEN_REPLACEMENTS + 1):
            try:
                return await self._with_retries(once)
            except TokenExpired:
                if self._tokens is None or replaced == MAX_TOKEN_REPLACEMENTS:
                    raise
                self._access_token = await self._tokens.replace_expired(self._access_token)
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _with_retries(self, once: Callable[[], Awaitable[T]]) -> T:
        return await call_with_retries(
            once,
            max_attempts=self.max_attempts,
            sleep=self._sleep,
            # With a gate the pause after a 429 is the gate's job: no extra wait here.
            ignore_retry_after=self._gate is not None,
            backoff_initial_s=self._backoff[0],
            backoff_max_s=self._backoff[1],
            max_inline_wait_s=self._backoff[2],
        )


def _open_interest(symbol: str) -> bool:
    try:
        return carries_open_interest(Symbol.parse(symbol))
    except InvalidInput:
        return False  # a name this library cannot read: asked as Fyers would take it, without OI
