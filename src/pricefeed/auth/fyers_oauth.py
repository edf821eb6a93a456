"""Fyers OAuth: the login URL, the callback, the code exchange, the refresh, and token lifetimes.

No secret (token, app secret, appIdHash, PIN) ever appears in a repr or an exception message.
These calls are not retried here: an auth code is single-use, and the caller decides what to redo.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp

from pricefeed.auth.token_claims import jwt_expiry
from pricefeed.errors import InvalidInput, TransientFyersError
from pricefeed.fyers.answers import parse_answer, request_answer
from pricefeed.istime import IST

REFRESH_TOKEN_LIFETIME = timedelta(days=15)
#: Fallback when an access token is not a JWT: real tokens have expired at the next 06:00 IST.
ACCESS_TOKEN_EXPIRES_AT_IST = time(6, 0)
AUTH_TIMEOUT_S = 20.0
#: Longest token accepted from Fyers (real ones are JWTs of well under 2 kB).
MAX_TOKEN_LENGTH = 16_384


def app_id_hash(app_id: str, secret_key: str) -> str:
    """Fyers' ``appIdHash``: lowercase hex SHA-256 of ``"<app_id>:<secret_key>"``."""
    return hashlib.sha256(f"{app_id}:{secret_key}".encode()).hexdigest()


def login_url(base_url: str, app_id: str, redirect_uri: str, state: str) -> str:
    """The URL a browser opens to log in; Fyers sends it back to ``redirect_uri`` with an auth code."""
    query = urlencode(
        {"client_id": app_id, "redirect_uri": redirect_uri, "response_type": "code", "state": state}
    )
    return f"{base_url.rstrip('/')}/api/v3/generate-authcode?{query}"


def query_value(value: Any) -> str:
    """One query parameter as a string ("" if absent)."""
    # API Gateway's multi-value form hands lists; the first value is the one that counts.
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return "" if value is None else str(value)


def parse_callback(query: Mapping[str, Any], *, expected_state: str | None = None) -> str:
    """The ``auth_code`` from the redirect's query string.

    Raises ``InvalidInput`` naming the parameter when ``s`` is not ``ok``, ``auth_code`` is missing
    or malformed, or (when ``expected_state`` is given) ``state`` does not match.
    """
    status = query_value(query.get("s"))
    if status != "ok":
        code = query_value(query.get("code"))
        code_note = f" (code {code})" if code.lstrip("-").isdigit() else ""
        shown = status if status.isalnum() and len(status) <= 20 else "<not shown>"
        raise InvalidInput(f"login callback: parameter 's' is {shown!r}, not 'ok'{code_note}")
    auth_code = query_value(query.get("auth_code")).strip()
    if not auth_code:
        raise InvalidInput("login callback: parameter 'auth_code' is missing")
    if any(ch.isspace() for ch in auth_code) or len(auth_code) > 8192:
        raise InvalidInput("login callback: parameter 'auth_code' is malformed")
    if expected_state is not None and query_value(query.get("state")) != expected_state:
        raise InvalidInput("login callback: parameter 'state' does not match the login request")
    return auth_code


def next_access_expiry(now: datetime) -> datetime:
    """The next 06:00 IST strictly after ``now`` (how long real Fyers access tokens have lasted)."""
    local = now.astimezone(IST)
    candidate = datetime.combine(local.date(), ACCESS_TOKEN_EXPIRES_AT_IST, IST)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate.astimezone(UTC)


@dataclass(frozen=True, repr=False)
class Tokens:
    """Fyers tokens with their expiries (tz-aware UTC). ``issued_at``: when the access token was obtained.
    ``refresh_token`` is ``""`` when Fyers issued none (its expiry is then ``issued_at``)."""

    access_token: str
    refresh_token: str
    access_expires_at: datetime
    refresh_expires_at: datetime
    issued_at: datetime

    def __post_init__(self) -> None:
        for name in ("access_expires_at", "refresh_expires_at", "issued_at"):
            if getattr(self, name).tzinfo is None:
                raise InvalidInput(f"Tokens.{name} must be timezone-aware")

    def __repr__(self) -> str:
        return (
            "Tokens(access_token=<redacted>, refresh_token=<redacted>, "
            f"access_expires_at={self.access_expires_at.isoformat()}, "
            f"refresh_expires_at={self.refresh_expires_at.isoformat()}, "
            f"issued_at={self.issued_at.isoformat()})"
        )

    __str__ = __repr__

    def access_expired(
        self, now: datetime | None = None, *, margin: timedelta = timedelta(minutes=5)
    ) -> bool:
        """True when the access token has expired or will within ``margin``."""
        return (now or datetime.now(UTC)) + margin >= self.access_expires_at

    def refresh_expired(
        self, now: datetime | None = None, *, margin: timedelta = timedelta(minutes=5)
    ) -> bool:
        """True when the refresh token has expired or will within ``margin`` (log in again)."""
        return (now or datetime.now(UTC)) + margin >= self.refresh_expires_at

    def to_json(self) -> str:
        """A JSON object string for storage (datetimes as ISO 8601)."""
        return json.dumps(
            {
                "access_token": self.access_token,
                "refresh_token": self.refresh_token,
                "access_expires_at": self.access_expires_at.isoformat(),
                "refresh_expires_at": self.refresh_expires_at.isoformat(),
                "issued_at": self.issued_at.isoformat(),
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes | Mapping[str, Any]) -> Tokens:
        """Inverse of :meth:`to_json`. ``InvalidInput`` (naming the field, never a value) if unusable."""
        try:
            data = json.loads(text) if isinstance(text, str | bytes) else dict(text)
        except (ValueError, TypeError, RecursionError):
            raise InvalidInput("stored tokens are not a JSON object") from None
        if not isinstance(data, dict):
            raise InvalidInput("stored tokens are not a JSON object")
        values: dict[str, Any] = {}
        if not isinstance(data.get("access_token"), str) or not data["access_token"]:
            raise InvalidInput("stored tokens: field 'access_token' is missing or empty")
        if not isinstance(data.get("refresh_token", ""), str):
            raise InvalidInput("stored tokens: field 'refresh_token' is not a string")
        values["access_token"], values["refresh_token"] = data["access_token"], data.get("refresh_token", "")
        for name in ("access_expires_at", "refresh_expires_at", "issued_at"):
            try:
                values[name] = datetime.fromisoformat(data[name])
            except (KeyError, TypeError, ValueError):
                raise InvalidInput(
                    f"stored tokens: field '{name}' is missing or not an ISO datetime"
                ) from None
            if values[name].utcoffset() is None:
                raise InvalidInput(f"stored tokens: field '{name}' has no time zone")
        return cls(**values)


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC)


