"""`pricefeed login` as a library: log in to Fyers from a laptop and store the tokens in a stack's TokenSecret.

Two ways, chosen by the app's ``redirect_uri`` (in the stack's AppConfig secret):

- a loopback URL (``http://127.0.0.1:PORT/path``, ``localhost`` or ``[::1]``) other than the stack's own
  ``CallbackUrl`` (a local stack's is on loopback too): this process listens on that
  address for one login. The browser opens Fyers' login page with a fresh random ``state`` kept in memory;
  the callback must carry it (a missing or foreign state gets a 400 page and is ignored: the real login may
  still come), it is good for one callback only, and the auth code is exchanged and the tokens are written
  here, in the format :class:`~pricefeed.auth.store.TokenStore` reads;
- the stack's ``CallbackUrl``: the browser opens the stack's ``LoginUrl`` and the stack's OAuth function
  stores the tokens; this process waits until the TokenSecret gets a new version holding tokens.

The Fyers API base URL is the stack's ``FyersApiBaseUrl`` parameter (what its functions get as
``FYERS_API_BASE_URL``), or ``FYERS_API_BASE_URL`` in this environment when set, as for the functions.
No token, app secret or PIN ever appears in a message, a page or an exception.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import threading
import time
import webbrowser
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError

from pricefeed.auth import fyers_oauth
from pricefeed.auth.callback import check_account
from pricefeed.auth.daily_login import resume_after_login
from pricefeed.auth.store import APP_CONFIG_ENV, AppConfig, TokenStore, load_app_config
from pricefeed.config import DEFAULT_FYERS_API_BASE_URL
from pricefeed.errors import BadRequest, FyersError, InvalidInput, NotLoggedIn
from pricefeed.ops.login_receiver import (
    CallbackReceiver,
    LoginError,
    LoginTimeout,
    Loopback,
    Say,
    loopback_redirect,
)
from pricefeed.ops.target import aws_reason

DEFAULT_TIMEOUT_S = 300.0


#: How often the stack's TokenSecret is looked at while the stack's callback does the login.
POLL_S = 2.0


@dataclass(frozen=True)
class LoginResult:
    """A completed login. Carries no token."""

    via: str  # "loopback" (this process stored the tokens) or "stack" (the stack's OAuth function did)
    secret_id: str
    access_expires_at: datetime
    refresh_expires_at: datetime


def fyers_base_url(target: Any, environ: Mapping[str, str] = os.environ) -> str:
    """The Fyers API base URL the stack's functions use: ``FYERS_API_BASE_URL`` here when set, else the
    stack's ``FyersApiBaseUrl`` parameter (its default when the stack has none)."""
    override = (environ.get("FYERS_API_BASE_URL") or "").strip()
    if override:
        return override.rstrip("/")
    try:
        params = target.parameters()
    except (ClientError, BotoCoreError) as exc:
        raise LoginError(
            f"cannot read the parameters of stack {target.name} ({aws_reason(exc)}): your AWS identity needs "
            "cloudformation:DescribeStacks, or set FYERS_API_BASE_URL"
        ) from None
    return (params.get("FyersApiBaseUrl") or DEFAULT_FYERS_API_BASE_URL).rstrip("/")


def _refusal(exc: FyersError, app_secret_id: str, base_url: str, environ: Mapping[str, str]) -> LoginError:
    """What to tell the user when Fyers would not trade the auth code for tokens."""
    said = f"{type(exc).__name__}: {exc}"
    overrides = [v for k, v in APP_CONFIG_ENV.items() if k in ("app_id", "secret_key") and environ.get(v)]
    where = f"the AppConfig secret {app_secret_id}" + (
        f" (overridden here by {' and '.join(overrides)})" if overrides else ""
    )
    if exc.code == -371:
        return LoginError(
            f"Fyers refused the app credentials ({said}): the secret_key in {where} is not the Secret ID of "
            "app_id's Fyers app; fix it, then run `pricefeed login` again"
        )
    if isinstance(exc, BadRequest) or exc.code is not None:
        return LoginError(
            f"Fyers refused the auth code ({said}): check that app_id and secret_key in {where} are your Fyers "
            "app's App ID and Secret ID, then run `pricefeed login` again"
        )
    return LoginError(
        f"could not exchange the auth code at {base_url} ({said}): check your network and the stack's "
        "FyersApiBaseUrl, then run `pricefeed login` again"
    )


