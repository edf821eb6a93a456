"""What a newcomer types, typed as a newcomer types it: the `pricefeed` command in its own process, its output
redirected (as in a script or a CI log). Every mistake is answered before anything starts, with exit code 2 and
one line naming the input, never a traceback; and nothing is started or spent for it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import pytest

from pricefeed.istime import ist_today

PRICEFEED = str(Path(sys.executable).with_name("pricefeed"))
DAY = date(2026, 11, 6)  # a Friday no other e2e test runs


@pytest.fixture
def user(pipeline, tmp_path):
    """A directory where `pricefeed local up` is running (its state file), and a way to type commands there."""
    (tmp_path / ".pricefeed").mkdir()
    state = {"pid": 0, "endpoint": pipeline.stack.endpoint_url, **pipeline.stack.outputs}
    (tmp_path / ".pricefeed" / "local.json").write_text(json.dumps(state))

    def typed(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([PRICEFEED, *args], cwd=tmp_path, capture_output=True, text=True, timeout=timeout,
                              check=False)

    typed.dir = tmp_path
    return typed


def executions(pipeline) -> int:
    sfn = pipeline.stack.client("stepfunctions")
    return len(sfn.list_executions(stateMachineArn=pipeline.stack.outputs["StateMachineArn"])["executions"])


def history_requests(pipeline) -> int:
    return sum(pipeline.sim.stats()["history_requests_by_symbol"].values())


def refused(done: subprocess.CompletedProcess) -> str:
    """The one line a refused command printed (exit 2, no traceback)."""
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_a_ticker_list_excel_saved_in_latin_1_is_refused_naming_the_file(user, pipeline):
    latin = user.dir / "excel.csv"
    latin.write_bytes("symbol,name\nNSE:SBIN-EQ,Société\n".encode("latin-1"))
    before = executions(pipeline)
    for args in (["run", "--date", DAY.isoformat(), "--tickers", str(latin)],
                 ["local", "run", "--date", DAY.isoformat(), "--tickers", str(latin)]):  # what `make demo` runs
        line = refused(user(*args))
        assert f"ticker list {latin} is not UTF-8 text" in line and "CSV UTF-8" in line
    assert executions(pipeline) == before


@pytest.mark.parametrize(("value", "says"), [
    ((ist_today() + timedelta(days=3)).isoformat(), "is in the future"),
    ("2016-05-02", "is before 2017-07-03, where Fyers' minute history starts"),
    ("2026-02-30", "--date 2026-02-30 is not a date on the calendar (day is out of range for month)"),
    ("25/11/2026", "--date must be a YYYY-MM-DD string"),
    ("2026-11-28", "2026-11-28 is not an NSE trading day (Saturday): there is nothing to fetch"),
    ("2026-11-24", "2026-11-24 is not an NSE trading day (an exchange holiday)"),
])
def test_a_date_that_cannot_run_is_refused_before_an_execution_starts(user, pipeline, value, says):
    before, requests = executions(pipeline), history_requests(pipeline)
    tickers = user.dir / "tickers.csv"
    tickers.write_text("symbol\nNSE:SBIN-EQ\n")
    for args in (["run", "--date", value, "--symbols", "NSE:SBIN-EQ"],
                 ["local", "run", "--date", value, "--tickers", str(tickers)]):
        assert says in refused(user(*args))
    assert executions(pipeline) == before and history_requests(pipeline) == requests


def test_an_mcx_contract_trades_the_evening_of_an_nse_holiday_so_that_day_is_not_refused():
    from pricefeed.ops.launch import check_trading_days

    check_trading_days({"date": "2026-11-24"}, "symbol\nMCX:GOLD27FEBFUT\n")  # Guru Nanak Jayanti: MCX evening


@pytest.mark.parametrize(("args", "says"), [
    (["status", "--execution", "garbage!"], "--execution 'garbage!' is neither an execution ARN"),
    (["status", "--execution", "no-such-run"], "no run no-such-run on this stack"),
    (["redrive", "--execution", "arn:aws:states:ap-south-1:123456789012:execution:other-machine:x"],
     "is a run of state machine other-machine, not of this stack's"),
    (["run", "--date", DAY.isoformat(), "--symbols", ""], "--symbols is empty"),
    (["run", "--date", DAY.isoformat(), "--symbols", " , "], "--symbols is empty"),
])
def test_a_mistyped_option_is_named_in_one_line(user, args, says):
    assert says in refused(user(*args))


@pytest.mark.parametrize("last", ["0", "-3"])
def test_status_last_must_be_at_least_one(user, last):
    done = user("status", "--last", last)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "--last" in done.stderr


def test_local_up_on_a_port_in_use_says_so_and_exits_instead_of_hanging(user):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = refused(user("local", "up", "--port", str(port), timeout=60))
    assert f"port {port} is already in use on 127.0.0.1" in line and "--port" in line
    assert (user.dir / ".pricefeed" / "local.json").exists()  # the stack already up here keeps its state file


def test_a_list_with_some_bad_rows_runs_the_good_ones_and_names_the_bad(user, pipeline):
    mixed = user.dir / "mixed.csv"
    mixed.write_text("symbol\nNSE:WIPRO-EQ\nSBIN\nNSE:TCS-EQ\nNSE:bad sym\n")
    done = user("run", "--date", DAY.isoformat(), "--tickers", str(mixed))
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert f"skipped: {mixed} line 3: symbol 'SBIN' is not of the form EXCHANGE:SYMBOL" in out
    assert f"skipped: {mixed} line 5:" in out
    assert f"dates {DAY} .. {DAY}; 2 ticker(s) planned" in out


def test_redirected_output_never_splits_what_a_user_copies(user, pipeline):
    done = user("run", "--date", DAY.isoformat(), "--symbols", "NSE:WIPRO-EQ,NSE:NOSUCHNEW-EQ")
    assert done.returncode == 0, done.stdout + done.stderr
    name = next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("started "))
    arn = pipeline.stack.outputs["StateMachineArn"].replace(":stateMachine:", ":execution:") + f":{name}"
    status = user("status")
    lines = status.stdout.splitlines()
    assert status.returncode == 0
    assert any("NSE:NOSUCHNEW-EQ" in line and "InvalidSymbol" in line for line in lines)  # one row, one line
    assert all(len(line) < 400 for line in lines)  # not padded out to the 100,000 columns it may use
    assert f"`pricefeed redrive --execution {arn}`" in status.stdout  # whole, on one line


def test_the_local_state_machine_reports_the_templates_logging_and_tracing(pipeline):
    described = pipeline.stack.client("stepfunctions").describe_state_machine(
        stateMachineArn=pipeline.stack.outputs["StateMachineArn"])
    assert described["loggingConfiguration"]["level"] == "ERROR"
    assert described["loggingConfiguration"]["includeExecutionData"] is False
    assert described["loggingConfiguration"]["destinations"]
    assert described["tracingConfiguration"] == {"enabled": True}


@pytest.fixture
def standalone_simulator(tmp_path):
    """`python -m pricefeed.simulator` in its own process, as the README starts it, its app registered with a
    loopback redirect URI on a free port (what a Fyers app for local work registers)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        redirect = f"http://127.0.0.1:{probe.getsockname()[1]}/oauth/callback"
    process = subprocess.Popen(
        [sys.executable, "-m", "pricefeed.simulator", "--port", "0", "--redirect-uri", redirect, "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,  # its log lines go to stderr
    )
    try:
        first = process.stdout.readline()  # "Fyers simulator at http://127.0.0.1:PORT  (…)" once it listens
        assert first.startswith("Fyers simulator at "), first
        yield first.split()[3], redirect
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()


def test_local_run_logs_in_to_a_simulator_started_on_its_own(user, standalone_simulator):
    url, redirect = standalone_simulator
    tickers = user.dir / "two.csv"
    tickers.write_text("symbol\nNSE:WIPRO-EQ\nNSE:TCS-EQ\n")
    args = ("local", "run", "--date", DAY.isoformat(), "--tickers", str(tickers), "--fyers-url", url)

    # Without the app's redirect URI the stack listens where the standalone simulator's default app redirects,
    # and this simulator's app redirects elsewhere: refused by that Fyers, said in one line with what to set
    wrong = subprocess.run([PRICEFEED, *args], cwd=user.dir, capture_output=True, text=True, timeout=300,
                           check=False, env={**os.environ, "FYERS_REDIRECT_URI": ""})
    line = refused(wrong)
    assert "redirect_uri" in line and "FYERS_REDIRECT_URI" in line

    # With it, the login lands on the stack's callback and both tickers are stored from that simulator
    done = subprocess.run([PRICEFEED, *args], cwd=user.dir, capture_output=True, text=True, timeout=300,
                          check=False, env={**os.environ, "FYERS_REDIRECT_URI": redirect})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCEEDED" in done.stdout and "Traceback" not in done.stdout + done.stderr
    stats = json.loads(urllib.request.urlopen(f"{url}/_sim/stats", timeout=30).read())  # noqa: S310 - loopback
    assert set(stats["history_requests_by_symbol"]) == {"NSE:WIPRO-EQ", "NSE:TCS-EQ"}
    assert "2 tickers stored, 0 dead-lettered" in done.stdout, done.stdout


def test_make_demo_works_with_a_deployed_stacks_fyers_settings_exported(user):
    """A user who deploys has their app's settings in the shell; the built-in simulator's login and the local
    Lambdas (which, as on AWS, see only their own environment) are not thrown off by them."""
    tickers = user.dir / "two.csv"
    tickers.write_text("symbol\nNSE:WIPRO-EQ\nNSE:TCS-EQ\n")
    exported = {"FYERS_REDIRECT_URI": "https://abc123.execute-api.ap-south-1.amazonaws.com/oauth/callback",
                "FYERS_SECRET_KEY": "the-real-apps-secret"}
    done = subprocess.run([PRICEFEED, "local", "run", "--date", DAY.isoformat(), "--tickers", str(tickers)],
                          cwd=user.dir, capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, **exported})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 tickers stored, 0 dead-lettered" in done.stdout
