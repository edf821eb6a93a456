"""`pricefeed login` from a laptop, against the Fyers simulator's login form driven by headless Chromium.

Loopback redirect URI: a stack of its own (in a child process: one local stack per process, and the session's
`pipeline` stack may be up) whose simulator shows the login form and whose AppConfig secret holds
http://127.0.0.1:<port>/callback; the command runs as a real process, like a user's terminal, and the browser
is driven to the URL it prints. Stack CallbackUrl: the session `pipeline` stack (its simulator redirects
straight back to the stack's callback).
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import boto3
import pytest

from pricefeed.auth import fyers_oauth as auth
from pricefeed.auth.store import TokenStore
from pricefeed.istime import IST
from pricefeed.local.run import SIMULATOR_DEFAULTS, free_port
from pricefeed.ops.login_receiver import CallbackReceiver, loopback_redirect

APP = {"app_id": "LOGIN1-100", "secret_key": "login-test-app-secret", "pin": "7391"}
CLIENT_ID = "XS00001"
STARTUP_S = 180

#: The stack the loopback tests log in to: simulator with the login form + local stack, in a child process.
STACK_PROCESS = r"""
import json, os, sys
from pathlib import Path
from pricefeed.local.run import fyers_parameters
from pricefeed.local.stack import LocalStack
from pricefeed.simulator import SimulatorConfig, SimulatorServer

spec = json.loads(sys.argv[1])
app = spec["app"]
workdir = Path(spec["workdir"])
sim_cfg = SimulatorConfig(
    app_id=app["app_id"], secret_key=app["secret_key"], pin=app["pin"], redirect_uri=app["redirect_uri"],
    login_page=True,
)
with SimulatorServer(sim_cfg, port=0) as sim:
    with LocalStack.start(parameters=fyers_parameters(sim.url), workdir=workdir / "stack") as stack:
        stack.client("secretsmanager").put_secret_value(
            SecretId=stack.outputs["AppConfigSecretArn"], SecretString=json.dumps(app)
        )
        state = workdir / ".pricefeed" / "local.json"
        state.parent.mkdir(exist_ok=True)
        state.write_text(json.dumps({"pid": os.getpid(), "endpoint": stack.endpoint_url, **stack.outputs}))
        print(json.dumps({"sim_url": sim.url}), flush=True)
        sys.stdin.read()  # until the test closes our stdin
"""


class Lines:
    """A child process's output, line by line, readable with timeouts (no sleeping)."""

    def __init__(self, stream):
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def until(self, needle: str, timeout: float = 60) -> str:
        """The first line (from here on) containing ``needle``."""
        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {needle!r} within {timeout} s; output so far:\n{self.text}") from None
            if line is None:
                raise AssertionError(f"output ended without {needle!r}:\n{self.text}")
            self.seen.append(line)
            if needle in line:
                return line.strip()

    def rest(self, timeout: float = 60) -> str:
        while True:
            line = self._queue.get(timeout=timeout)
            if line is None:
                return self.text
            self.seen.append(line)

    @property
    def text(self) -> str:
        return "".join(self.seen)


@dataclass
class LoginStack:
    cwd: Path  # holds .pricefeed/local.json: where `pricefeed login` finds the stack
    outputs: dict
    endpoint: str
    sim_url: str
    redirect_uri: str
    port: int

    def client(self, service: str):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="ap-south-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def token_versions(self) -> set[str]:
        return _versions(self.client("secretsmanager"), self.outputs["TokenSecretArn"])