def _can_open_browser(environ: Mapping[str, str]) -> bool:
    """False on a Linux box without a display (SSH, a container): there ``webbrowser`` would start a text
    browser inside this terminal, or nothing."""
    if sys.platform.startswith("linux"):
        return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))
    return True


def _open(url: str, *, open_browser: bool, say: Say, environ: Mapping[str, str]) -> None:
    opened = False
    if open_browser and _can_open_browser(environ):
        try:
            opened = webbrowser.open(url)
        except webbrowser.Error:
            opened = False
    if opened:
        say(f"Opened your browser at the Fyers login. If it did not open, open this URL:\n{url}")
    else:
        say(f"Open this URL in a browser and log in to Fyers:\n{url}")


def login(
    target: Any,
    *,
    open_browser: bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    say: Say = print,
    environ: Mapping[str, str] = os.environ,
    poll_s: float = POLL_S,
) -> LoginResult:
    """Log in to Fyers for ``target``'s stack (a :class:`pricefeed.ops.target.Target`) and make sure its
    TokenSecret holds fresh tokens. ``say`` gets the progress lines (URLs included, never a secret).

    ``LoginError`` says what went wrong and what to do; Ctrl-C (``KeyboardInterrupt``) is re-raised once the
    login is stopped, with nothing written by this process unless the login had already completed.
    """
    secrets_client = target.client("secretsmanager")
    app_secret_id = target.output("AppConfigSecretArn")
    token_secret_id = target.output("TokenSecretArn")
    try:
        app = load_app_config(secrets_client, app_secret_id, environ)
    except InvalidInput as exc:
        raise LoginError(
            f"{exc}: put the Fyers app's JSON {{app_id, secret_key, redirect_uri, pin}} into it with "
            f"`aws secretsmanager put-secret-value --secret-id {app_secret_id} --secret-string '…'`"
        ) from None
    except (ClientError, BotoCoreError) as exc:
        raise LoginError(f"cannot read the AppConfig secret {app_secret_id} ({aws_reason(exc)})") from None
    store = TokenStore(secrets_client, token_secret_id)
    callback = target.outputs.get("CallbackUrl", "")
    # The stack's own callback first: a local stack's is a loopback URL too, but the stack serves it.
    at_stack = bool(callback) and app.redirect_uri.rstrip("/") == callback.rstrip("/")
    where = None if at_stack else loopback_redirect(app.redirect_uri)
    if where is None:
        return _login_via_stack(
            target, app, store, open_browser=open_browser, timeout_s=timeout_s, say=say, poll_s=poll_s, environ=environ
        )
    table, dynamodb = target.outputs.get("StateTableName"), target.client("dynamodb")
    result = _login_on_loopback(
        app, where, fyers_base_url(target, environ), store, app_secret_id, open_browser=open_browser,
        timeout_s=timeout_s, say=say, environ=environ, account_check=(dynamodb, table) if table else None,
    )
    # This process stored the login, not the stack's callback: it resumes the runs waiting for one.
    sfn = target.client("stepfunctions")
    if table and (note := resume_after_login(dynamodb, table, app.app_id, result, sfn_client=sfn)):
        say(note)
    return result


