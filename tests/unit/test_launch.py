"""What `pricefeed redrive` starts for a run, how a stack is chosen, and what the CLI checks before it starts."""

from __future__ import annotations

import json

import pytest

from pricefeed.errors import InvalidInput
from pricefeed.ops.launch import redrive_input
from pricefeed.ops.target import StackNotFound, resolve


def _run(status="SUCCEEDED", letters=(), **kw) -> dict:
    run = {
        "name": "cli-1",
        "status": status,
        "error": None,
        "input": {},
        "from": "2026-11-02",
        "to": "2026-11-06",
        "tickers_key": "config/nse_tickers.csv",
        "dead_letters": [{"symbol": s, "attempts": a} for s, a in letters],
    }
    return {**run, **kw}


def test_a_finished_run_is_redriven_with_its_failed_tickers_over_its_dates_and_not_its_unknown_ones():
    run_input, csv, what = redrive_input(_run(letters=[("NSE:B-EQ", 5), ("NSE:A-EQ", 1), ("NSE:X-EQ", 0)]))
    assert run_input == {"from": "2026-11-02", "to": "2026-11-06"}
    assert csv == "symbol\nNSE:A-EQ\nNSE:B-EQ\n"
    assert "2 failed ticker(s)" in what


def test_unknown_symbols_are_retried_only_when_asked():
    with pytest.raises(InvalidInput, match="1 unknown to Fyers"):
        redrive_input(_run(letters=[("NSE:X-EQ", 0)]))
    _, csv, _ = redrive_input(_run(letters=[("NSE:X-EQ", 0)]), include_unknown=True)
    assert csv == "symbol\nNSE:X-EQ\n"


def test_a_one_day_run_is_redriven_as_that_day():
    run_input, _, _ = redrive_input(_run(letters=[("NSE:A-EQ", 5)], **{"from": "2026-11-06"}))
    assert run_input == {"date": "2026-11-06"}


def test_a_scheduled_run_is_redriven_as_a_scheduled_run_so_the_days_a_lapse_left_behind_are_asked_too():
    lapsed = _run(letters=[("NSE:A-EQ", 5)], incremental=True, **{"from": "2026-12-02", "to": "2026-12-02"})
    run_input, csv, _ = redrive_input(lapsed)
    assert run_input == {} and csv == "symbol\nNSE:A-EQ\n"
    whole, csv, _ = redrive_input({**lapsed, "status": "FAILED", "error": "States.TaskFailed"})
    assert whole == {"tickers_key": "config/nse_tickers.csv"} and csv is None


def test_a_run_that_failed_as_a_whole_is_redriven_with_its_whole_list():
    run_input, csv, what = redrive_input(_run(status="FAILED", error="States.TaskFailed"))
    assert run_input == {"from": "2026-11-02", "to": "2026-11-06", "tickers_key": "config/nse_tickers.csv"}
    assert csv is None and "States.TaskFailed" in what


def test_a_run_that_failed_before_planning_is_started_again_with_its_input():
    run = _run(status="FAILED", input={"date": "2026-11-06"}, **{"from": None, "to": None})
    assert redrive_input(run)[:2] == ({"date": "2026-11-06"}, None)


def test_a_running_or_clean_run_is_not_redriven():
    with pytest.raises(InvalidInput, match="still running"):
        redrive_input(_run(status="RUNNING"))
    with pytest.raises(InvalidInput, match="no failed tickers"):
        redrive_input(_run())


def test_no_stack_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.delenv("PRICEFEED_STACK", raising=False)
    with pytest.raises(StackNotFound, match=r"pricefeed local up.*--stack NAME"):
        resolve(state_file=tmp_path / "none.json")


def test_a_bad_stack_name_or_profile_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    with pytest.raises(InvalidInput, match="not a CloudFormation stack name"):
        resolve("../etc")
    with pytest.raises(InvalidInput, match="--profile 'nope' is not in your AWS config"):
        resolve("pricefeed", profile="nope")


# --- what the CLI checks before it starts anything -----------------------------------------------------------
def test_a_utf16_list_with_its_bom_is_read_and_latin_1_is_refused(tmp_path):
    from pricefeed.ops.launch import read_ticker_file

    unicode_text = tmp_path / "unicode.csv"
    unicode_text.write_bytes("symbol\r\nNSE:SBIN-EQ\r\n".encode("utf-16"))  # Excel's "Unicode Text": BOM + UTF-16
    assert read_ticker_file(unicode_text) == "symbol\r\nNSE:SBIN-EQ\r\n"
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfsymbol\nNSE:SBIN-EQ\n")
    assert read_ticker_file(bom) == "symbol\nNSE:SBIN-EQ\n"
    latin = tmp_path / "latin.csv"
    latin.write_bytes("symbol,name\nNSE:SBIN-EQ,Société\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match=r"latin\.csv is not UTF-8 text \(byte 0xe9 at offset 28\)"):
        read_ticker_file(latin)


@pytest.mark.parametrize(("error", "cause", "line"), [
    ("InvalidInput", json.dumps({"errorMessage": "execution input 'date' (2027-01-01) is after today",
                                 "errorType": "InvalidInput", "requestId": "abc", "stackTrace": ["x"]}),
     "InvalidInput: execution input 'date' (2027-01-01) is after today"),
    ("States.TaskFailed", "plain\ntext  cause", "States.TaskFailed: plain text cause"),
    ("NoFyersLogin", None, "NoFyersLogin"),
    (None, "x" * 1000, "failed: " + "x" * 299 + "…"),
])
def test_a_failed_runs_reason_is_one_readable_line(error, cause, line):
    from pricefeed.ops.launch import failure_line

    assert failure_line(error, cause) == line


MACHINE = "arn:aws:states:ap-south-1:123456789012:stateMachine:pricefeed-pricefeed"


@pytest.mark.parametrize(("given", "arn"), [
    ("cli-20261125T101500-ab12cd", "arn:aws:states:ap-south-1:123456789012:execution:pricefeed-pricefeed:"
                                   "cli-20261125T101500-ab12cd"),
    (" arn:aws:states:ap-south-1:123456789012:execution:pricefeed-pricefeed:x ",
     "arn:aws:states:ap-south-1:123456789012:execution:pricefeed-pricefeed:x"),
])
def test_execution_takes_an_arn_or_a_run_name(given, arn):
    from pricefeed.ops.status import execution_arn

    assert execution_arn(given, MACHINE) == arn


@pytest.mark.parametrize("given", ["garbage!", "arn:aws:states:bad", "", "x" * 81])
def test_execution_refuses_what_is_neither(given):
    from pricefeed.ops.status import execution_arn

    with pytest.raises(InvalidInput, match="is neither an execution ARN"):
        execution_arn(given, MACHINE)
