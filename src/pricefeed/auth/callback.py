"""The login flow behind /oauth/login and /oauth/callback: a signed, expiring, single-use state and the
code exchange.

The state is ``<issued>.<nonce>.<hmac>``: the HMAC (keyed from the app secret) proves we issued it, the
issue time bounds its age, and a conditional DynamoDB put of ``oauth-state#<nonce>`` at the callback makes
it single-use. Nothing is written at /oauth/login, so opening it costs no storage.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import re
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
from botocore.exceptions import ClientError

from pricefeed.auth import fyers_oauth
from pricefeed.auth.store import AppConfig, TokenStore, load_app_config
from pricefeed.auth.token_claims import token_account
from pricefeed.config import Settings
from pricefeed.errors import FyersError, InvalidInput
from pricefeed.istime import IST

STATE_TTL_S = 600
LOGIN, CALLBACK = "/oauth/login", "/oauth/callback"
STATE_PK_PREFIX = "oauth-state#"
#: The cookie /oauth/login sets and /oauth/callback requires: a login finishes only in the browser that began it.
LOGIN_COOKIE = "pricefeed_login"
#: The Fyers account the stack serves once someone logged in (a nonce is never this short: no clash).
ACCOUNT_PK = STATE_PK_PREFIX + "account"
_NONCE = re.compile(r"[A-Za-z0-9_-]{8,64}")
_ISSUED = re.compile(r"[0-9]{1,12}")
RESTART = "start again at /oauth/login"


def _state_key(app: AppConfig) -> bytes:
    # Derived from the app secret, so a state cannot be forged without it and no extra secret is needed.
    return hashlib.sha256(b"pricefeed-oauth-state:" + app.secret_key.encode()).digest()


def _signature(app: AppConfig, issued: str, nonce: str, browser: str | None) -> str:
    # The browser's cookie is part of what is signed (as a digest: the state travels through Fyers' URLs).
    bound = hashlib.sha256((browser or "").encode()).hexdigest()
    return hmac.new(_state_key(app), f"{issued}.{nonce}.{bound}".encode(), hashlib.sha256).hexdigest()


def new_browser() -> str:
    """The value of a fresh login cookie (:data:`LOGIN_COOKIE`)."""
    return secrets.token_urlsafe(24)


def new_state(app: AppConfig, *, browser: str | None = None, now: float | None = None) -> str:
    """A fresh state for one login: unguessable, signed, valid for ``STATE_TTL_S`` seconds, usable once, and
    only in the browser holding the login cookie ``browser`` (/oauth/login always sets one)."""
    issued = str(int(now if now is not None else time.time()))
    nonce = secrets.token_urlsafe(16)
    return f"{issued}.{nonce}.{_signature(app, issued, nonce, browser)}"


def check_state(app: AppConfig, state: str | None, *, browser: str | None = None, now: float | None = None) -> str:
    """The state's nonce if ``state`` was issued by :func:`new_state` for this app and this browser's login
    cookie within STATE_TTL_S; else ``InvalidInput`` saying why. (Whether it was used before is
    :func:`consume_state`'s job.)"""
    parts = (state or "").split(".") if isinstance(state, str | None) else []
    # ASCII digits only ("²".isdigit() is true, int("²") fails) and no more than an epoch needs.
    if len(parts) != 3 or not _ISSUED.fullmatch(parts[0]):
        raise InvalidInput(f"login state is missing or malformed: {RESTART}")
    issued, nonce, sig = parts
    if not _NONCE.fullmatch(nonce):
        raise InvalidInput(f"login state does not match: {RESTART}")
    # Compared as bytes: compare_digest refuses non-ASCII str.
    if not hmac.compare_digest(_signature(app, issued, nonce, browser).encode(), sig.encode("utf-8", "replace")):
        hint = "" if browser else " (this browser has no login cookie: finish the login in the browser that "
        hint += "" if browser else "opened /oauth/login, with cookies allowed for this site)"
        raise InvalidInput(f"login state does not match this browser's login{hint}: {RESTART}")
    age = (now if now is not None else time.time()) - int(issued)
    if not 0 <= age <= STATE_TTL_S:
        raise InvalidInput(f"login state has expired: {RESTART}")
    return nonce


def consume_state(dynamodb_client: Any, table_name: str, nonce: str, *, expires_at: float) -> None:
    """Mark the state's nonce used (conditional put of ``oauth-state#<nonce>``, TTL ``expires_at``).

    ``InvalidInput`` when it was used before — a replayed callback.
    """
    try:
        dynamodb_client.put_item(
            TableName=table_name,
            Item={"pk": {"S": STATE_PK_PREFIX + nonce}, "expires_at": {"N": str(int(expires_at) + 1)}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            raise InvalidInput(f"login state was already used: {RESTART}") from None
        raise


def login_location(app: AppConfig, base_url: str, *, browser: str | None = None, now: float | None = None) -> str:
    """Where /oauth/login redirects: Fyers' login page with a fresh state bound to ``browser``."""
    return fyers_oauth.login_url(base_url, app.app_id, app.redirect_uri, new_state(app, browser=browser, now=now))


async def complete_login(
    query: Mapping[str, Any],
    *,
    app: AppConfig,
    base_url: str,
    store: TokenStore,
    dynamodb_client: Any,
    table_name: str,
    clock: Callable[[], float] = time.time,
    session: aiohttp.ClientSession | None = None,
    browser: str | None = None,
) -> fyers_oauth.Tokens:
    """Verify the state (signature incl. the browser's login cookie ``browser``, age, then single use), exchange
    the auth code, store the tokens.

    ``InvalidInput`` (a 400 page) for a forged, expired, reused or missing state or a bad callback — in
    which case nothing is stored; Fyers' refusal of the code is its named ``FyersError``.
    """
    if not isinstance(query, Mapping):
        raise InvalidInput(f"login callback: the query string is missing or malformed: {RESTART}")
    now = clock()
    nonce = check_state(app, fyers_oauth.query_value(query.get("state")), browser=browser, now=now)
    code = fyers_oauth.parse_callback(query)
    # The item only has to outlive the state's validity, which ends within STATE_TTL_S of now.
    await asyncio.to_thread(consume_state, dynamodb_client, table_name, nonce, expires_at=now + STATE_TTL_S)
    when = datetime.fromtimestamp(now, UTC)
    if session is None:
        async with aiohttp.ClientSession() as own:
            tokens = await fyers_oauth.exchange_auth_code(own, base_url, app.app_id, app.secret_key, code, now=when)
    else:
        tokens = await fyers_oauth.exchange_auth_code(session, base_url, app.app_id, app.secret_key, code, now=when)
    await asyncio.to_thread(check_account, app, tokens, dynamodb_client, table_name)
    await asyncio.to_thread(store.save, tokens)
    return tokens


def check_account(app: AppConfig, tokens: fyers_oauth.Tokens, dynamodb_client: Any, table_name: str) -> None:
    """``InvalidInput`` when ``tokens`` are for another Fyers account than the stack serves, so the public login
    page cannot swap the stack over to whoever reached it. The account served is the app config's ``fy_id``,
    else the first login's, pinned in the state table (``ACCOUNT_PK``, one conditional put: no read of the
    stored tokens, which the login function may not do). Tokens that do not name their account pass
    (whether every Fyers token carries ``fy_id`` is unconfirmed)."""
    account = token_account(tokens.access_token)
    if account is None:
        return
    item = {"pk": {"S": ACCOUNT_PK}, "fy_id": {"S": account}}
    if app.fy_id is not None:
        if account != app.fy_id:
            raise _other_account(account, app.fy_id)
        dynamodb_client.put_item(TableName=table_name, Item=item)  # the config moves the pin
        return
    try:
        dynamodb_client.put_item(
            TableName=table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(pk) OR fy_id = :a",
            ExpressionAttributeValues={":a": {"S": account}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        pinned = exc.response.get("Item", {}).get("fy_id", {}).get("S") or "another account"
        raise _other_account(account, pinned) from None


def _other_account(account: str, served: str) -> InvalidInput:
    return InvalidInput(
        f"this login is for Fyers account {account}, but the stack serves {served}: log in as {served}; "
        'nothing was stored (to move the stack to another account, set "fy_id" in the app config secret)'
    )


def page(title: str, message: str, status: int) -> dict:
    """An HTTP API (payload 2.0) response with a short HTML page; never carries a token."""
    body = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    headers = {
        "content-type": "text/html; charset=utf-8",
        # The callback's URL carries the auth code: never cached, never sent on as a Referer.
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",
    }
    return {"statusCode": status, "headers": headers, "body": body}


def success_page(tokens: fyers_oauth.Tokens) -> dict:
    """The short 200 page after a login: when access ends and by when to log in again (IST); no token."""
    access = tokens.access_expires_at.astimezone(IST).strftime("%Y-%m-%d %H:%M IST")
    again = tokens.refresh_expires_at.astimezone(IST).strftime("%Y-%m-%d")
    account = token_account(tokens.access_token)
    who = f" as {account}" if account else ""
    message = f"Tokens stored. Access valid until {access}; log in again before {again}."
    return page(f"Logged in to Fyers{who}", message, 200)


def error_page(exc: Exception) -> dict:
    """400 for a bad callback/state (the reason shown), 502 naming Fyers' refusal, 500 showing nothing."""
    if isinstance(exc, InvalidInput):
        return page("Login failed", str(exc), 400)
    if isinstance(exc, FyersError):
        return page("Fyers refused the login", f"{type(exc).__name__}: {exc}", 502)
    return page("Login failed", "unexpected error; see the function's logs", 500)


def settings_needed(path: str) -> tuple[str, ...]:
    """The settings a request to ``path`` needs (the callback also writes the single-use state)."""
    return ("app_config_secret_id", "token_secret_id") + (("state_table",) if path.endswith(CALLBACK) else ())


def login_cookie(event: Mapping[str, Any]) -> str | None:
    """The login cookie's value in an HTTP API (payload 2.0) event: its ``cookies`` list, else a Cookie header."""
    listed = event.get("cookies") or []
    if not listed:
        header = (event.get("headers") or {}).get("cookie") or ""
        listed = header.split(";")
    for cookie in listed:
        name, _, value = str(cookie).strip().partition("=")
        if name == LOGIN_COOKIE and value:
            return value
    return None


def _cookie(value: str, *, secure: bool, max_age: int) -> str:
    # No Path: it defaults to the login page's folder, so /oauth/callback gets it whatever the API's stage path.
    return f"{LOGIN_COOKIE}={value}; Max-Age={max_age}; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")


def respond(
    path: str,
    query: Mapping[str, Any],
    settings: Settings,
    *,
    secrets_client: Any,
    dynamodb_client: Any,
    browser: str | None = None,
    secure: bool = True,
) -> tuple[dict, fyers_oauth.Tokens | None]:
    """The HTTP API's answer to ``path`` (``…/oauth/login`` or ``…/oauth/callback``, no trailing ``/``) and the
    tokens a completed login stored; a refused login raises its named ``PricefeedError`` (see
    :func:`error_page`). ``browser``: the request's login cookie; ``secure``: whether the request came over
    HTTPS (the cookie is then Secure)."""
    app = load_app_config(secrets_client, settings.app_config_secret_id)
    if path.endswith(LOGIN):
        fresh = new_browser()
        location = login_location(app, settings.fyers_api_base_url, browser=fresh)
        cookies = [_cookie(fresh, secure=secure, max_age=STATE_TTL_S)]
        return {"statusCode": 302, "headers": {"location": location}, "cookies": cookies}, None
    if not path.endswith(CALLBACK):
        return page("Not found", "use /oauth/login", 404), None
    tokens = asyncio.run(
        complete_login(
            query,
            app=app,
            base_url=settings.fyers_api_base_url,
            store=TokenStore(secrets_client, settings.token_secret_id),
            dynamodb_client=dynamodb_client,
            table_name=settings.state_table,
            browser=browser,
        )
    )
    return success_page(tokens), tokens  # the cookie stays until it expires: a replay is then "already used"