def _token_field(payload: Mapping[str, Any], name: str, context: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise TransientFyersError(f"{context}: the answer has no '{name}'")
    if not _well_formed_token(value):
        raise TransientFyersError(f"{context}: the answer's '{name}' is malformed")
    return value


def _well_formed_token(value: str) -> bool:
    """Printable ASCII without whitespace, of a sane length: what may go into an Authorization header."""
    return len(value) <= MAX_TOKEN_LENGTH and value.isascii() and value.isprintable() and " " not in value


def tokens_from_exchange(payload: Mapping[str, Any], now: datetime) -> Tokens:
    """Tokens from a successful validate-authcode answer received at ``now``."""
    context = "validate-authcode"
    access = _token_field(payload, "access_token", context)
    # Since April 2026 Fyers wants one login a trading day; an answer without a refresh token is kept as
    # "not refreshable" (an empty refresh token that expired when it was issued).
    issued = payload.get("refresh_token") not in (None, "")
    refresh = _token_field(payload, "refresh_token", context) if issued else ""
    return Tokens(
        access_token=access,
        refresh_token=refresh,
        access_expires_at=jwt_expiry(access) or next_access_expiry(now),
        refresh_expires_at=now + REFRESH_TOKEN_LIFETIME if issued else now,
        issued_at=now,
    )


def tokens_after_refresh(old: Tokens, payload: Mapping[str, Any], now: datetime) -> Tokens:
    """Tokens from a successful validate-refresh-token answer received at ``now``.

    Keeps the old refresh token and its expiry (15 days from the original issue) unless the answer
    carries a new refresh token, which then lives 15 days from ``now``.
    """
    access = _token_field(payload, "access_token", "validate-refresh-token")
    new_refresh = payload.get("refresh_token")
    rotated = isinstance(new_refresh, str) and bool(new_refresh) and new_refresh != old.refresh_token
    if rotated:
        new_refresh = _token_field(payload, "refresh_token", "validate-refresh-token")
    return Tokens(
        access_token=access,
        refresh_token=new_refresh if rotated else old.refresh_token,
        access_expires_at=jwt_expiry(access) or next_access_expiry(now),
        refresh_expires_at=now + REFRESH_TOKEN_LIFETIME if rotated else old.refresh_expires_at,
        issued_at=now,
    )


async def _post(
    session: aiohttp.ClientSession, base_url: str, path: str, body: dict[str, str], redact: list[str]
) -> dict:
    context = path.rsplit("/", 1)[-1]
    status, headers, raw = await request_answer(
        session,
        "POST",
        f"{base_url.rstrip('/')}{path}",
        json=body,
        context=context,
        timeout_s=AUTH_TIMEOUT_S,
        redact=redact,
    )
    payload = parse_answer(status, headers, raw, context=context, redact=redact)
    if payload.get("s") != "ok":
        raise TransientFyersError(f"{context}: unexpected s={str(payload.get('s'))[:40]!r} (HTTP {status})")
    return payload


async def exchange_auth_code(
    session: aiohttp.ClientSession,
    base_url: str,
    app_id: str,
    secret_key: str,
    auth_code: str,
    *,
    now: datetime | None = None,
) -> Tokens:
    """Trade a login callback's auth code for tokens (``POST /api/v3/validate-authcode``).

    Raises ``BadRequest`` for a rejected code/hash/grant (-437/-371/-441), ``TokenExpired`` for an
    authentication failure, ``TransientFyersError``/``RateLimited`` for failures worth retrying.
    """
    hashed = app_id_hash(app_id, secret_key)
    body = {"grant_type": "authorization_code", "appIdHash": hashed, "code": auth_code}
    payload = await _post(
        session, base_url, "/api/v3/validate-authcode", body, [auth_code, hashed, secret_key]
    )
    return tokens_from_exchange(payload, _now(now))


async def refresh_access_token(
    session: aiohttp.ClientSession,
    base_url: str,
    app_id: str,
    secret_key: str,
    tokens: Tokens,
    pin: str,
    *,
    now: datetime | None = None,
) -> Tokens:
    """A new access token from the refresh token and PIN (``POST /api/v3/validate-refresh-token``).

    Errors as for :func:`exchange_auth_code`; an expired refresh token means logging in again.
    """
    hashed = app_id_hash(app_id, secret_key)
    body = {
        "grant_type": "refresh_token",
        "appIdHash": hashed,
        "refresh_token": tokens.refresh_token,
        "pin": pin,
    }
    redact = [tokens.refresh_token, tokens.access_token, hashed, secret_key, pin]
    payload = await _post(session, base_url, "/api/v3/validate-refresh-token", body, redact)
    return tokens_after_refresh(tokens, payload, _now(now))
