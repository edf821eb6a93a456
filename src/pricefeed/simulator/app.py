"""The aiohttp application: Fyers v3 routes, the rate/fault gate in front of them, and ``/_sim/*``.

HTTP statuses chosen where Fyers is silent: auth-code/token errors 400 (token-lifetime errors 401),
history auth errors 401, -50 400, -300 400 (``invalid_symbol_status`` knob: 200), rate limit 429.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import json
import socket
import struct
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from yarl import URL

from .errors import ApiError
from .history import history_reply
from .master import sym_details_handler
from .state import SimState

FAULTY_PATHS = frozenset({"/data/history", "/api/v3/validate-authcode", "/api/v3/validate-refresh-token"})
_JSON_BODY_PATHS = frozenset({"/api/v3/validate-authcode", "/api/v3/validate-refresh-token"})


STATE = web.AppKey("state", SimState)


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read() or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


async def _rate_key(request: web.Request, state: SimState) -> str:
    """Which app's budget a request spends: the app id it claims, however it claims it."""
    if request.path == "/api/v3/generate-authcode":
        return request.query.get("client_id", "-")
    if request.path in _JSON_BODY_PATHS:
        h = str((await _json_body(request)).get("appIdHash", "")).lower()
        return state.cfg.app_id if h == state.cfg.app_id_hash else f"hash:{h[:12]}"
    return request.headers.get("Authorization", "-").partition(":")[0]


def _rate_limited(state: SimState, retry_after: int, retry_after_ms: int) -> web.Response:
    knobs = state.faults.snapshot()
    code = -429 if knobs["rate_limit_body"] == "-429" else 429
    headers = {"Retry-After": str(retry_after), "X-Retry-After-Ms": str(retry_after_ms)}
    return web.json_response(
        {"s": "error", "code": code, "message": "request limit reached"},
        status=429,
        headers=headers if knobs["retry_after_header"] else None,
    )


def _server_error(detail: float) -> web.Response:
    status = (500, 502, 503)[int(detail * 3) % 3]
    if detail * 6 % 2 < 1:  # half Fyers-shaped JSON, half a bare proxy page
        body = {"s": "error", "code": -99, "message": "Internal server error"}
        return web.json_response(body, status=status)
    return web.Response(
        status=status,
        text=f"<html><body><h1>{status} Server Error</h1></body></html>",
        content_type="text/html",
    )


