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
import errno
import hmac
import html
import ipaddress
import os
import secrets
import socket
import sys
import threading
import time
import webbrowser
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError

from pricefeed.auth import fyers_oauth
from pricefeed.auth.store import APP_CONFIG_ENV, AppConfig, TokenStore, load_app_config
from pricefeed.config import DEFAULT_FYERS_API_BASE_URL
from pricefeed.errors import BadRequest, FyersError, InvalidInput, NotLoggedIn, PricefeedError
from pricefeed.istime import IST

DEFAULT_TIMEOUT_S = 300.0
#: How often the stack's TokenSecret is looked at while the stack's callback does the login.
POLL_S = 2.0
LOOPBACK_NAMES = ("localhost",)

Say = Callable[[str], None]


class LoginError(PricefeedError):
    """The login did not happen (or its tokens were not stored); the message says what to do next."""


class LoginTimeout(LoginError):
    """Nobody completed the login in time."""


@dataclass(frozen=True)
class Loopback:
    """Where a loopback ``redirect_uri`` sends the browser back to: this machine."""

    host: str  # the address to bind: 127.0.0.1 for "localhost"
    port: int
    path: str


@dataclass(frozen=True)
class LoginResult:
    """A completed login. Carries no token."""

    via: str  # "loopback" (this process stored the tokens) or "stack" (the stack's OAuth function did)
    secret_id: str
    access_expires_at: datetime
    refresh_expires_at: datetime


def loopback_redirect(redirect_uri: str) -> Loopback | None:
    """The loopback address of ``redirect_uri``, or ``None`` when it points elsewhere (e.g. the stack).

    ``LoginError`` for a loopback URL this command cannot serve (https, no usable port).
    """
    parts = urlsplit(redirect_uri)
    host = (parts.hostname or "").lower()
    try:
        loop = host in LOOPBACK_NAMES or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loop = False
    if not loop:
        return None
    if parts.scheme != "http":
        raise LoginError(
            f"redirect_uri {redirect_uri} is a {parts.scheme or 'schemeless'} loopback URL, but `pricefeed login` "
            "listens with plain http: register http://127.0.0.1:PORT/callback as the Fyers app's redirect URI "
            "and put the same value in the AppConfig secret"
        )
    try:
        port = parts.port or 80
    except ValueError:
        raise LoginError(f"redirect_uri {redirect_uri} has an invalid port") from None
    bind = "127.0.0.1" if host in LOOPBACK_NAMES else host
    return Loopback(bind, port, parts.path or "/")


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
            f"cannot read the parameters of stack {target.name} ({_aws_reason(exc)}): your AWS identity needs "
            "cloudformation:DescribeStacks, or set FYERS_API_BASE_URL"
        ) from None
    return (params.get("FyersApiBaseUrl") or DEFAULT_FYERS_API_BASE_URL).rstrip("/")


def _aws_reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
    return type(exc).__name__


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


def _page(title: str, message: str, *, status: int) -> tuple[int, bytes]:
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em}</style>"
        f"</head><body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    return status, body.encode()


