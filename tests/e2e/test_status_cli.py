"""`pricefeed status` against a running stack: the last runs, one run's dead letters and coverage."""

from __future__ import annotations

import json
from datetime import date

from typer.testing import CliRunner

from pricefeed.cli.main import app
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


def _use_stack(pipeline, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".pricefeed").mkdir(exist_ok=True)
    state = {"pid": 0, "endpoint": pipeline.stack.endpoint_url, **pipeline.stack.outputs}
    (tmp_path / ".pricefeed" / "local.json").write_text(json.dumps(state))


def test_run_follows_a_run_to_its_outcome_with_its_own_ticker_list(pipeline, tmp_path, monkeypatch):
    _use_stack(pipeline, tmp_path, monkeypatch)
    s3, raw = pipeline.stack.client("s3"), pipeline.stack.outputs["RawBucketName"]
    s3.put_object(Bucket=raw, Key="config/nse_tickers.csv", Body=b"symbol\nNSE:SBIN-EQ\n")  # the daily list

    shown = CliRunner().invoke(app, ["run", "--date", "2026-11-12", "--symbols", "NSE:LT-EQ,NSE:NOSUCHX-EQ"])
    text = " ".join(shown.output.split())

    assert shown.exit_code == 0, shown.output
    assert "tickers done" in text and "1/1" in text and "1 unknown" in text  # the unknown one is never planned
    assert "SUCCEEDED; dates 2026-11-12 .. 2026-11-12; 1 ticker(s) planned, 1 unknown to Fyers" in text
    assert "NSE:NOSUCHX-EQ" in text and "coverage: 1 complete" in text
    # The run's own list went to config/adhoc/: the stack's daily list is untouched.
    assert s3.get_object(Bucket=raw, Key="config/nse_tickers.csv")["Body"].read() == b"symbol\nNSE:SBIN-EQ\n"


def test_backfill_checks_its_range_before_starting_anything(pipeline, tmp_path, monkeypatch):
    _use_stack(pipeline, tmp_path, monkeypatch)
    sfn, machine = pipeline.stack.client("stepfunctions"), pipeline.stack.outputs["StateMachineArn"]
    runs_before = len(sfn.list_executions(stateMachineArn=machine)["executions"])

    backwards = CliRunner().invoke(
        app, ["backfill", "--from", "2026-11-10", "--to", "2026-11-02", "--symbols", "NSE:LT-EQ"]
    )
    bad_list = CliRunner().invoke(app, ["backfill", "--from", "2026-11-02", "--to", "2026-11-03", "--symbols", "SBIN"])

    assert backwards.exit_code == 2 and "before --from" in " ".join(backwards.output.split())
    assert bad_list.exit_code == 2 and "SBIN" in bad_list.output
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == runs_before


def test_backfill_runs_a_range_in_the_fewest_requests(pipeline, tmp_path, monkeypatch):
    _use_stack(pipeline, tmp_path, monkeypatch)
    pipeline.sim.reset_stats()

    shown = CliRunner().invoke(
        app, ["backfill", "--from", "2026-10-05", "--to", "2026-10-09", "--symbols", "NSE:LT-EQ"]
    )

    assert shown.exit_code == 0, shown.output
    assert "dates 2026-10-05 .. 2026-10-09; 1 ticker(s) planned" in " ".join(shown.output.split())
    assert pipeline.sim.stats()["history_requests_by_symbol"] == {"NSE:LT-EQ": 1}
