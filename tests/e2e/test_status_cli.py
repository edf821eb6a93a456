"""`pricefeed status` against a running stack: the last runs, one run's dead letters and coverage."""

from __future__ import annotations

import json
from datetime import date

from typer.testing import CliRunner

from pricefeed.cli import app
from pricefeed.local.run import start_execution, wait_for


def test_status_shows_the_newest_run_with_its_dead_letters_and_coverage(pipeline, tmp_path, monkeypatch):
    csv = tmp_path / "tickers.csv"
    csv.write_text("symbol\nNSE:WIPRO-EQ\nNSE:ITC-EQ\nNSE:NOSUCHCO-EQ\n")
    described = wait_for(pipeline.stack, start_execution(pipeline.stack, date(2026, 11, 13), csv), timeout_s=300)
    assert described["status"] == "SUCCEEDED"
    # What `pricefeed local up` leaves for the other commands: the endpoint and the stack's outputs.
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".pricefeed").mkdir()
    state = {"pid": 0, "endpoint": pipeline.stack.endpoint_url, **pipeline.stack.outputs}
    (tmp_path / ".pricefeed" / "local.json").write_text(json.dumps(state))

    shown = CliRunner().invoke(app, ["status", "--last", "3"])
    text = " ".join(shown.output.split())  # rich wraps to the terminal's width

    assert shown.exit_code == 0, shown.output
    assert described["name"] in text and "SUCCEEDED" in text
    assert "dates 2026-11-13 .. 2026-11-13; 2 ticker(s) planned, 1 unknown to Fyers" in text
    assert "1 dead letter(s)" in text and "NSE:NOSUCHCO-EQ" in text and "InvalidSymbol" in text
    assert "coverage: 2 complete, 0 with gaps (0 minutes missing)" in text


def test_status_names_a_missing_stack_and_an_unknown_execution(pipeline, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    nothing = CliRunner().invoke(app, ["status"])
    assert nothing.exit_code == 2 and "pricefeed local up" in nothing.output

    (tmp_path / ".pricefeed").mkdir()
    state = {"pid": 0, "endpoint": pipeline.stack.endpoint_url, **pipeline.stack.outputs}
    (tmp_path / ".pricefeed" / "local.json").write_text(json.dumps(state))
    bogus = pipeline.stack.outputs["StateMachineArn"].replace(":stateMachine:", ":execution:") + ":nope"
    unknown = CliRunner().invoke(app, ["status", "--execution", bogus])
    assert unknown.exit_code == 2 and "does not exist" in " ".join(unknown.output.split())
