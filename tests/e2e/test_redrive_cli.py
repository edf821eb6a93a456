"""`pricefeed run` progress with failures and the Fyers budget, `pricefeed redrive`, and `--stack NAME`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pricefeed.cli.main import app

DAY = "2026-09-15"  # a trading day no other e2e test uses


def _text(result) -> str:
    return " ".join(result.output.split())  # rich wraps to the terminal's width


@pytest.fixture
def local_state(pipeline, tmp_path, monkeypatch):
    """What `pricefeed local up` leaves for the other commands: the endpoint and the stack's outputs."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PRICEFEED_STACK", raising=False)
    (tmp_path / ".pricefeed").mkdir()
    state = {"pid": 0, "endpoint": pipeline.stack.endpoint_url, **pipeline.stack.outputs}
    (tmp_path / ".pricefeed" / "local.json").write_text(json.dumps(state))
    return pipeline


def test_a_run_shows_its_failures_and_budget_and_redrive_retries_only_the_failed_ticker(local_state):
    pipeline, sim = local_state, local_state.sim
    sim.reset_stats()
    sim.set_faults(fail_next_5xx=40)  # longer than the retry policy: the one known ticker is dead-lettered
    try:
        first = CliRunner().invoke(app, ["run", "--date", DAY, "--symbols", "NSE:ONGC-EQ,NSE:NOSUCHREDRIVE-EQ"])
    finally:
        sim.set_faults(fail_next_5xx=0)
    fetched = sim.stats()["history_requests_by_symbol"]["NSE:ONGC-EQ"]
    text = _text(first)

    # The run goes on (a failed ticker never fails the run) and the progress said what happened
    assert first.exit_code == 0, first.output
    assert "tickers done" in text and "1 failed, 1 unknown" in text
    assert f"Fyers requests: {fetched} this run" in text  # the account budget, read as the workers share it
    assert "2 dead letter(s)" in text and "TransientFyersError" in text

    # `status` points at redrive, and redrive retries only what can succeed: not the unknown symbol
    sim.reset_stats()
    again = CliRunner().invoke(app, ["redrive"])
    text = _text(again)
    assert again.exit_code == 0, again.output
    assert "redriving 1 failed ticker(s)" in text and "NSE:ONGC-EQ" in text
    assert sim.stats()["history_requests_by_symbol"] == {"NSE:ONGC-EQ": 1}
    assert f"SUCCEEDED; dates {DAY} .. {DAY}; 1 ticker(s) planned, 0 unknown" in text
    assert "coverage: 1 complete, 0 with gaps" in text
    bars = pipeline.stack.client("s3").list_objects_v2(
        Bucket=pipeline.stack.outputs["ProcessedBucketName"],
        Prefix="processed/timeframe=1m/exchange=NSE/symbol=ONGC-EQ/year=2026/month=09/day=15/",
    )
    assert bars["KeyCount"] == 1

    # The redrive run itself had no failures: nothing more to redrive, and nothing is started
    sfn, machine = pipeline.stack.client("stepfunctions"), pipeline.stack.outputs["StateMachineArn"]
    runs_before = len(sfn.list_executions(stateMachineArn=machine)["executions"])
    nothing = CliRunner().invoke(app, ["redrive"])
    assert nothing.exit_code == 2 and "no failed tickers to redrive" in _text(nothing)
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == runs_before


def test_status_reaches_a_deployed_stack_by_name_through_cloudformation(pipeline, tmp_path, monkeypatch):
    # No `local up` state here: only the stack's name, the AWS endpoint and credentials, as on a laptop
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", pipeline.stack.endpoint_url)
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)

    name = pipeline.stack.stack_name
    ran = CliRunner().invoke(app, ["run", "--stack", name, "--date", "2026-09-16", "--symbols", "NSE:ITC-EQ"])
    shown = CliRunner().invoke(app, ["status", "--stack", name, "--last", "2"])
    missing = CliRunner().invoke(app, ["status", "--stack", "no-such-stack"])
    bad_name = CliRunner().invoke(app, ["status", "--stack", "not a stack!"])

    assert ran.exit_code == 0, ran.output
    assert f"on stack {name}" in _text(ran) and "tickers done" in _text(ran)
    assert "Fyers requests: 1 this run" in _text(ran)
    assert shown.exit_code == 0, shown.output
    assert f"recent runs on stack {name}" in _text(shown)
    assert "SUCCEEDED; dates 2026-09-16 .. 2026-09-16; 1 ticker(s) planned" in _text(shown)
    assert missing.exit_code == 2 and "no-such-stack" in _text(missing) and "does not exist" in _text(missing)
    assert bad_name.exit_code == 2 and "is not a CloudFormation stack name" in _text(bad_name)


