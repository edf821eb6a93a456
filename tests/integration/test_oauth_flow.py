"""The OAuth Lambda end to end against the Fyers simulator and moto: login redirect, callback, replay."""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from tokenkit import (
    APP,
    LOGIN_AT,
    SECRET_KEY,
    STATE_TABLE,
    TOKEN_SECRET,
    Clock,
    create_resources,
    leaked,
    start_simulator,
)

from handlerkit import lambda_context, load_handler
from pricefeed.auth.fyers_oauth import app_id_hash
from pricefeed.errors import InvalidInput

CONTEXT = lambda_context("OAuthFunction", memory_mb=128)


@pytest.fixture
def sim():
    server = start_simulator(Clock(LOGIN_AT))
    yield server
    server.stop()


@pytest.fixture
def oauth(mocked_aws, sim, monkeypatch):
    """The OAuth handler with its environment; returns ``invoke(path, query) -> response``."""
    secrets, dynamodb = create_resources(mocked_aws)
    secrets.create_secret(
        Name="pricefeed/app",
        SecretString=json.dumps(
            {"app_id": APP.app_id, "secret_key": APP.secret_key, "redirect_uri": APP.redirect_uri, "pin": APP.pin}
        ),
    )
    for name, value in {
        "APP_CONFIG_SECRET_ID": "pricefeed/app",
        "TOKEN_SECRET_ID": TOKEN_SECRET,
        "STATE_TABLE": STATE_TABLE,
        "FYERS_API_BASE_URL": sim.url,
    }.items():
        monkeypatch.setenv(name, value)
    module = load_handler("oauth")
    jar: dict[str, str] = {}  # the browser's cookies

    def invoke(path: str, query: dict | None = None, *, cookies: dict | None = None) -> dict:
        sent = jar if cookies is None else cookies
        event = {"version": "2.0", "rawPath": path, "queryStringParameters": query}
        event |= {"headers": {"x-forwarded-proto": "https"}}
        if sent:
            event["cookies"] = [f"{k}={v}" for k, v in sent.items()]
        answer = module.handler(event, CONTEXT)
        for cookie in answer.get("cookies", []):
            name, _, rest = cookie.partition("=")
            jar[name] = rest.split(";")[0]
        return answer

    invoke.secrets, invoke.dynamodb, invoke.jar = secrets, dynamodb, jar
    return invoke


def fyers_redirect(oauth) -> dict:
    """Open /oauth/login and follow it to (simulated) Fyers, which redirects back to the callback."""
    login = oauth("/oauth/login")
    assert login["statusCode"] == 302
    answer = requests.get(login["headers"]["location"], allow_redirects=False, timeout=5)
    assert answer.status_code == 302 and answer.headers["Location"].startswith(APP.redirect_uri)
    return dict(parse_qsl(urlsplit(answer.headers["Location"]).query))


def secret_state(oauth) -> tuple[str, int]:
    value = oauth.secrets.get_secret_value(SecretId=TOKEN_SECRET)["SecretString"]
    return value, len(oauth.secrets.list_secret_version_ids(SecretId=TOKEN_SECRET)["Versions"])


def exchanges(sim) -> int:
    return sim.stats()["requests"].get("/api/v3/validate-authcode", 0)


def test_login_then_callback_stores_tokens_and_a_replay_is_refused(oauth, sim, caplog, capsys):
    caplog.set_level(logging.INFO)
    query = fyers_redirect(oauth)
    page = oauth("/oauth/callback", query)
    stored, versions = secret_state(oauth)
    tokens = json.loads(stored)
    assert page["statusCode"] == 200 and "Logged in to Fyers" in page["body"] and "IST" in page["body"]
    assert tokens["access_token"] not in page["body"] and tokens["refresh_token"] not in page["body"]
    # The same redirect again (a replay, a double click): refused before Fyers is asked, nothing changes
    again = oauth("/oauth/callback", query)
    assert again["statusCode"] == 400 and "already used" in again["body"] and "/oauth/login" in again["body"]
    assert secret_state(oauth) == (stored, versions) and exchanges(sim) == 1
    leaks = [tokens["access_token"], tokens["refresh_token"], query["auth_code"], SECRET_KEY, APP.pin]
    output = caplog.text + capsys.readouterr().out
    assert "logged in" in output and not leaked(output, *leaks)


