"""Fyers' answers mapped to named errors, and one request sent with network failures named too.

Used by the market-data client (``pricefeed.fyers.client``) and the login/refresh calls
(``pricefeed.auth.fyers_oauth``).
Fyers' own codes decide first; the HTTP status next; a body that is not a Fyers-shaped JSON object is a
``TransientFyersError`` (a proxy page, a cut-off answer). Messages never carry a redacted value.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from pricefeed.errors import (
    BadRequest,
    FyersError,
    FyersPermissionDenied,
    InvalidSymbol,
    RateLimited,
    TokenExpired,
    TransientFyersError,
)

AUTH_ERROR_CODES = frozenset({-8, -15, -16, -17})
RATE_LIMIT_CODES = frozenset({-429, 429})


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
            seconds = float(raw) * scale
        except ValueError:
            with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
                return max(0.0, (parsedate_to_datetime(raw) - datetime.now(UTC)).total_seconds())
            continue
        if math.isfinite(seconds):  # "inf"/"nan" say nothing usable
            return max(0.0, seconds)
    return None


def _json_object(body: bytes) -> dict | None:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # not JSON (UnicodeDecodeError is a ValueError), or absurdly nested
        return None
    return value if isinstance(value, dict) else None


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: Infinity
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