class CallbackReceiver:
    """A one-login HTTP server on the loopback ``redirect_uri``.

    ``exchange(auth_code)`` turns the callback's code into tokens, which are saved to ``store`` (unless the
    login was cancelled first: then nothing is written). :meth:`wait` returns them, or raises the
    :class:`LoginError` the browser was also shown. Callbacks with a missing or foreign ``state`` are
    answered 400 and reported through ``on_rejected``; waiting goes on. The state is good for one callback.
    """

    def __init__(
        self,
        where: Loopback,
        *,
        expected_state: str,
        exchange: Callable[[str], fyers_oauth.Tokens],
        store: TokenStore,
        describe_refusal: Callable[[FyersError], LoginError],
        on_rejected: Say = lambda _message: None,
    ):
        self.where = where
        self._state = expected_state
        self._exchange = exchange
        self._store = store
        self._describe_refusal = describe_refusal
        self._on_rejected = on_rejected
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._used = False
        self._cancelled = False
        self._tokens: fyers_oauth.Tokens | None = None
        self._error: LoginError | None = None
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle ----------------------------------------------------------------------------------
    def __enter__(self) -> CallbackReceiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 30  # an idle keep-alive or preconnect socket does not hold a thread for ever

            def log_message(self, *args: Any) -> None:  # the query string holds the auth code: log nothing
                return

            def do_GET(self) -> None:  # the http.server API
                status, body, finished = receiver._handle(self.path)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Cache-Control", "no-store")
                    self.send_header("Referrer-Policy", "no-referrer")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body)
                    self.wfile.flush()
                except OSError:
                    pass  # the browser went away; the outcome stands
                finally:
                    if finished:
                        receiver._done.set()
                self.close_connection = True

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            # SO_REUSEADDR: a login right after another one is not blocked by its TIME_WAIT connections; on
            # Linux it still fails while another program listens on the port (no SO_REUSEPORT).
            allow_reuse_address = True
            allow_reuse_port = False

        address = f"{self.where.host}:{self.where.port}"
        Server.address_family = _family(self.where.host)
        try:
            self._server = Server((self.where.host, self.where.port), Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise LoginError(
                    f"port {self.where.port} on {self.where.host} is already in use, so the Fyers redirect to "
                    f"this machine cannot be received: stop the program listening there (`lsof -i :{self.where.port}`"
                    "), or pick a free port and set it in both the Fyers app's redirect URI and the AppConfig "
                    "secret's redirect_uri"
                ) from None
            if exc.errno == errno.EACCES:
                raise LoginError(
                    f"not allowed to listen on {address} (ports below 1024 need root): use a redirect URI with a "
                    "port above 1024, e.g. http://127.0.0.1:8765/callback, in the Fyers app and the AppConfig secret"
                ) from None
            raise LoginError(f"cannot listen on {address} for the Fyers redirect: {exc.strerror}") from None
        threading.Thread(target=self._server.serve_forever, name="pricefeed-login", daemon=True).start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # --- the outcome ----------------------------------------------------------------------------------
    def wait(self, timeout_s: float) -> fyers_oauth.Tokens:
        """The stored tokens once a callback completed the login; ``LoginTimeout`` after ``timeout_s``."""
        if not self._done.wait(timeout_s):
            raise LoginTimeout(
                f"no login came back within {timeout_s:.0f} s: run `pricefeed login` again (--timeout to wait "
                "longer) and finish the Fyers login in the browser"
            )
        with self._lock:
            if self._error is not None:
                raise self._error
            assert self._tokens is not None
            return self._tokens

    def cancel(self) -> fyers_oauth.Tokens | None:
        """Stop accepting the login. Waits for a token write in progress; returns the tokens if they were
        stored before the cancel (the login then did complete), else ``None`` (nothing was written)."""
        with self._lock:
            self._cancelled = True
            return self._tokens

    # --- one request ------------------------------------------------------------------------------------
    def _handle(self, raw_path: str) -> tuple[int, bytes, bool]:
        """(status, page, whether this request ended the login)."""
        parts = urlsplit(raw_path)
        if parts.path != self.where.path:
            return (*_page("Not found", "This address only receives the Fyers login.", status=404), False)
        query = parse_qs(parts.query, keep_blank_values=True)
        given = fyers_oauth.query_value(query.get("state"))
        with self._lock:
            if self._used or self._cancelled:
                return (
                    *_page(
                        "Login link already used",
                        "This login was already completed or abandoned, and its link works only once. "
                        "Run `pricefeed login` again to log in.",
                        status=400,
                    ),
                    False,
                )
            foreign = not given or not hmac.compare_digest(given.encode(), self._state.encode())
            if not foreign:
                self._used = True  # single use: from here on, this state is spent whatever happens
        if foreign:
            reason = "has no state" if not given else "carries a state this login did not issue"
            self._on_rejected(
                f"Rejected a callback that {reason} (nothing stored); still waiting for the login started here."
            )
            return (
                *_page(
                    "Login rejected",
                    f"This request {reason}, so it does not belong to the `pricefeed login` running on this "
                    "machine. Nothing was stored. Finish the login in the tab that `pricefeed login` opened.",
                    status=400,
                ),
                False,
            )
        try:
            code = fyers_oauth.parse_callback(query)
        except InvalidInput as exc:
            return self._finish(
                LoginError(f"Fyers did not log you in ({exc}): run `pricefeed login` again"),
                _page("Login failed", f"Fyers did not log you in ({exc}). Run `pricefeed login` again.", status=400),
            )
        try:
            tokens = self._exchange(code)
        except FyersError as exc:
            error = self._describe_refusal(exc)
            return self._finish(error, _page("Fyers refused the login", str(error), status=502))
        except Exception as exc:  # noqa: BLE001 - shown to the user by type only: a message might hold the code
            error = LoginError(
                f"exchanging the auth code failed unexpectedly ({type(exc).__name__}): run `pricefeed login` again"
            )
            return self._finish(error, _page("Login failed", str(error), status=500))
        with self._lock:
            if self._cancelled:
                error = LoginError("login cancelled: nothing was stored")
                self._error = error
                return (
                    *_page("Login cancelled", "`pricefeed login` was stopped; nothing was stored.", status=409),
                    True,
                )
            try:
                self._store.save(tokens)
            except (ClientError, BotoCoreError) as exc:
                error = LoginError(
                    f"Fyers logged you in, but the tokens could not be written to {self._store.secret_id} "
                    f"({_aws_reason(exc)}): your AWS identity needs secretsmanager:PutSecretValue on it; "
                    "then run `pricefeed login` again"
                )
                self._error = error
                return (*_page("Tokens not stored", str(error), status=500), True)
            self._tokens = tokens
        again = tokens.refresh_expires_at.astimezone(IST).strftime("%Y-%m-%d %H:%M IST")
        return (
            *_page(
                "Logged in to Fyers",
                f"pricefeed stored your Fyers tokens. You can close this tab. Log in again before {again}.",
                status=200,
            ),
            True,
        )

    def _finish(self, error: LoginError, page: tuple[int, bytes]) -> tuple[int, bytes, bool]:
        with self._lock:
            self._error = error
        return (*page, True)


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


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
        raise LoginError(f"cannot read the AppConfig secret {app_secret_id} ({_aws_reason(exc)})") from None
    store = TokenStore(secrets_client, token_secret_id)
    callback = target.outputs.get("CallbackUrl", "")
    # The stack's own callback first: a local stack's is a loopback URL too, but the stack serves it.
    at_stack = bool(callback) and app.redirect_uri.rstrip("/") == callback.rstrip("/")
    where = None if at_stack else loopback_redirect(app.redirect_uri)
    if where is None:
        return _login_via_stack(
            target, app, store, open_browser=open_browser, timeout_s=timeout_s, say=say, poll_s=poll_s, environ=environ
        )
    base_url = fyers_base_url(target, environ)
    return _login_on_loopback(
        app,
        where,
        base_url,
        store,
        app_secret_id,
        open_browser=open_browser,
        timeout_s=timeout_s,
        say=say,
        environ=environ,
    )


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
) -> LoginResult:
    state = secrets.token_urlsafe(32)

    def exchange(code: str) -> fyers_oauth.Tokens:
        async def run() -> fyers_oauth.Tokens:
            async with aiohttp.ClientSession() as session:
                return await fyers_oauth.exchange_auth_code(session, base_url, app.app_id, app.secret_key, code)

        return asyncio.run(run())

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
        raise LoginError(f"cannot read the TokenSecret {store.secret_id} ({_aws_reason(exc)})") from None
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
            raise LoginError(f"cannot read the TokenSecret {store.secret_id} ({_aws_reason(exc)})") from None
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