def test_a_login_for_another_fyers_account_is_refused_and_keeps_the_stored_one(oauth, sim):
    first = oauth("/oauth/callback", fyers_redirect(oauth))
    assert first["statusCode"] == 200 and "Logged in to Fyers as XS00001" in first["body"]
    stored = secret_state(oauth)
    sim.set_faults(login_account="XY99999")  # someone else reached the public login page
    page = oauth("/oauth/callback", fyers_redirect(oauth))
    assert page["statusCode"] == 400 and "for Fyers account XY99999, but the stack serves XS00001" in page["body"]
    assert secret_state(oauth) == stored  # the stack still serves its own account
    # the owner moves the stack to the other account on purpose: named in the app config
    app = json.loads(oauth.secrets.get_secret_value(SecretId="pricefeed/app")["SecretString"])
    oauth.secrets.put_secret_value(SecretId="pricefeed/app", SecretString=json.dumps({**app, "fy_id": "xy99999"}))
    moved = oauth("/oauth/callback", fyers_redirect(oauth))
    assert moved["statusCode"] == 200 and "as XY99999" in moved["body"] and secret_state(oauth) != stored


def test_the_app_config_names_the_account_even_for_the_first_login(oauth, sim):
    app = json.loads(oauth.secrets.get_secret_value(SecretId="pricefeed/app")["SecretString"])
    oauth.secrets.put_secret_value(SecretId="pricefeed/app", SecretString=json.dumps({**app, "fy_id": "XY99999"}))
    page = oauth("/oauth/callback", fyers_redirect(oauth))
    assert page["statusCode"] == 400 and "serves XY99999" in page["body"]
    assert secret_state(oauth) == ("{}", 1)


def test_the_login_page_sets_a_cookie_only_that_browser_can_finish_the_login_with(oauth, sim):
    login = oauth("/oauth/login")
    (cookie,) = login["cookies"]
    assert cookie.startswith("pricefeed_login=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" in cookie and "Path" not in cookie  # over HTTPS; scoped to the login page's folder
    answer = requests.get(login["headers"]["location"], allow_redirects=False, timeout=5)
    query = dict(parse_qsl(urlsplit(answer.headers["Location"]).query))
    # a victim's browser sent to the attacker's callback URL has no (or another) login cookie: refused
    for other in ({}, {"pricefeed_login": "someone-elses"}):
        page = oauth("/oauth/callback", query, cookies=other)
        assert page["statusCode"] == 400 and "login" in page["body"] and "/oauth/login" in page["body"]
    assert secret_state(oauth) == ("{}", 1) and exchanges(sim) == 0
    assert "no login cookie" in oauth("/oauth/callback", query, cookies={})["body"]  # says what to do
    done = oauth("/oauth/callback", query)  # the browser that began it
    assert done["statusCode"] == 200 and "Logged in to Fyers" in done["body"]


def test_a_forged_state_stores_nothing(oauth, sim):
    query = fyers_redirect(oauth)
    issued, nonce, sig = query["state"].split(".")
    page = oauth("/oauth/callback", {**query, "state": f"{issued}.{nonce}x.{sig}"})
    assert page["statusCode"] == 400 and "does not match" in page["body"]
    assert secret_state(oauth) == ("{}", 1) and exchanges(sim) == 0


def test_a_missing_state_stores_nothing(oauth, sim):
    query = fyers_redirect(oauth)
    del query["state"]
    page = oauth("/oauth/callback", query)
    assert page["statusCode"] == 400 and "missing" in page["body"] and secret_state(oauth) == ("{}", 1)


def test_a_refused_auth_code_is_a_502_naming_fyers_error_without_secrets(oauth, sim):
    query = fyers_redirect(oauth)
    bad_code = query["auth_code"][:-6] + "AAAAAA"
    page = oauth("/oauth/callback", {**query, "auth_code": bad_code})
    assert page["statusCode"] == 502 and "BadRequest" in page["body"] and "-437" in page["body"]
    hashed = app_id_hash(APP.app_id, APP.secret_key)
    assert not any(s in page["body"] for s in [bad_code, SECRET_KEY, hashed])
    assert secret_state(oauth) == ("{}", 1)
    # That state was spent on the attempt: the user starts again at /oauth/login
    assert oauth("/oauth/callback", query)["statusCode"] == 400


def test_the_callback_without_a_state_table_is_a_deployment_error(oauth, monkeypatch):
    monkeypatch.delenv("STATE_TABLE")
    with pytest.raises(InvalidInput, match="STATE_TABLE"):
        oauth("/oauth/callback", {"s": "ok"})
    assert oauth("/oauth/login")["statusCode"] == 302  # the login redirect needs no table
