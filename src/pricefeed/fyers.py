"""A small typed aiohttp client for Fyers' ``/data/history``, with Fyers' answers mapped to named errors.

Every answer is classified by :func:`parse_answer` (also used by :mod:`pricefeed.auth`); only
``TransientFyersError`` and ``RateLimited`` are retried here, a few times, before the error propagates
to the state machine, which retries on a longer scale.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from pricefeed.chunking import minute_chunks
from pricefeed.errors import (
    BadRequest,
    FyersError,
    FyersPermissionDenied,
    InvalidInput,
    InvalidSymbol,
    RateLimited,
    TokenExpired,
    TransientFyersError,
)

__all__ = ["FyersClient", "HistoryResponse", "call_with_retries", "minute_chunks", "parse_answer"]

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = "pricefeed/0.1 (+https://github.com/pricefeed)"
AUTH_ERROR_CODES = frozenset({-8, -15, -16, -17})
RATE_LIMIT_CODES = frozenset({-429, 429})
#: A Retry-After longer than this is not waited out inside one call: the error propagates at once.
MAX_INLINE_WAIT_S = 60.0

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


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


# --- classifying answers ---------------------------------------------------------------------
def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or ``X-Retry-After-Ms``."""
    for name, scale in (("Retry-After", 1.0), ("X-Retry-After-Ms", 0.001)):
        raw = headers.get(name)
        if not raw:
            continue
        try:
            return max(0.0, float(raw) * scale)
        except ValueError:
            with contextlib.suppress(TypeError, ValueError):
                return max(0.0, (parsedate_to_datetime(raw) - datetime.now(UTC)).total_seconds())
    return None


def _json_object(body: bytes) -> dict | None:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_answer(
    http_status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    context: str,
    redact: Iterable[str] = (),
) -> dict:
    """The JSON payload of a successful answer (``s`` is ``ok`` or ``no_data``); else the named error.

    ``context`` starts every error message (say what was asked, e.g. the symbol); any ``redact``
    value is masked out of the message. Messages carry Fyers' code and message text.
    """
    payload = _json_object(body)
    code = _int_or_none(payload.get("code")) if payload is not None else None
    text = str(payload.get("message") or "")[:300] if payload is not None else ""
    # A positive 4xx/5xx code in the body means the same as that HTTP status.
    status_like = {http_status} | ({code} if code is not None and 400 <= code <= 599 else set())

    def error(cls: type[FyersError], why: str = "", **extra: Any) -> FyersError:
        detail = f"HTTP {http_status}, Fyers code {code}: {text or '(no message)'}"
        message = f"{context}: {why + '; ' if why else ''}{detail}"
        return cls(scrub(message, redact), code=code, http_status=http_status, **extra)

    if 429 in status_like or code in RATE_LIMIT_CODES:
        raise error(RateLimited, "rate limited", retry_after=retry_after_seconds(headers))
    if code == -352 or 403 in status_like:
        raise error(FyersPermissionDenied, "permission denied")
    if code in AUTH_ERROR_CODES or 401 in status_like:
        raise error(TokenExpired, "access token expired or invalid")
    if code == -300:
        raise error(InvalidSymbol, "invalid symbol")
    if code == -50 or "invalid input" in text.lower():
        raise error(BadRequest, "invalid parameters")
    if any(s >= 500 for s in status_like):
        raise error(TransientFyersError, "server error")
    if any(400 <= s < 500 for s in status_like):
        raise error(BadRequest, "request rejected")
    if payload is None:
        raise error(TransientFyersError, f"body is not a JSON object ({len(body)} bytes)")
    status = payload.get("s")
    if status in ("ok", "no_data"):
        return payload
    if status is None:
        raise error(TransientFyersError, "answer has no 's' field")
    if status == "error":
        raise error(BadRequest, "request rejected")
    raise error(TransientFyersError, f"unexpected s={str(status)[:40]!r}")


async def request_answer(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    context: str,
    timeout_s: float,
    redact: Iterable[str] = (),
    **kwargs: Any,
) -> tuple[int, Mapping[str, str], bytes]:
    """Send one request; ``(status, headers, body)``, or ``TransientFyersError`` on a network failure."""
    try:
        async with session.request(
            method, url, timeout=aiohttp.ClientTimeout(total=timeout_s), **kwargs
        ) as resp:
            body = await resp.read()
            return resp.status, resp.headers, body
    except TimeoutError as exc:
        raise TransientFyersError(f"{context}: no complete answer within {timeout_s:g}s") from exc
    except aiohttp.ClientError as exc:
        message = scrub(f"{context}: {type(exc).__name__}: {exc}", redact)
        raise TransientFyersError(message) from exc


# --- retries ---------------------------------------------------------------------------------
async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    max_attempts: int = 3,
    sleep: Sleep = asyncio.sleep,
    backoff_initial_s: float = 0.5,
    backoff_max_s: float = 8.0,
    max_inline_wait_s: float = MAX_INLINE_WAIT_S,
) -> T:
    """Run ``attempt`` until it succeeds, retrying only ``TransientFyersError`` (incl. ``RateLimited``).

    ``RateLimited`` waits its ``retry_after`` when given (and is not retried when that is longer than
    ``max_inline_wait_s``); other transient errors back off exponentially with jitter. After
    ``max_attempts`` attempts the last error propagates, with an ``attempts`` attribute set.
    """

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
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
    """

    def __init__(
        self,
        base_url: str,
        app_id: str,
        access_token: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout_s: float = 20.0,
        max_attempts: int = 3,
        user_agent: str = DEFAULT_USER_AGENT,
        sleep: Sleep = asyncio.sleep,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 8.0,
        max_wait_s: float = MAX_INLINE_WAIT_S,
    ):
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self._access_token = access_token
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
        context = f"history {symbol} {resolution} {range_from}..{range_to}"

        async def once() -> HistoryResponse:
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
            payload = parse_answer(status, headers, body, context=context, redact=[self._access_token])
            candles = payload.get("candles") if payload["s"] == "ok" else []
            if not isinstance(candles, list):
                raise TransientFyersError(f"{context}: HTTP {status}, s='ok' without a candles list")
            return HistoryResponse(
                symbol, resolution, int(range_from), int(range_to), status, body, payload, candles, fetched_at
            )

        return await call_with_retries(
            once,
            max_attempts=self.max_attempts,
            sleep=self._sleep,
            backoff_initial_s=self._backoff[0],
            backoff_max_s=self._backoff[1],
            max_inline_wait_s=self._backoff[2],
        )
