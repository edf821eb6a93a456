"""OAuth and token behaviour of a running Fyers simulator (real HTTP, controllable clock)."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from pricefeed.simulator import SimulatorConfig, SimulatorServer

NOW = 1_720_094_400.0  # Thu 2024-07-04 12:00 UTC = 17:30 IST
NEXT_0600_IST = 1_720_139_400  # Fri 2024-07-05 06:00 IST = 00:30 UTC
HISTORY = {
    "symbol": "NSE:SBIN-EQ",
    "resolution": "1",
    "date_format": "1",
    "range_from": "2024-07-03",
    "range_to": "2024-07-03",
    "cont_flag": "1",
}


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock():
    return Clock(NOW)


@pytest.fixture
def sim(clock):
    with SimulatorServer(SimulatorConfig(clock=clock), port=0) as server:
        yield server


def app_hash(cfg: SimulatorConfig) -> str:
    return hashlib.sha256(f"{cfg.app_id}:{cfg.secret_key}".encode()).hexdigest()


def claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def auth_code(sim: SimulatorServer, state: str = "st-1") -> str:
    cfg = sim.config
    r = requests.get(
        f"{sim.url}/api/v3/generate-authcode",
        allow_redirects=False,
        timeout=5,
        params={
            "client_id": cfg.app_id,
            "redirect_uri": cfg.redirect_uri,
            "response_type": "code",
            "state": state,
        },
    )
    assert r.status_code == 302
    return parse_qs(urlparse(r.headers["Location"]).query)["auth_code"][0]


def exchange(sim: SimulatorServer, code: str, **overrides) -> requests.Response:
    body = {"grant_type": "authorization_code", "appIdHash": app_hash(sim.config), "code": code, **overrides}
    return requests.post(f"{sim.url}/api/v3/validate-authcode", json=body, timeout=5)


def refresh(sim: SimulatorServer, token: str, pin: str = "1234") -> requests.Response:
    body = {
        "grant_type": "refresh_token",
        "appIdHash": app_hash(sim.config),
        "refresh_token": token,
        "pin": pin,
    }
    return requests.post(f"{sim.url}/api/v3/validate-refresh-token", json=body, timeout=5)


def history(sim: SimulatorServer, token: str | None, **params) -> requests.Response:
    headers = {} if token is None else {"Authorization": f"{sim.config.app_id}:{token}"}
    return requests.get(f"{sim.url}/data/history", params={**HISTORY, **params}, headers=headers, timeout=5)


def assert_error(r: requests.Response, status: int, code: int) -> None:
    assert (r.status_code, r.json()["s"], r.json()["code"]) == (status, "error", code), r.text[:300]


def test_authcode_redirect_carries_state_and_a_jwt(sim):
    cfg = sim.config
    r = requests.get(
        f"{sim.url}/api/v3/generate-authcode",
        allow_redirects=False,
        timeout=5,
        params={
            "client_id": cfg.app_id,
            "redirect_uri": cfg.redirect_uri,
            "response_type": "code",
            "state": "a b&c",
        },
    )
    location = urlparse(r.headers["Location"])
    assert r.status_code == 302 and r.headers["Location"].startswith(cfg.redirect_uri + "?")
    q = parse_qs(location.query)
    assert q["s"] == ["ok"] and q["code"] == ["200"] and q["state"] == ["a b&c"]
    c = claims(q["auth_code"][0])
    assert c["sub"] == "auth_code" and c["exp"] - c["iat"] == 8 * 3600 + 20 * 60


def test_authcode_rejects_unknown_client_or_redirect(sim):
    cfg = sim.config
    base = {"client_id": cfg.app_id, "redirect_uri": cfg.redirect_uri, "response_type": "code", "state": "x"}
    url = f"{sim.url}/api/v3/generate-authcode"
    r = requests.get(url, params={**base, "client_id": "OTHER-100"}, allow_redirects=False, timeout=5)
    assert_error(r, 400, -352)
    r = requests.get(url, params={**base, "redirect_uri": "http://evil/cb"}, allow_redirects=False, timeout=5)
    assert r.status_code == 400 and r.json()["code"] < 0


def test_exchange_gives_tokens_with_fyers_lifetimes(sim):
    r = exchange(sim, auth_code(sim))
    body = r.json()
    assert r.status_code == 200 and body["s"] == "ok" and body["code"] == 200 and body["message"] == ""
    access, refresh_token = claims(body["access_token"]), claims(body["refresh_token"])
    assert access["iat"] == NOW and access["exp"] == NEXT_0600_IST
    assert refresh_token["exp"] - refresh_token["iat"] == 15 * 86_400
    assert history(sim, body["access_token"]).json()["s"] == "ok"


def test_exchange_errors(sim, clock):
    code = auth_code(sim)
    assert_error(exchange(sim, code, grant_type="password"), 400, -441)
    assert_error(exchange(sim, code, appIdHash="0" * 64), 400, -371)
    assert_error(exchange(sim, "not-a-jwt"), 400, -437)
    assert exchange(sim, code).status_code == 200
    assert_error(exchange(sim, code), 400, -437)  # single use
    stale = auth_code(sim)
    clock.t += 8 * 3600 + 20 * 60
    assert_error(exchange(sim, stale), 400, -437)  # expired


def test_refresh_with_right_and_wrong_pin(sim, clock):
    sim.set_faults(refresh_policy="honoured")  # the pre-2026 behaviour
    tokens = exchange(sim, auth_code(sim)).json()
    r = refresh(sim, tokens["refresh_token"], pin="0000")
    assert r.status_code in (400, 401) and r.json()["s"] == "error" and r.json()["code"] < 0
    assert_error(refresh(sim, "garbage"), 401, -17)
    clock.t += 3600
    ok = refresh(sim, tokens["refresh_token"]).json()
    assert ok["s"] == "ok" and "refresh_token" not in ok and ok["access_token"] != tokens["access_token"]
    assert history(sim, ok["access_token"]).json()["s"] == "ok"
    clock.t += 15 * 86_400
    assert_error(refresh(sim, tokens["refresh_token"]), 401, -17)  # 15 days are over


def test_refresh_rotation_knob(sim):
    tokens = exchange(sim, auth_code(sim)).json()
    sim.set_faults(refresh_rotates=True, refresh_policy="honoured")
    rotated = refresh(sim, tokens["refresh_token"]).json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert_error(refresh(sim, tokens["refresh_token"]), 401, -17)  # the old one is revoked
    assert refresh(sim, rotated["refresh_token"]).json()["s"] == "ok"


def test_expired_access_token_is_minus_8_and_refresh_recovers(sim, clock):
    sim.set_faults(refresh_policy="honoured")
    tokens = exchange(sim, auth_code(sim)).json()
    sim.expire_tokens_in(0)
    r = history(sim, tokens["access_token"])
    assert_error(r, 401, -8)
    assert r.json()["message"] == "Your token has expired. Please generate a token"
    fresh = refresh(sim, tokens["refresh_token"]).json()["access_token"]
    assert history(sim, fresh).json()["s"] == "ok"  # tokens issued after the knob live normally
    clock.t = NEXT_0600_IST  # the real lifetime: the next 06:00 IST
    assert_error(history(sim, fresh), 401, -8)


def test_auth_header_errors(sim):
    tokens = exchange(sim, auth_code(sim)).json()
    assert_error(history(sim, None), 401, -16)
    assert_error(history(sim, "abc.def"), 401, -15)
    assert_error(history(sim, tokens["access_token"][:-4] + "AAAA"), 401, -15)  # bad signature
    assert_error(history(sim, tokens["refresh_token"]), 401, -17)  # not an access token
    r = requests.get(
        f"{sim.url}/data/history",
        params=HISTORY,
        timeout=5,
        headers={"Authorization": f"OTHER-100:{tokens['access_token']}"},
    )
    assert_error(r, 401, -16)
    r = requests.post(
        f"{sim.url}/api/v3/logout",
        timeout=5,
        headers={"Authorization": f"{sim.config.app_id}:{tokens['access_token']}"},
    )
    assert r.json()["s"] == "ok"
    assert_error(history(sim, tokens["access_token"]), 401, -17)  # revoked



def test_tokens_can_be_made_to_expire_after_a_number_of_history_answers(sim):
    token = exchange(sim, auth_code(sim)).json()["access_token"]
    sim.expire_tokens_after(2)

    answers = [history(sim, token) for _ in range(3)]

    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert_error(answers[2], 401, -8)
    fresh = exchange(sim, auth_code(sim, "st-2")).json()["access_token"]
    assert history(sim, fresh).status_code == 200  # tokens issued later live their normal life


def test_expiring_tokens_now_expires_only_the_tokens_issued_so_far(sim):
    token = exchange(sim, auth_code(sim)).json()["access_token"]
    sim.expire_tokens_after(0)
    assert_error(history(sim, token), 401, -8)
    fresh = exchange(sim, auth_code(sim, "st-2")).json()["access_token"]
    # The token a worker gets by refreshing right after lives on (no pending countdown left behind)
    assert [history(sim, fresh).status_code for _ in range(3)] == [200, 200, 200]


# --- Fyers since 1 April 2026: one 2FA login a trading day, refresh discontinued ---------------------------------
def test_by_default_the_refresh_is_refused_and_the_login_of_the_day_dies_at_0600_ist(sim, clock):
    tokens = exchange(sim, auth_code(sim)).json()  # Thu 17:30 IST
    assert tokens["s"] == "ok" and tokens["refresh_token"]  # still issued, as reported in mid-2026
    assert_error(refresh(sim, tokens["refresh_token"]), 401, -17)
    assert "log" in refresh(sim, tokens["refresh_token"]).json()["message"].lower()
    clock.t = NOW + 12.5 * 3600 - 1  # Fri 05:59:59 IST
    assert history(sim, tokens["access_token"]).json()["s"] == "ok"
    clock.t += 1  # 06:00 IST: the day's token is dead; only a new login helps
    assert_error(history(sim, tokens["access_token"]), 401, -8)
    assert_error(refresh(sim, tokens["refresh_token"]), 401, -17)


def test_the_other_refusal_variant_and_an_exchange_without_a_refresh_token(sim):
    sim.set_faults(refresh_policy="refused_400", issue_refresh_token=False)
    tokens = exchange(sim, auth_code(sim)).json()
    assert tokens["s"] == "ok" and tokens["access_token"] and "refresh_token" not in tokens
    assert_error(refresh(sim, "anything"), 400, -50)
    with pytest.raises(ValueError, match="refresh_policy must be one of"):
        sim.set_faults(refresh_policy="sometimes")