def _login_on_loopback(
    app: AppConfig,
    where: Loopback,
    base_url: str,
    store: TokenStore,
    app_secret_id: str,
    *,
    open_browser: bool,
    timeout_s: float,
    say: Say,
    environ: Mapping[str, str],
    account_check: tuple[Any, str] | None = None,
) -> LoginResult:
    state = secrets.token_urlsafe(32)
    state_table = account_check[1] if account_check else None
    dynamodb = account_check[0] if account_check else None

    def exchange(code: str) -> fyers_oauth.Tokens:
        async def run() -> fyers_oauth.Tokens:
            async with aiohttp.ClientSession() as session:
                return await fyers_oauth.exchange_auth_code(session, base_url, app.app_id, app.secret_key, code)

        tokens = asyncio.run(run())
        if state_table:  # another Fyers account than the stack serves: refused, nothing stored
            check_account(app, tokens, dynamodb, state_table)
        return tokens

    receiver = CallbackReceiver(
        where,
        expected_state=state,
        exchange=exchange,
        store=store,
        describe_refusal=lambda exc: _refusal(exc, app_secret_id, base_url, environ),
        on_rejected=say,
    )
    with receiver:
        say(f"Waiting for the Fyers login on {app.redirect_uri} (up to {timeout_s:.0f} s; Ctrl-C to stop).")
        _open(
            fyers_oauth.login_url(base_url, app.app_id, app.redirect_uri, state),
            open_browser=open_browser,
            say=say,
            environ=environ,
        )
        try:
            tokens = receiver.wait(timeout_s)
        except KeyboardInterrupt:
            stored = receiver.cancel()
            if stored is None:
                raise
            tokens = stored  # the login completed just before Ctrl-C: report it
        except LoginTimeout:
            stored = receiver.cancel()
            if stored is None:
                raise
            tokens = stored
    return LoginResult("loopback", store.secret_id, tokens.access_expires_at, tokens.refresh_expires_at)


def _current_version(secrets_client: Any, secret_id: str) -> str | None:
    described = secrets_client.describe_secret(SecretId=secret_id)
    for version, stages in (described.get("VersionIdsToStages") or {}).items():
        if "AWSCURRENT" in stages:
            return version
    return None


def _login_via_stack(
    target: Any,
    app: AppConfig,
    store: TokenStore,
    *,
    open_browser: bool,
    timeout_s: float,
    say: Say,
    poll_s: float,
    environ: Mapping[str, str],
) -> LoginResult:
    callback = target.outputs.get("CallbackUrl", "")
    if callback and app.redirect_uri.rstrip("/") != callback.rstrip("/"):
        raise LoginError(
            f"redirect_uri {app.redirect_uri} is neither a loopback URL nor this stack's CallbackUrl {callback}: "
            "set the Fyers app's redirect URI and the AppConfig secret's redirect_uri to one of "
            f"http://127.0.0.1:PORT/callback (log in from this machine) or {callback} (log in through the stack)"
        )
    login_url = target.output("LoginUrl")
    secrets_client = target.client("secretsmanager")
    try:
        before = _current_version(secrets_client, store.secret_id)
    except (ClientError, BotoCoreError) as exc:
        raise LoginError(f"cannot read the TokenSecret {store.secret_id} ({aws_reason(exc)})") from None
    started = datetime.now(UTC) - timedelta(seconds=5)  # some slack for the function's clock
    say(
        f"Waiting for the stack's callback {callback or app.redirect_uri} to store new tokens "
        f"(up to {timeout_s:.0f} s; Ctrl-C to stop)."
    )
    _open(login_url, open_browser=open_browser, say=say, environ=environ)
    say("If the browser shows an error, fix what it says and open the URL again; this keeps waiting.")
    tick = threading.Event()  # never set: waiting on it is an interruptible pause between looks
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            now_version = _current_version(secrets_client, store.secret_id)
        except (ClientError, BotoCoreError) as exc:
            raise LoginError(f"cannot read the TokenSecret {store.secret_id} ({aws_reason(exc)})") from None
        if now_version != before:
            try:
                tokens = store.load()
            except NotLoggedIn as exc:
                raise LoginError(f"the stack stored something that is not usable tokens: {exc}") from None
            # A login's refresh token is new (15 days from now); the daily refresh keeps the old one.
            if tokens.refresh_expires_at >= started + fyers_oauth.REFRESH_TOKEN_LIFETIME:
                return LoginResult("stack", store.secret_id, tokens.access_expires_at, tokens.refresh_expires_at)
            before = now_version  # an older write (e.g. a refresh): keep waiting for the login
        left = deadline - time.monotonic()
        if left <= 0:
            raise LoginTimeout(
                f"the stack stored no new tokens within {timeout_s:.0f} s: finish the Fyers login in the browser "
                f"(the page it ends on says what went wrong), or run `pricefeed login` again (--timeout to wait longer)"
            )
        tick.wait(min(poll_s, left))