def _versions(secrets_client, secret_id: str) -> set[str]:
    """Every version the secret has had (a write, however partial, adds one)."""
    return {v["VersionId"] for v in secrets_client.list_secret_version_ids(SecretId=secret_id)["Versions"]}


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FYERS_", "PRICEFEED_", "AWS_"))}
    return {**env, "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def login_stack(tmp_path_factory) -> Iterator[LoginStack]:
    workdir = tmp_path_factory.mktemp("login")
    port = free_port()
    redirect = f"http://127.0.0.1:{port}/callback"
    spec = {"app": {**APP, "redirect_uri": redirect}, "workdir": str(workdir)}
    proc = subprocess.Popen(
        [sys.executable, "-c", STACK_PROCESS, json.dumps(spec)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_child_env(),
    )
    try:
        started = json.loads(Lines(proc.stdout).until("sim_url", timeout=STARTUP_S))
        state = json.loads((workdir / ".pricefeed" / "local.json").read_text())
        outputs = {k: v for k, v in state.items() if k not in ("pid", "endpoint")}
        yield LoginStack(workdir, outputs, state["endpoint"], started["sim_url"], redirect, port)
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Command:
    """`pricefeed login ARGS` as a user's terminal runs it."""

    def __init__(self, cwd: Path, *args: str, env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from pricefeed.cli.main import app; app()", "login", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**_child_env(), **(env or {})},
        )
        self.out = Lines(self.proc.stdout)

    def url(self, needle: str) -> str:
        return self.out.until(needle)

    def finish(self, timeout: float = 90) -> tuple[int, str]:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        return code, " ".join(self.out.rest().split())

    def interrupt(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        return self.finish()


def _assert_no_secrets(text: str, *values: str) -> None:
    for value in values:
        assert value
        assert not re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", text), "a secret value was printed"


def _history(sim_url: str, access_token: str, app_id: str = APP["app_id"]) -> tuple[int, dict]:
    """One /data/history call with the token, as the ingest makes it."""
    query = urlencode(
        {
            "symbol": "NSE:SBIN-EQ",
            "resolution": "1",
            "date_format": "1",
            "range_from": "2026-11-25",
            "range_to": "2026-11-25",
            "cont_flag": "1",
        }
    )
    request = urllib.request.Request(  # noqa: S310 - the simulator on loopback
        f"{sim_url}/data/history?{query}", headers={"Authorization": f"{app_id}:{access_token}"}
    )
    try:
        with _get(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _get(url, timeout: float):
    """A plain GET to a loopback test server (the simulator, the login's callback)."""
    return urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 - http on loopback only


def _fill_login_form(page, pin: str) -> None:
    page.fill("#fy_id", CLIENT_ID)
    page.fill("#pin", pin)
    page.click("button[type=submit]")


def _with_state(url: str, state: str | None) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items() if k != "state"}
    if state is not None:
        query["state"] = state
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_login_through_the_fyers_form_stores_tokens_that_fyers_accepts(login_stack, browser, artifacts):
    before = login_stack.token_versions()
    command = Command(login_stack.cwd, "--no-browser", "--timeout", "120")
    url = command.url("/api/v3/generate-authcode?")
    assert url.startswith(f"{login_stack.sim_url}/api/v3/generate-authcode?")

    page = browser.new_page()
    callbacks: list[str] = []
    page.on("request", lambda r: callbacks.append(r.url) if r.url.startswith(login_stack.redirect_uri) else None)
    try:
        page.goto(url)
        assert page.locator("h1").inner_text() == "Login to FYERS"
        page.screenshot(path=str(artifacts / "login-form.png"), full_page=True)
        _fill_login_form(page, APP["pin"])
        page.wait_for_url(f"{login_stack.redirect_uri}?*")
        assert page.locator("h1").inner_text() == "Logged in to Fyers"
        assert "You can close this tab" in page.locator("body").inner_text()
        page.screenshot(path=str(artifacts / "login-success.png"), full_page=True)
    finally:
        page.close()
    code, output = command.finish()

    assert code == 0, output
    assert "Logged in to Fyers" in output and "one login each trading day" in output
    assert "Run `pricefeed login` again tomorrow" in output
    assert f"Tokens stored in {login_stack.outputs['TokenSecretArn']}" in output
    tokens = TokenStore(login_stack.client("secretsmanager"), login_stack.outputs["TokenSecretArn"]).load()
    status, body = _history(login_stack.sim_url, tokens.access_token)
    assert status == 200 and body["s"] in ("ok", "no_data"), body
    assert tokens.refresh_expires_at.astimezone(IST).strftime("%Y-%m-%d %H:%M IST") in output
    auth_code = parse_qs(urlsplit(callbacks[0]).query)["auth_code"][0]
    _assert_no_secrets(output, tokens.access_token, tokens.refresh_token, auth_code, APP["secret_key"], APP["pin"])
    after = login_stack.token_versions()
    assert len(after - before) == 1

    # The callback replayed once the login is over: nobody listens any more, nothing changes.
    with pytest.raises(urllib.error.URLError) as refused:
        _get(callbacks[0], timeout=10)
    assert isinstance(refused.value.reason, ConnectionRefusedError)
    assert login_stack.token_versions() == after


def test_a_replayed_callback_is_refused_while_the_login_is_still_listening(login_stack, browser):
    where = loopback_redirect(login_stack.redirect_uri)
    store = TokenStore(login_stack.client("secretsmanager"), login_stack.outputs["TokenSecretArn"])
    state = "one-login-state-0123456789"

    def exchange(code: str) -> auth.Tokens:
        import asyncio

        import aiohttp

        async def run() -> auth.Tokens:
            async with aiohttp.ClientSession() as session:
                return await auth.exchange_auth_code(
                    session, login_stack.sim_url, APP["app_id"], APP["secret_key"], code
                )

        return asyncio.run(run())

    page = browser.new_page()
    callbacks: list[str] = []
    page.on("request", lambda r: callbacks.append(r.url) if r.url.startswith(login_stack.redirect_uri) else None)
    with CallbackReceiver(
        where, expected_state=state, exchange=exchange, store=store, describe_refusal=lambda exc: exc
    ) as receiver:
        try:
            page.goto(auth.login_url(login_stack.sim_url, APP["app_id"], login_stack.redirect_uri, state))
            _fill_login_form(page, APP["pin"])
            page.wait_for_url(f"{login_stack.redirect_uri}?*")
            assert page.locator("h1").inner_text() == "Logged in to Fyers"
        finally:
            page.close()
        receiver.wait(60)
        versions = login_stack.token_versions()

        with pytest.raises(urllib.error.HTTPError) as replay:
            _get(callbacks[0], timeout=30)
        assert replay.value.code == 400
        assert "already used" in replay.value.read().decode()
        assert login_stack.token_versions() == versions


def test_callbacks_with_a_forged_or_missing_state_are_rejected_and_ctrl_c_stores_nothing(login_stack, browser):
    before = login_stack.token_versions()
    command = Command(login_stack.cwd, "--no-browser", "--timeout", "120")
    url = command.url("/api/v3/generate-authcode?")

    page = browser.new_page()
    try:
        page.goto(_with_state(url, "forged-by-another-page"))  # Fyers hands back whatever state it was given
        _fill_login_form(page, APP["pin"])
        page.wait_for_url(f"{login_stack.redirect_uri}?*")
        assert page.locator("h1").inner_text() == "Login rejected"
        assert "Nothing was stored" in page.locator("body").inner_text()
    finally:
        page.close()
    assert "Rejected a callback that carries a state this login did not issue" in command.out.until("Rejected")

    with pytest.raises(urllib.error.HTTPError) as missing:
        _get(f"{login_stack.redirect_uri}?s=ok&code=200&auth_code=abc.def.ghi", timeout=30)
    assert missing.value.code == 400 and "has no state" in missing.value.read().decode()
    assert "Rejected a callback that has no state" in command.out.until("Rejected")
    assert login_stack.token_versions() == before  # still waiting, nothing stored

    code, output = command.interrupt()
    assert code == 130, output
    assert "login cancelled (Ctrl-C): no tokens were stored" in output
    assert login_stack.token_versions() == before
    with socket.socket() as probe:  # nothing listens any more: the next `pricefeed login` can
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", login_stack.port))


def test_a_wrong_pin_is_shown_on_the_form_and_the_command_times_out_without_tokens(login_stack, browser, artifacts):
    before = login_stack.token_versions()
    command = Command(login_stack.cwd, "--no-browser", "--timeout", "8")
    url = command.url("/api/v3/generate-authcode?")

    page = browser.new_page()
    try:
        page.goto(url)
        _fill_login_form(page, "0000")
        assert page.locator("[role=alert]").inner_text() == "Incorrect PIN. Please try again."
        assert page.url.startswith(login_stack.sim_url)  # no redirect back
        page.screenshot(path=str(artifacts / "login-wrong-pin.png"), full_page=True)
    finally:
        page.close()
    code, output = command.finish()

    assert code == 2, output
    assert "no login came back within 8 s: run `pricefeed login` again" in output
    assert login_stack.token_versions() == before


def test_a_busy_callback_port_is_named_with_what_to_do(login_stack):
    with socket.socket() as squatter:  # another program listening on the redirect URI's port
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # earlier logins' TIME_WAIT do not count
        squatter.bind(("127.0.0.1", login_stack.port))
        squatter.listen()
        code, output = Command(login_stack.cwd, "--no-browser", "--timeout", "30").finish()

    assert code == 2, output
    assert f"port {login_stack.port} on 127.0.0.1 is already in use" in output
    assert f"lsof -i :{login_stack.port}" in output and "redirect_uri" in output
    assert "generate-authcode" not in output  # no login was started


def _use_pipeline(pipeline, tmp_path: Path) -> Path:
    (tmp_path / ".pricefeed").mkdir()
    state = {"pid": 0, "endpoint": pipeline.stack.endpoint_url, **pipeline.stack.outputs}
    (tmp_path / ".pricefeed" / "local.json").write_text(json.dumps(state))
    return tmp_path


def test_with_the_stack_callback_as_redirect_uri_the_command_waits_for_the_stack_to_store_tokens(
    pipeline, browser, tmp_path
):
    stack = pipeline.stack
    secrets = stack.client("secretsmanager")
    before = _versions(secrets, stack.outputs["TokenSecretArn"])
    command = Command(_use_pipeline(pipeline, tmp_path), "--no-browser", "--timeout", "120")
    url = command.url("/oauth/login")
    assert url == stack.outputs["LoginUrl"]

    page = browser.new_page()
    try:
        page.goto(url)  # → Fyers (the simulator logs in at once) → the stack's callback, with the login cookie
        assert page.locator("h1").inner_text() == "Logged in to Fyers as XS00001"
        assert page.url.startswith(stack.outputs["CallbackUrl"])
    finally:
        page.close()
    code, output = command.finish()

    assert code == 0, output
    assert "Logged in to Fyers" in output and "one login each trading day" in output
    tokens = TokenStore(secrets, stack.outputs["TokenSecretArn"]).load()
    after = _versions(secrets, stack.outputs["TokenSecretArn"])
    assert after - before
    status, body = _history(pipeline.sim.url, tokens.access_token, SIMULATOR_DEFAULTS["app_id"])
    assert status == 200 and body["s"] in ("ok", "no_data"), body
    sim = SIMULATOR_DEFAULTS
    _assert_no_secrets(output, tokens.access_token, tokens.refresh_token, sim["secret_key"], sim["pin"])


def test_a_redirect_uri_that_reaches_neither_this_machine_nor_the_stack_is_refused(pipeline, tmp_path):
    code, output = Command(
        _use_pipeline(pipeline, tmp_path),
        "--no-browser",
        env={"FYERS_REDIRECT_URI": "https://example.com/fyers/callback"},
    ).finish()

    assert code == 2, output
    assert "redirect_uri https://example.com/fyers/callback is neither a loopback URL nor this stack's" in output
    assert pipeline.stack.outputs["CallbackUrl"] in output and "http://127.0.0.1:PORT/callback" in output


def test_fyers_refusing_the_code_says_to_check_the_app_secret_and_stores_nothing(login_stack, browser):
    before = login_stack.token_versions()
    wrong_secret = "not-the-apps-secret-key"  # FYERS_SECRET_KEY overrides the secret's field, as everywhere
    command = Command(login_stack.cwd, "--no-browser", "--timeout", "120", env={"FYERS_SECRET_KEY": wrong_secret})
    url = command.url("/api/v3/generate-authcode?")

    page = browser.new_page()
    try:
        page.goto(url)
        _fill_login_form(page, APP["pin"])
        page.wait_for_url(f"{login_stack.redirect_uri}?*")
        assert page.locator("h1").inner_text() == "Fyers refused the login"
        assert "secret_key in the AppConfig secret" in page.locator("body").inner_text()
    finally:
        page.close()
    code, output = command.finish()

    assert code == 2, output
    assert "Fyers refused the app credentials" in output
    assert f"the secret_key in the AppConfig secret {login_stack.outputs['AppConfigSecretArn']}" in output
    assert "run `pricefeed login` again" in output
    assert login_stack.token_versions() == before
    _assert_no_secrets(output, wrong_secret, APP["secret_key"], APP["pin"])


def test_which_redirect_uris_this_machine_receives():
    from pricefeed.ops.login_receiver import LoginError, Loopback

    assert loopback_redirect("http://127.0.0.1:8765/callback") == Loopback("127.0.0.1", 8765, "/callback")
    assert loopback_redirect("http://localhost:9000/fyers") == Loopback("127.0.0.1", 9000, "/fyers")
    assert loopback_redirect("http://[::1]:8765/cb") == Loopback("::1", 8765, "/cb")
    assert loopback_redirect("https://abc.execute-api.ap-south-1.amazonaws.com/oauth/callback") is None
    with pytest.raises(LoginError, match="plain http"):
        loopback_redirect("https://127.0.0.1:8765/callback")
