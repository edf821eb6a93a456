"""The laptop login's one-shot callback receiver: an HTTP server on the app's loopback redirect URI that takes
one Fyers callback with the expected ``state``, exchanges the code and stores the tokens. Also the login's errors
and the redirect URI's parse (``loopback_redirect``). No token, app secret or PIN appears in a page or an error."""

from __future__ import annotations

import errno
import hmac
import html
import ipaddress
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from pricefeed.auth import fyers_oauth
from pricefeed.auth.store import TokenStore
from pricefeed.errors import FyersError, InvalidInput, PricefeedError
from pricefeed.istime import IST
from pricefeed.ops.target import aws_reason

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
            message = (
                f"This request {reason}, so it does not belong to the `pricefeed login` running on this machine. "
                "Nothing was stored. Finish the login in the tab that `pricefeed login` opened."
            )
            return (*_page("Login rejected", message, status=400), False)
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
        except InvalidInput as exc:  # ours, e.g. a login for another Fyers account than the stack serves
            error = LoginError(f"login refused: {exc}")
            return self._finish(error, _page("Login refused", str(exc), status=400))
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
                    f"({aws_reason(exc)}): your AWS identity needs secretsmanager:PutSecretValue on it; "
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