def test_without_a_stack_every_command_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PRICEFEED_STACK", raising=False)
    for command in (["status"], ["redrive"], ["run", "--date", DAY]):
        shown = CliRunner().invoke(app, command)
        assert shown.exit_code == 2, command
        assert "pricefeed local up" in _text(shown) and "--stack NAME" in _text(shown)


def test_query_live_reads_the_stacks_own_lake_through_an_incremental_mirror(local_state):
    pipeline = local_state
    ran = CliRunner().invoke(app, ["run", "--date", "2026-09-17", "--symbols", "NSE:TCS-EQ"])
    assert ran.exit_code == 0, ran.output
    sql = (
        "select timeframe, count(*) as n from bars where symbol = 'TCS-EQ' and trade_date = '2026-09-17' "
        "group by timeframe order by timeframe"
    )

    first = CliRunner().invoke(app, ["query", "--live", "--csv", sql])
    again = CliRunner().invoke(app, ["query", "--live", "--csv", sql])

    assert first.exit_code == 0, first.output
    assert "15m,25\n1d,1\n1m,375\n5m,75\n" in first.output
    assert "0 file(s) fetched" in _text(again) and "15m,25" in again.output
    # A file gone from the stack (a partition rewritten under a new name) is gone from the mirror too
    s3, processed = pipeline.stack.client("s3"), pipeline.stack.outputs["ProcessedBucketName"]
    prefix = "processed/timeframe=1d/exchange=NSE/symbol=TCS-EQ/year=2026/month=09/day=17/"
    for obj in s3.list_objects_v2(Bucket=processed, Prefix=prefix)["Contents"]:
        s3.delete_object(Bucket=processed, Key=obj["Key"])
    after = CliRunner().invoke(app, ["query", "--live", "--csv", sql])
    assert "1 removed" in _text(after) and "1d,1" not in after.output and "1m,375" in after.output


def test_query_athena_runs_the_same_sql_in_the_stacks_workgroup(local_state, monkeypatch):
    pipeline = local_state
    ran = CliRunner().invoke(app, ["run", "--date", "2026-09-18", "--symbols", "NSE:WIPRO-EQ,NSE:HCLTECH-EQ"])
    assert ran.exit_code == 0, ran.output
    one_symbol = (  # the per-day table names its symbol: Athena's partition projection needs it
        "select timeframe, count(*) as n from bars where symbol = 'WIPRO-EQ' and year = '2026' and month = '09' "
        "and day = '18' group by timeframe order by timeframe"
    )
    across = (
        "select symbol, count(*) as n, min(ts) as first_bar from bars_monthly where timeframe = '5m' "
        "and year = '2026' and month = '09' and trade_date = date '2026-09-18' "
        "and symbol in ('HCLTECH-EQ', 'WIPRO-EQ') group by symbol order by symbol"
    )

    local = CliRunner().invoke(app, ["query", "--live", "--csv", one_symbol])
    athena = CliRunner().invoke(app, ["query", "--athena", "--csv", one_symbol])
    monthly = CliRunner().invoke(app, ["query", "--athena", across])
    broken = CliRunner().invoke(app, ["query", "--athena", "select no_such_column from bars_monthly"])
    both = CliRunner().invoke(app, ["query", "--athena", "--live", one_symbol])

    assert local.exit_code == 0 and athena.exit_code == 0, athena.output
    assert "15m,25\n1d,1\n1m,375\n5m,75\n" in athena.output
    assert athena.output.splitlines()[-4:] == local.output.splitlines()[-4:]
    assert monthly.exit_code == 0, monthly.output
    shown = _text(monthly)
    assert "HCLTECH-EQ │ 75 │ 2026-09-18T03:45:00" in shown and "WIPRO-EQ │ 75 │" in shown
    assert "Athena scanned" in shown and "under $0.01" in shown and "2 row(s)" in shown
    assert broken.exit_code == 2 and "no_such_column" in _text(broken)
    assert both.exit_code == 2 and "give one" in _text(both)
    # The answers stay in the stack's results bucket, under the workgroup's location (a query cannot move them)
    s3, results = pipeline.stack.client("s3"), pipeline.stack.outputs["AthenaResultsBucketName"]
    kept = [o["Key"] for o in s3.list_objects_v2(Bucket=results, Prefix="results/").get("Contents", [])]
    assert len([k for k in kept if k.endswith(".csv")]) >= 2

    # A deployed stack by name: --stack alone means its Athena
    monkeypatch.setenv("AWS_ENDPOINT_URL", pipeline.stack.endpoint_url)
    for name, value in (("AWS_REGION", "ap-south-1"), ("AWS_ACCESS_KEY_ID", "t"), ("AWS_SECRET_ACCESS_KEY", "t")):
        monkeypatch.setenv(name, value)
    by_name = CliRunner().invoke(app, ["query", "--stack", pipeline.stack.stack_name, "--csv", one_symbol])
    assert by_name.exit_code == 0, by_name.output
    assert by_name.output.splitlines()[-4:] == local.output.splitlines()[-4:]


