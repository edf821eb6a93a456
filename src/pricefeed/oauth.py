"""The login flow behind /oauth/login and /oauth/callback: a signed, expiring state and the code exchange."""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets
import time
from collections.abc import Mapping

import aiohttp

from pricefeed import auth
from pricefeed.errors import FyersError, InvalidInput
from pricefeed.tokens import AppConfig, TokenStore

STATE_TTL_S = 600


def _state_key(app: AppConfig) -> bytes:
    # Derived from the app secret, so a state cannot be forged without it and no extra secret is needed.
    return hashlib.sha256(b"pricefeed-oauth-state:" + app.secret_key.encode()).digest()


def new_state(app: AppConfig, *, now: float | None = None) -> str:
    issued = str(int(now if now is not None else time.time()))
    nonce = secrets.token_urlsafe(16)
    sig = hmac.new(_state_key(app), f"{issued}.{nonce}".encode(), hashlib.sha256).hexdigest()
    return f"{issued}.{nonce}.{sig}"


def check_state(app: AppConfig, state: str | None, *, now: float | None = None) -> None:
    """InvalidInput unless ``state`` was issued by :func:`new_state` for this app within STATE_TTL_S."""
    parts = (state or "").split(".")
    if len(parts) != 3 or not parts[0].isdigit():
        raise InvalidInput("login state is missing or malformed: start again at /oauth/login")
    issued, nonce, sig = parts
    good = hmac.new(_state_key(app), f"{issued}.{nonce}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(good, sig):
        raise InvalidInput("login state does not match: start again at /oauth/login")
    age = (now if now is not None else time.time()) - int(issued)
    if not 0 <= age <= STATE_TTL_S:
        raise InvalidInput("login state has expired: start again at /oauth/login")


def login_location(app: AppConfig, base_url: str) -> str:
    return auth.login_url(base_url, app.app_id, app.redirect_uri, new_state(app))


async def complete_login(query: Mapping[str, str], *, app: AppConfig, base_url: str, store: TokenStore) -> auth.Tokens:
    """Verify the state, exchange the auth code, store the tokens."""
    check_state(app, query.get("state"))
    code = auth.parse_callback(query)
    async with aiohttp.ClientSession() as session:
        tokens = await auth.exchange_auth_code(session, base_url, app.app_id, app.secret_key, code)
    store.save(tokens)
    return tokens


def page(title: str, message: str, status: int) -> dict:
    """An HTTP API (payload 2.0) response with a short HTML page; never carries a token."""
    body = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    return {"statusCode": status, "headers": {"content-type": "text/html; charset=utf-8"}, "body": body}


def error_page(exc: Exception) -> dict:
    if isinstance(exc, InvalidInput):
        return page("Login failed", str(exc), 400)
    if isinstance(exc, FyersError):
        return page("Fyers refused the login", f"{type(exc).__name__}: {exc}", 502)
    return page("Login failed", "unexpected error; see the function's logs", 500)
