"""The local stack's security facts a user would notice: each function's log group exists with its retention,
and the OAuth pages never show a token or secret, refuse replays and bad callbacks, and store nothing then.

Here in e2e (not integration) because they use the session `pipeline` stack, which must run before any
in-process ``mock_aws`` test resets moto's backends.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from pricefeed.auth.fyers_oauth import app_id_hash


def test_the_local_stack_creates_each_functions_log_group_under_its_real_name(pipeline):
    stack = pipeline.stack
    logs = stack.client("logs")
    groups = {g["logGroupName"]: g for g in logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]}
    functions = [f["FunctionName"] for f in stack.client("lambda").list_functions()["Functions"]]
    assert functions
    for name in functions:
        assert f"/aws/lambda/{name}" in groups, name
        assert groups[f"/aws/lambda/{name}"].get("retentionInDays") == 30


class _Login:
    """The OAuth routes of the session stack, walked step by step (no automatic redirects)."""

    def __init__(self, pipeline):
        self.stack, self.sim = pipeline.stack, pipeline.sim
        self.http = requests.Session()

    def state_and_fyers_url(self) -> tuple[str, str]:
        answer = self.http.get(self.stack.outputs["LoginUrl"], allow_redirects=False, timeout=30)
        assert answer.status_code == 302, answer.status_code
        location = answer.headers["location"]
        return dict(parse_qsl(urlsplit(location).query))["state"], location

    def callback_url(self) -> str:
        """What Fyers (the simulator) redirects the browser to after a successful login."""
        _, fyers = self.state_and_fyers_url()
        answer = self.http.get(fyers, allow_redirects=False, timeout=30)
        assert answer.status_code in (302, 303), answer.status_code
        return answer.headers["location"]

    def get(self, url: str, **params) -> requests.Response:
        return self.http.get(url, params=params or None, allow_redirects=False, timeout=60)

    def secrets(self) -> dict[str, str]:
        """Every secret-derived value a page must not show, by name."""
        client = self.stack.client("secretsmanager")
        tokens = json.loads(client.get_secret_value(SecretId=self.stack.outputs["TokenSecretArn"])["SecretString"])
        app = json.loads(client.get_secret_value(SecretId=self.stack.outputs["AppConfigSecretArn"])["SecretString"])
        values = {
            "access token": tokens["access_token"],
            "refresh token": tokens["refresh_token"],
            "app secret": app["secret_key"],
            "appIdHash": app_id_hash(app["app_id"], app["secret_key"]),
        }
        for name in ("access token", "refresh token"):
            values[f"{name} (base64)"] = base64.b64encode(values[name].encode()).decode()
            values[f"{name} (JWT payload)"] = values[name].split(".")[1] if values[name].count(".") == 2 else ""
        return {k: v for k, v in values.items() if len(v) >= 8}


def _leaks(answer: requests.Response, secrets: dict[str, str]) -> list[str]:
    """Names (never values) of the secrets found in the response's body or headers."""
    assert len(secrets) >= 6, "nothing to look for"
    text = answer.text + json.dumps(dict(answer.headers))
    return [name for name, value in secrets.items() if value in text]


def _changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Names of the secrets whose value changed (a failure must not print the values)."""
    return [name for name in before if after.get(name) != before[name]]


@pytest.fixture
def login(pipeline) -> _Login:
    return _Login(pipeline)


def test_a_successful_login_page_names_no_token(login):
    callback = login.callback_url()
    auth_code = dict(parse_qsl(urlsplit(callback).query))["auth_code"]

    page = login.get(callback)

    assert page.status_code == 200 and "Logged in to Fyers" in page.text
    assert _leaks(page, login.secrets()) == []  # the tokens just stored by this very callback
    assert auth_code not in page.text
    # The URL holding the auth code is neither cached nor passed on as a Referer
    assert page.headers.get("cache-control") == "no-store"
    assert page.headers.get("referrer-policy") == "no-referrer"


def test_a_replayed_callback_is_a_400_that_stores_nothing_and_shows_no_token(login):
    callback = login.callback_url()
    assert login.get(callback).status_code == 200
    before = login.secrets()

    replay = login.get(callback)

    assert replay.status_code == 400 and "already used" in replay.text
    assert _changed(before, login.secrets()) == []  # the replay changed no token
    assert _leaks(replay, before) == []


@pytest.mark.parametrize(
    "params",
    [
        {},  # no parameter at all
        {"s": "ok", "auth_code": "abc"},  # no state
        {"s": "ok", "auth_code": "abc", "state": "1.forged-nonce.0000"},  # a state we did not issue
        {"s": "ok", "state": "VALID"},  # no auth code
        {"s": "error", "code": "-16", "state": "VALID"},  # Fyers said no
    ],
    ids=["nothing", "no-state", "forged-state", "no-auth-code", "refused"],
)
def test_a_callback_with_missing_or_bad_parameters_is_a_400_without_secrets(login, params):
    if params.get("state") == "VALID":
        params = {**params, "state": login.state_and_fyers_url()[0]}
    before = login.secrets()

    answer = login.get(login.stack.outputs["CallbackUrl"], **params)

    assert answer.status_code == 400, (answer.status_code, answer.text[:300])
    assert "Login failed" in answer.text
    assert _changed(before, login.secrets()) == []
    assert _leaks(answer, before) == []


def test_fyers_refusing_the_auth_code_is_a_502_naming_the_error_without_secrets(login):
    state, _ = login.state_and_fyers_url()
    bogus_code = "not-an-auth-code-7f3a9c"

    answer = login.get(login.stack.outputs["CallbackUrl"], s="ok", auth_code=bogus_code, state=state)

    assert answer.status_code == 502 and "Fyers refused the login" in answer.text
    assert bogus_code not in answer.text
    assert _leaks(answer, login.secrets()) == []
