"""Rate limits, fault knobs, ``/_sim/*`` and the lifecycle of a running Fyers simulator."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from pricefeed.simulator import SimulatorConfig, SimulatorServer

NOW = 1_720_094_400.25  # Thu 2024-07-04 17:30:00.25 IST
PARAMS = {
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


def start(clock, **cfg) -> SimulatorServer:
    return SimulatorServer(SimulatorConfig(clock=clock, **cfg), port=0).start()


@pytest.fixture
def sim(clock):
    server = start(clock)
    yield server
    server.stop()


def login(sim: SimulatorServer) -> dict:
    cfg = sim.config
    r = requests.get(
        f"{sim.url}/api/v3/generate-authcode",
        allow_redirects=False,
        timeout=5,
        params={
            "client_id": cfg.app_id,
            "redirect_uri": cfg.redirect_uri,
            "response_type": "code",
            "state": "s",
        },
    )
    code = parse_qs(urlparse(r.headers["Location"]).query)["auth_code"][0]
    r = requests.post(f"{sim.url}/api/v3/validate-authcode", timeout=5, json=exchange_body(sim, code))
    return {"Authorization": f"{cfg.app_id}:{r.json()['access_token']}"}


def exchange_body(sim: SimulatorServer, code: str) -> dict:
    h = hashlib.sha256(f"{sim.config.app_id}:{sim.config.secret_key}".encode()).hexdigest()
    return {"grant_type": "authorization_code", "appIdHash": h, "code": code}


def history(sim, header, **params) -> requests.Response:
    return requests.get(f"{sim.url}/data/history", params={**PARAMS, **params}, headers=header, timeout=10)


def test_eleven_requests_in_one_second_give_exactly_one_429(sim, clock):
    header = login(sim)  # 2 requests in this second
    sim.reset_stats()
    statuses, refused = [], None
    for _ in range(11):
        r = history(sim, header)
        statuses.append(r.status_code)
        refused = r if r.status_code == 429 else refused
        clock.t += 0.05
    assert statuses == [200] * 10 + [429]
    assert refused.json() == {"s": "error", "code": -429, "message": "request limit reached"}
    assert int(refused.headers["Retry-After"]) >= 1
    stats = sim.stats()
    assert stats["rate_limited"] == 1 and stats["per_second_max"] == 10
    assert stats["requests"]["/data/history"] == 11 and stats["accepted"] == 10
    assert stats["history_requests_by_symbol"] == {"NSE:SBIN-EQ": 10}
    clock.t = int(clock.t) + 1  # the next whole second: the refused request consumed nothing
    assert history(sim, header).status_code == 200
    sim.set_faults(rate_limit_body="429")
    codes = {history(sim, header).json()["code"] for _ in range(11)}
    assert 429 in codes


def test_window_maxima_never_exceed_the_limits(clock):
    sim = start(clock, per_second=10, per_minute=30)
    try:
        header = login(sim)
        sim.reset_stats()
        refused = []
        for _ in range(100):  # 20 req/s offered for 5 s: the minute budget binds
            r = history(sim, header, resolution="D")
            if r.status_code == 429:
                refused.append(int(r.headers["Retry-After"]))
            clock.t += 0.05
        stats = sim.stats()
        assert stats["per_second_max"] == 10 and stats["per_minute_max"] == 30
        assert stats["accepted"] == 30 and stats["rate_limited"] == 70
        assert min(refused) >= 1
        over_http = requests.get(f"{sim.url}/_sim/stats", timeout=5).json()
        assert over_http["per_minute_max"] == 30  # /_sim/* is neither counted nor limited
    finally:
        sim.stop()


def test_fault_knobs(clock, request):
    sim = start(clock, per_second=1000, per_minute=10_000)  # budget out of the way
    request.addfinalizer(sim.stop)
    header = login(sim)
    sim.set_faults(error_5xx_rate=1.0)
    assert {history(sim, header).status_code for _ in range(6)} <= {500, 502, 503}
    sim.set_faults(error_5xx_rate=0.0, reset_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        history(sim, header)
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{sim.url}/api/v3/validate-authcode", json={}, timeout=5)
    sim.set_faults(reset_rate=0.0, malformed_rate=1.0)
    r = history(sim, header)
    assert r.status_code == 200
    with pytest.raises(ValueError):
        json.loads(r.text)
    sim.set_faults(malformed_rate=0.0, latency_ms=300)
    began = time.monotonic()
    assert history(sim, header).status_code == 200
    assert time.monotonic() - began >= 0.3
    assert sim.stats()["faults"] == {"5xx": 6, "reset": 2, "malformed": 1}


def test_partial_fault_rates_are_reproducible(clock):
    def run() -> list[int]:
        sim = start(clock)
        try:
            header = login(sim)
            sim.set_faults(error_5xx_rate=0.5)
            return [history(sim, header).status_code for _ in range(8)]
        finally:
            sim.stop()

    first = run()
    assert first == run() and 200 in first and set(first) - {200}


def test_sim_http_endpoints(sim):
    header = login(sim)
    assert requests.get(f"{sim.url}/_sim/healthz", timeout=5).json() == {"s": "ok"}
    r = requests.post(f"{sim.url}/_sim/faults", json={"no_data_style": "absent", "latency_ms": 0}, timeout=5)
    assert r.json()["knobs"]["no_data_style"] == "absent"
    assert requests.post(f"{sim.url}/_sim/faults", json={"bogus": 1}, timeout=5).status_code == 400
    assert "candles" not in history(sim, header, range_from="2024-07-06", range_to="2024-07-06").json()
    requests.post(f"{sim.url}/_sim/expire-tokens", json={"seconds": 0}, timeout=5)
    assert history(sim, header).json()["code"] == -8
    assert requests.get(f"{sim.url}/_sim/stats", timeout=5).json()["total"] > 0
    assert requests.post(f"{sim.url}/_sim/reset", timeout=5).json() == {"s": "ok"}
    stats = sim.stats()
    assert stats["total"] == 0 and stats["per_second_max"] == 0 and stats["rate_limited"] == 0


def test_stop_is_quick_with_a_request_in_flight_and_frees_the_port(clock):
    sim = start(clock)
    header = login(sim)
    port = sim.port
    sim.set_faults(latency_ms=30_000)
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(_try(lambda: history(sim, header))))
    worker.start()
    deadline = time.monotonic() + 5
    while sim.stats()["requests"].get("/data/history", 0) == 0 and time.monotonic() < deadline:
        time.sleep(0.005)  # poll until the slow request is inside the server
    began = time.monotonic()
    sim.stop()
    assert time.monotonic() - began < 1.5
    worker.join(5)
    assert outcome and isinstance(outcome[0], requests.ConnectionError)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    again = SimulatorServer(SimulatorConfig(clock=clock), port=port).start()  # the port is reusable
    try:
        assert requests.get(f"{again.url}/_sim/healthz", timeout=5).status_code == 200
    finally:
        again.stop()
    sim.stop()  # idempotent


def _try(fn):
    try:
        return fn()
    except requests.RequestException as e:
        return e


def test_command_line_runs_in_the_foreground_until_interrupted():
    proc = subprocess.Popen(
        [sys.executable, "-m", "pricefeed.simulator", "--port", "0", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        url = line.split()[3]
        assert url.startswith("http://127.0.0.1:")
        assert requests.get(f"{url}/_sim/healthz", timeout=5).json() == {"s": "ok"}
        assert "sim-secret" not in line
        proc.send_signal(2)  # SIGINT = Ctrl-C
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