def _reset_connection(request: web.Request) -> web.Response:
    """Drop the TCP connection without any reply (the client sees a reset/disconnect)."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:  # linger 0 makes close() send RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    raise asyncio.CancelledError  # aiohttp stops handling this request without writing anything


@web.middleware
async def gate(request: web.Request, handler: Any) -> web.StreamResponse:
    """Rate limits, counters and faults in front of every Fyers route (not ``/_sim/*`` nor ``/sym_details/*``)."""
    if request.path.startswith(("/_sim/", "/sym_details/")):  # the symbol master is a public file, not the API
        return await handler(request)
    state = request.app[STATE]
    knobs = state.faults.snapshot()
    now = state.now()
    decision = state.limiter.admit(await _rate_key(request, state), now, knobs["block_after_minute_violations"])
    symbol = request.query.get("symbol") if request.path == "/data/history" else None
    state.stats.record(request.path, accepted=decision.allowed, symbol=symbol, now=now)
    if not decision.allowed:
        return _rate_limited(state, decision.retry_after, decision.retry_after_ms)
    fault = None
    if request.path in FAULTY_PATHS:
        if knobs["latency_ms"]:
            await asyncio.sleep(knobs["latency_ms"] / 1000)
        fault, detail = state.faults.draw()
        if fault:
            state.stats.record_fault(fault)
        if fault == "reset":
            return _reset_connection(request)
        if fault == "5xx":
            return _server_error(detail)
    try:
        response = await handler(request)
    except ApiError as e:
        response = e.response()
    if fault == "malformed" and isinstance(response, web.Response) and response.body:
        body = bytes(response.body)
        return web.Response(status=200, body=body[: len(body) // 2], content_type="application/json")
    return response


# --- Fyers routes ---------------------------------------------------------------------------------
_LOGIN_PARAMS = ("client_id", "redirect_uri", "response_type", "state")


def _check_login_request(state: SimState, q: Any) -> None:
    """generate-authcode's query: the app, its registered redirect URI and ``response_type=code``."""
    if q.get("client_id") != state.cfg.app_id:
        raise ApiError(400, -352, "Invalid app id")
    if q.get("redirect_uri") != state.cfg.redirect_uri:
        raise ApiError(400, -50, "redirect_uri does not match the app's registered redirect URI")
    if q.get("response_type") != "code":
        raise ApiError(400, -50, "Invalid response_type")


def _back_with_code(state: SimState, q: Any, redirect: type[web.HTTPException]) -> web.HTTPException:
    """The redirect to the app's redirect URI with a fresh auth code and the request's ``state``."""
    code = state.accounts.issue_auth_code(state.now(), state.faults.snapshot()["login_account"])
    target = URL(state.cfg.redirect_uri).update_query(
        {"s": "ok", "code": "200", "auth_code": code, "state": q.get("state", "")}
    )
    return redirect(str(target))


def _login_form(state: SimState, q: Any, *, error: str = "", client: str = "", status: int = 200) -> web.Response:
    """Fyers-like login page; the form posts back to generate-authcode with the same query."""
    action = "/api/v3/generate-authcode?" + urlencode({k: q.get(k, "") for k in _LOGIN_PARAMS})
    notice = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fyers | Login</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body {{ font-family: system-ui, sans-serif; background: #f3f5f9; margin: 0; }}
 main {{ max-width: 360px; margin: 64px auto; background: #fff; padding: 32px; border-radius: 12px;
        box-shadow: 0 2px 12px rgba(0,0,0,.08); }}
 h1 {{ font-size: 22px; margin: 0 0 4px; }} .app {{ color: #667; margin: 0 0 24px; font-size: 14px; }}
 label {{ display: block; font-size: 14px; margin: 16px 0 6px; }}
 input {{ width: 100%; box-sizing: border-box; padding: 10px; font-size: 16px; border: 1px solid #ccd;
         border-radius: 6px; }}
 button {{ width: 100%; margin-top: 24px; padding: 12px; font-size: 16px; color: #fff; background: #2d5bff;
          border: 0; border-radius: 6px; cursor: pointer; }}
 .error {{ color: #b00020; background: #fdecee; padding: 8px 10px; border-radius: 6px; font-size: 14px; }}
 .sim {{ color: #99a; font-size: 12px; margin-top: 20px; }}
</style></head>
<body><main>
<h1>Login to FYERS</h1>
<p class="app">to continue to app <b>{html.escape(state.cfg.app_id)}</b></p>
{notice}
<form method="post" action="{html.escape(action)}">
 <label for="fy_id">Client ID or mobile number</label>
 <input id="fy_id" name="fy_id" autocomplete="username" required value="{html.escape(client)}">
 <label for="pin">PIN</label>
 <input id="pin" name="pin" type="password" inputmode="numeric" autocomplete="off" required>
 <button type="submit">Login</button>
</form>
<p class="sim">Fyers simulator</p>
</main></body></html>
"""
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return web.Response(status=status, text=body, content_type="text/html", headers=headers)


async def generate_authcode(request: web.Request) -> web.StreamResponse:
    """Without ``login_page`` the simulated user is always logged in: redirect straight back with an auth
    code. With it, show the login form (the redirect follows its POST, :func:`submit_login`)."""
    state = request.app[STATE]
    _check_login_request(state, request.query)
    if not state.cfg.login_page:
        raise _back_with_code(state, request.query, web.HTTPFound)
    return _login_form(state, request.query)


async def submit_login(request: web.Request) -> web.StreamResponse:
    """The login form's POST: the right PIN redirects back with an auth code and the state; a wrong PIN
    (or no client ID) shows the form again saying so, without redirecting."""
    state = request.app[STATE]
    q = request.query
    _check_login_request(state, q)
    form = await request.post()
    client = str(form.get("fy_id", "")).strip()[:64]
    pin = str(form.get("pin", ""))
    if not client:
        return _login_form(state, q, error="Enter your client ID or mobile number.", status=400)
    if not hmac.compare_digest(pin.encode(), state.cfg.pin.encode()):
        return _login_form(state, q, error="Incorrect PIN. Please try again.", client=client, status=401)
    raise _back_with_code(state, q, web.HTTPSeeOther)


async def validate_authcode(request: web.Request) -> web.Response:
    state = request.app[STATE]
    with_refresh = state.faults.snapshot()["issue_refresh_token"]
    answer = state.accounts.exchange_auth_code(await _json_body(request), state.now(), with_refresh=with_refresh)
    return web.json_response(answer)


async def validate_refresh_token(request: web.Request) -> web.Response:
    state = request.app[STATE]
    knobs = state.faults.snapshot()
    body, now = await _json_body(request), state.now()
    answer = state.accounts.refresh(body, now, rotate=knobs["refresh_rotates"], policy=knobs["refresh_policy"])
    return web.json_response(answer)


async def logout(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response(state.accounts.logout(request.headers.get("Authorization"), state.now()))


async def data_history(request: web.Request) -> web.Response:
    state = request.app[STATE]
    now = state.now()
    state.accounts.authenticate(request.headers.get("Authorization"), now)
    body = history_reply(
        request.query,
        seed=state.cfg.seed,
        unknown=state.cfg.unknown_symbols,
        now=now,
        knobs=state.faults.history_knobs(now),
    )
    state.served_history()
    return web.json_response(body)


# --- /_sim/* (no rate limit, no faults) -------------------------------------------------------------
async def sim_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].stats.snapshot())


async def sim_faults(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        knobs = state.faults.set(**await _json_body(request))
    except (TypeError, ValueError) as e:
        return web.json_response({"s": "error", "message": str(e)}, status=400)
    return web.json_response({"s": "ok", "knobs": knobs})


async def sim_reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return web.json_response({"s": "ok"})


async def sim_expire_tokens(request: web.Request) -> web.Response:
    """``{"seconds": n}``: tokens issued so far expire in n seconds; ``{"after_requests": n}``: after n more
    served history answers."""
    state = request.app[STATE]
    body = await _json_body(request)
    if "after_requests" in body:
        after = body["after_requests"]
        if not isinstance(after, int) or isinstance(after, bool):
            return web.json_response({"s": "error", "message": "after_requests must be an integer"}, status=400)
        state.expire_tokens_after(after)
        return web.json_response({"s": "ok"})
    seconds = body.get("seconds", 0)
    if not isinstance(seconds, int | float):
        return web.json_response({"s": "error", "message": "seconds must be a number"}, status=400)
    state.accounts.expire_tokens_in(seconds, state.now())
    return web.json_response({"s": "ok"})


async def sim_healthz(request: web.Request) -> web.Response:
    return web.json_response({"s": "ok"})


def build_app(state: SimState) -> web.Application:
    """A fresh application serving ``state``."""
    app = web.Application(middlewares=[gate])
    app[STATE] = state
    app.router.add_get("/api/v3/generate-authcode", generate_authcode)
    if state.cfg.login_page:
        app.router.add_post("/api/v3/generate-authcode", submit_login)
    app.router.add_post("/api/v3/validate-authcode", validate_authcode)
    app.router.add_post("/api/v3/validate-refresh-token", validate_refresh_token)
    app.router.add_post("/api/v3/logout", logout)
    app.router.add_get("/data/history", data_history)
    app.router.add_get("/sym_details/{file}", sym_details_handler(state))
    app.router.add_get("/_sim/stats", sim_stats)
    app.router.add_post("/_sim/faults", sim_faults)
    app.router.add_post("/_sim/reset", sim_reset)
    app.router.add_post("/_sim/expire-tokens", sim_expire_tokens)
    app.router.add_get("/_sim/healthz", sim_healthz)
    return app