def test_heal_lists_what_is_open_and_its_cost_then_a_run_settles_it(local_state):
    from datetime import date, datetime

    from pricefeed.ingest.settled import Settled, Stretch
    from pricefeed.ingest.watermark import Watermarks
    from pricefeed.istime import IST, last_closed_minute_epoch, utcnow
    from pricefeed.symbol import Symbol
    from pricefeed.trading_calendar import DEFAULT_CALENDAR, is_trading_day

    pipeline, symbol, day = local_state, "NSE:SIM2990-EQ", date(2025, 6, 18)  # no other e2e test asks 2025
    assert is_trading_day(day)
    opens, closes = DEFAULT_CALENDAR.session_minutes(day)[0]
    # a run for later dates jumped over the day: settled up to a few minutes ago, with that day's session a hole
    marks = Watermarks(pipeline.stack.client("dynamodb"), pipeline.stack.outputs["StateTableName"])
    frontier = last_closed_minute_epoch(utcnow()) - 300
    marks.update(Symbol.parse(symbol), lambda _: Settled(frontier, (Stretch(opens, closes - 1, "hole"),)), "seed")

    pipeline.sim.reset_stats()
    healed = CliRunner().invoke(app, ["heal", "--yes", "--from", day.isoformat(), "--to", day.isoformat()])
    text = _text(healed)
    assert healed.exit_code == 0, healed.output
    assert f"{symbol}: 1 open (1 never asked) on {day}; 2 request(s)" in text  # the hole, then the frontier
    assert "1 symbol(s), 2 Fyers request(s) in one scheduled run" in text and "SUCCEEDED" in text
    assert pipeline.sim.stats()["history_requests_by_symbol"] == {symbol: 2}
    assert marks.load(Symbol.parse(symbol)).open == ()
    bars = pipeline.stack.client("s3").list_objects_v2(
        Bucket=pipeline.stack.outputs["ProcessedBucketName"],
        Prefix=f"processed/timeframe=1m/exchange=NSE/symbol=SIM2990-EQ/{day:year=%Y/month=%m/day=%d}/",
    )
    assert bars["KeyCount"] == 1
    assert datetime.fromtimestamp(opens, IST).date() == day
    again = CliRunner().invoke(app, ["heal", "--yes", "--from", day.isoformat(), "--to", day.isoformat()])
    assert again.exit_code == 0 and "Nothing is open" in again.output


def test_heal_says_when_a_symbol_needs_more_than_one_run_and_starts_nothing_when_declined(local_state):
    from datetime import date, timedelta

    from pricefeed.ingest.settled import Settled, Stretch
    from pricefeed.ingest.symbol_range import MAX_CATCH_UP_REQUESTS
    from pricefeed.ingest.watermark import Watermarks, watermark_pk
    from pricefeed.istime import ist_midnight_epoch, last_closed_minute_epoch, utcnow
    from pricefeed.symbol import Symbol
    from pricefeed.trading_calendar import is_trading_day

    pipeline, symbol = local_state, Symbol.parse("NSE:SIM2991-EQ")
    # 21 holes ~4 months apart (no request can share) and a frontier a minute back: 22 requests, 2 runs
    days, day = [], date(2018, 1, 2)
    while len(days) < MAX_CATCH_UP_REQUESTS + 1:
        if is_trading_day(day):
            days.append(day)
            day += timedelta(days=120)
        day += timedelta(days=1)
    holes = tuple(Stretch(ist_midnight_epoch(d) + 33_300, ist_midnight_epoch(d) + 55_799, "hole") for d in days)
    db, table = pipeline.stack.client("dynamodb"), pipeline.stack.outputs["StateTableName"]
    marks = Watermarks(db, table)
    marks.update(symbol, lambda _: Settled(last_closed_minute_epoch(utcnow()) - 60, holes), "seed")
    sfn, machine = pipeline.stack.client("stepfunctions"), pipeline.stack.outputs["StateMachineArn"]
    runs_before = len(sfn.list_executions(stateMachineArn=machine)["executions"])
    try:
        declined = CliRunner().invoke(app, ["heal", "--from", "2018-01-01", "--to", "2026-12-31"], input="n\n")
    finally:
        db.delete_item(TableName=table, Key={"pk": {"S": watermark_pk(symbol)}})
    text = _text(declined)
    assert declined.exit_code == 1, declined.output
    assert f"{symbol}: 21 open (21 never asked)" in text and "22 request(s)" in text
    assert "over 2 scheduled runs: this starts the first" in text
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == runs_before
