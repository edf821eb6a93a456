"""The way a user develops against the local stack: `pricefeed local up` in one terminal, the other commands in
another (real processes, one working directory), then `pricefeed local down`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from pricefeed.local.run import free_port

PRICEFEED = str(Path(sys.executable).with_name("pricefeed"))
DAY = "2026-09-21"  # a trading day no other e2e test uses


def _command(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "HOME": str(cwd), "COLUMNS": "160"}
    return subprocess.run(
        [PRICEFEED, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _wait_for(condition, what: str, process: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"`pricefeed local up` exited ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout_s:.0f} s")
        time.sleep(0.2)


def test_local_up_serves_run_status_report_and_stops_on_local_down(tmp_path):
    tickers = tmp_path / "tickers.csv"
    tickers.write_text("symbol\nNSE:SBIN-EQ\nNSE:NOSUCHUP-EQ\n")
    state = tmp_path / ".pricefeed" / "local.json"
    ports = ["--port", str(free_port()), "--api-port", str(free_port())]
    log = tmp_path / "up.log"  # a file, not a pipe nobody reads while the stack talks
    up = subprocess.Popen(
        [PRICEFEED, "local", "up", *ports, "--tickers", str(tickers)],
        cwd=tmp_path,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(state.exists, "stack state file", up)
        endpoint = json.loads(state.read_text())["endpoint"]

        ran = _command(tmp_path, "run", "--date", DAY)  # the stack's own list, uploaded by `local up`
        status = _command(tmp_path, "status")
        report = _command(tmp_path, "report", "--live", "--out", "up.html")

        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert f"SUCCEEDED; dates {DAY} .. {DAY}; 1 ticker(s) planned, 1 unknown to Fyers" in ran.stdout
        assert "NSE:NOSUCHUP-EQ" in status.stdout and "coverage: 1 complete" in status.stdout
        assert report.returncode == 0, report.stdout + report.stderr
        assert "1 symbol(s), 1 complete" in report.stdout and (tmp_path / "up.html").stat().st_size > 100_000

        down = _command(tmp_path, "local", "down")
        assert down.returncode == 0 and "Asked the local stack" in down.stdout
        assert up.wait(timeout=60) == 0
        output = log.read_text()
        assert "Local stack up" in output and "Local stack stopped." in output and endpoint in output
        assert not state.exists()  # nothing left that would point later commands at a dead stack
        gone = _command(tmp_path, "status")
        assert gone.returncode == 2 and "pricefeed local up" in gone.stdout
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(timeout=30)
