"""One Fyers login a trading day (Fyers' rule since April 2026), end to end: a run without a login waits for it and
never dead-letters a ticker for want of one.

The real template and ASL on the local stack; the simulator refuses every refresh (its default, as Fyers since
April 2026) unless a scenario says otherwise. Each scenario uses its own tickers and dates.

| Scenario              | What happens                                                                           |
| --------------------- | -------------------------------------------------------------------------------------- |
| no-login-then-login   | yesterday's token died at 06:00: the run waits in "Wait for today's Fyers login", the  |
|                       | notice with the login link goes out, the login resumes it, every ticker is stored      |
| no-login-all-day      | the run waits until the end of the IST day and ends as NoFyersLogin (no dead letter);   |
|                       | the next day's scheduled run, after a login, stores both days                          |
| token-dies-mid-run    | a backfill whose token dies mid-run (06:00 IST) and Fyers refuses the refresh: the      |
|                       | symbols not yet done pause, the run waits for the next login and ingests them           |
| refresh-honoured      | where Fyers still honours the refresh, an expired token is refreshed and nobody waits   |
| holiday-no-login      | a scheduled run on an NSE holiday without a login neither waits nor alarms: it ends     |
|                       | SUCCEEDED in "Not a trading day: no login to wait for"; the next day's run asks it      |

``make test`` prints ``login-matrix: scenarios=<n> runs-waited=<n> resumed=<n> dead-lettered-for-login=<n>``.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from typer.testing import CliRunner

from pricefeed.auth.store import TokenStore
from pricefeed.cli.main import app
from pricefeed.lake import paths
from pricefeed.local.run import login, start_execution, wait_for
from pricefeed.ops.launch import start_run
from pricefeed.simulator import market
from pricefeed.trading_calendar import is_trading_day
from stackkit import (
    INGEST,
    bars_1m,
    keys,
    log_in_again,
    next_ist_day_for_the_budget,
    raw_store,
    read_json,
    state_table,
    waiting_for_login,
)

IST = ZoneInfo("Asia/Kolkata")
WAIT_STATE = "Wait for today's Fyers login"


def sims(*numbers: int) -> list[str]:
    return [f"NSE:SIM{n}-EQ" for n in numbers]


def csv(symbols: list[str]) -> str:
    return "symbol\n" + "".join(f"{s}\n" for s in symbols)


def the_login_died(pipeline, at: datetime | None = None) -> None:
    """Yesterday's login: its access token died at 06:00 IST today (Fyers refuses it too)."""
    store = TokenStore(pipeline.stack.client("secretsmanager"), pipeline.stack.outputs["TokenSecretArn"])
    now = at or datetime.now(IST)
    six = datetime.combine(now.astimezone(IST).date(), datetime.min.time(), IST) + timedelta(hours=6)
    died = six if six <= now else six - timedelta(days=1)
    store.save(replace(store.load(), access_expires_at=died))
    pipeline.sim.expire_tokens_after(0)
    pipeline.stack.cold_start(INGEST)


def entered(pipeline, arn: str, state: str) -> int:
    """How often the execution entered ``state`` so far."""
    sfn, count, token = pipeline.stack.client("stepfunctions"), 0, None
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {}))
        count += sum(
            1 for e in page["events"] if e.get("stateEnteredEventDetails", {}).get("name") == state
        )
        token = page.get("nextToken")
        if not token:
            return count


def status_of(pipeline, arn: str, tmp_path, monkeypatch):
    """`pricefeed status --execution ARN` as a user types it, against the local stack."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PRICEFEED_STACK", raising=False)
    (tmp_path / ".pricefeed").mkdir(exist_ok=True)
    state = {"pid": 0, "endpoint": pipeline.stack.endpoint_url, **pipeline.stack.outputs}
    (tmp_path / ".pricefeed" / "local.json").write_text(json.dumps(state))
    return CliRunner().invoke(app, ["status", "--execution", arn], env={"COLUMNS": "200"})


def count(login_matrix, scenario: str, pipeline, arn: str, described: dict) -> None:
    """The scenario's row, from what the execution did: waited (entered the wait state), resumed (waited and then
    succeeded) and its dead letters for want of a login."""
    waited = entered(pipeline, arn, WAIT_STATE) > 0
    for_login = [x for x in letters_of(pipeline, arn) if x.get("error_type") == "NotLoggedIn"]
    login_matrix.add(scenario, runs_waited=int(waited), resumed=int(waited and described["status"] == "SUCCEEDED"),
                     dead_lettered_for_login=len(for_login))


def letters_of(pipeline, arn: str) -> list[dict]:
    s3, raw = raw_store(pipeline)
    run_id = arn.rsplit(":", 1)[1]
    found = [read_json(s3, raw, k) for k in keys(s3, raw, paths.DEAD_LETTER_ROOT)]
    return [letter for letter in found if letter and letter.get("run_id") == run_id]


def stored_all(pipeline, symbols: list[str], days: list[date]) -> bool:
    for symbol in symbols:
        for day in days:
            table = bars_1m(pipeline, symbol, day)
            want = [c[0] for c in market.minute_candles(pipeline.sim.config.seed, symbol, day)]
            if table is None or sorted(int(t.timestamp()) for t in table.column("ts").to_pylist()) != want:
                return False
    return True


@pytest.fixture
def alerts(pipeline):
    """The alert topic's messages, as a person subscribed to it receives them (an SQS queue stands in for e-mail)."""
    sqs, sns = pipeline.stack.client("sqs"), pipeline.stack.client("sns")
    queue = sqs.create_queue(QueueName=f"login-notices-{time.monotonic_ns()}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sub = sns.subscribe(TopicArn=pipeline.stack.outputs["TokenAlertTopicArn"], Protocol="sqs", Endpoint=queue_arn)
    db, table = state_table(pipeline)

    def forget_notices() -> None:  # notices go out once a kind a day: each scenario starts a fresh day
        for page in db.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                if item["pk"]["S"].startswith("login-notice#"):
                    db.delete_item(TableName=table, Key={"pk": item["pk"]})

    def received() -> list[dict]:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    forget_notices()
    yield received
    sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
    forget_notices()


@pytest.fixture
def fresh_login(pipeline):
    """Each scenario leaves a working login, the refusing simulator and a fresh rate budget behind."""
    knobs = pipeline.sim.set_faults()
    pipeline.sim.set_faults(refresh_policy="refused")  # Fyers since April 2026, whatever ran before
    yield
    sfn, machine = pipeline.stack.client("stepfunctions"), pipeline.stack.outputs["StateMachineArn"]
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine, statusFilter="RUNNING"):
        for execution in page["executions"]:  # a scenario that failed while its run waited: the next login must
            sfn.stop_execution(executionArn=execution["executionArn"])  # not resume it into the next scenario
    pipeline.sim.set_faults(**knobs)
    next_ist_day_for_the_budget(pipeline)
    log_in_again(pipeline)


def test_a_run_without_a_login_waits_sends_the_link_and_goes_on_after_the_login(pipeline, alerts, fresh_login,
                                                                              login_matrix, tmp_path, monkeypatch):
    day, symbols = date(2026, 10, 5), sims(2601, 2602, 2603)
    the_login_died(pipeline)
    pipeline.sim.reset_stats()
    arn = start_execution(pipeline.stack, day, csv=csv(symbols))
    waiting_for_login(pipeline, arn)
    shown = status_of(pipeline, arn, tmp_path, monkeypatch)
    assert shown.exit_code == 0 and "RUNNING" in shown.output, shown.output
    assert "waiting for today's Fyers login since" in " ".join(shown.output.split()), shown.output
    [notice] = alerts()
    assert pipeline.stack.outputs["LoginUrl"] in notice["Message"] and "log in" in notice["Subject"].lower()
    assert pipeline.sim.stats()["requests"].get("/data/history", 0) == 0  # nothing spent on a dead token

    login(pipeline.stack)  # the one click: the OAuth callback resumes the run
    described = wait_for(pipeline.stack, arn, timeout_s=300)

    assert described["status"] == "SUCCEEDED", described.get("error")
    assert entered(pipeline, arn, WAIT_STATE) == 1 and letters_of(pipeline, arn) == []
    assert stored_all(pipeline, symbols, [day])
    count(login_matrix, "no-login-then-login", pipeline, arn, described)


def test_a_backfill_whose_token_dies_mid_run_pauses_and_goes_on_after_the_next_login(pipeline, fresh_login,
                                                                                   login_matrix):
    days = [date(2026, 10, 6), date(2026, 10, 7), date(2026, 10, 8)]
    symbols = sims(2611, 2612, 2613, 2614, 2615, 2616)
    pipeline.sim.reset_stats()
    pipeline.sim.expire_tokens_after(2)  # 06:00 IST arrives after two answers; Fyers refuses the refresh
    arn = start_run(pipeline.stack.client("stepfunctions"), pipeline.stack.client("s3"),
                    state_machine_arn=pipeline.stack.outputs["StateMachineArn"],
                    raw_bucket=pipeline.stack.outputs["RawBucketName"],
                    run_input={"from": days[0].isoformat(), "to": days[-1].isoformat()}, csv=csv(symbols))
    waiting_for_login(pipeline, arn)
    s3, raw = raw_store(pipeline)
    run_id = arn.rsplit(":", 1)[1]
    paused = read_json(s3, raw, paths.RunKeys(run_id).resume_items(1))
    assert paused and 0 < len(paused) < len(symbols)  # some landed before the token died, the rest wait

    login(pipeline.stack)
    described = wait_for(pipeline.stack, arn, timeout_s=300)

    assert described["status"] == "SUCCEEDED", described.get("error")
    assert letters_of(pipeline, arn) == [] and entered(pipeline, arn, WAIT_STATE) == 1
    assert stored_all(pipeline, symbols, days)
    assert pipeline.sim.stats()["requests"].get("/api/v3/validate-refresh-token", 0) >= 1  # asked, refused
    count(login_matrix, "token-dies-mid-run", pipeline, arn, described)


def test_where_fyers_honours_the_refresh_nobody_waits(pipeline, alerts, fresh_login, login_matrix):
    day, symbols = date(2026, 10, 9), sims(2621, 2622)
    pipeline.sim.set_faults(refresh_policy="honoured")
    the_login_died(pipeline)
    pipeline.sim.reset_stats()

    arn = start_execution(pipeline.stack, day, csv=csv(symbols))
    described = wait_for(pipeline.stack, arn, timeout_s=300)

    assert described["status"] == "SUCCEEDED", described.get("error")
    assert entered(pipeline, arn, WAIT_STATE) == 0 and alerts() == []
    assert pipeline.sim.stats()["requests"].get("/api/v3/validate-refresh-token") == 1
    assert stored_all(pipeline, symbols, [day]) and letters_of(pipeline, arn) == []
    count(login_matrix, "refresh-honoured", pipeline, arn, described)


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=IST)


def test_a_day_without_a_login_ends_as_no_fyers_login_and_the_next_run_catches_up(pipeline, fresh_login,
                                                                                login_matrix):
    mon, tue, wed = date(2026, 11, 30), date(2026, 12, 1), date(2026, 12, 2)
    symbols = sims(2631, 2632)
    sfn, s3 = pipeline.stack.client("stepfunctions"), pipeline.stack.client("s3")

    def scheduled(now: datetime) -> str:  # as the schedule starts one: no dates
        clock.move_to(now)
        return start_run(sfn, s3, state_machine_arn=pipeline.stack.outputs["StateMachineArn"],
                         raw_bucket=pipeline.stack.outputs["RawBucketName"], run_input={}, csv=csv(symbols))

    next_ist_day_for_the_budget(pipeline)
    with time_machine.travel(at(mon, 15, 59), tick=True) as clock:
        log_in_again(pipeline)
        assert wait_for(pipeline.stack, scheduled(at(mon, 16)), timeout_s=300)["status"] == "SUCCEEDED"

        clock.move_to(at(tue, 23, 59, 54))
        the_login_died(pipeline, at(tue, 23, 59, 54))  # nobody logged in on Tuesday
        lapsed = wait_for(pipeline.stack, scheduled(at(tue, 23, 59, 55)), timeout_s=120)  # waits ~5 s, to 24:00
        assert lapsed["status"] == "FAILED" and lapsed.get("error") == "NoFyersLogin", lapsed
        assert "next scheduled run" in lapsed.get("cause", "")
        assert letters_of(pipeline, lapsed["executionArn"]) == []

        clock.move_to(at(wed, 15, 0))
        next_ist_day_for_the_budget(pipeline)
        log_in_again(pipeline)  # Wednesday's login
        caught_up = wait_for(pipeline.stack, scheduled(at(wed, 16)), timeout_s=300)
        assert caught_up["status"] == "SUCCEEDED", caught_up.get("error")
        assert stored_all(pipeline, symbols, [tue, wed])
    count(login_matrix, "no-login-all-day", pipeline, lapsed["executionArn"], lapsed)


def test_a_scheduled_run_on_a_holiday_without_a_login_neither_waits_nor_alarms(pipeline, alerts, fresh_login,
                                                                                login_matrix):
    holiday, wed = date(2026, 11, 24), date(2026, 11, 25)  # Tuesday 24 Nov 2026: an NSE holiday
    assert not is_trading_day(holiday)
    symbols = sims(2641)
    sfn, s3 = pipeline.stack.client("stepfunctions"), pipeline.stack.client("s3")
    next_ist_day_for_the_budget(pipeline)
    with time_machine.travel(at(holiday, 16, 15), tick=True) as clock:
        the_login_died(pipeline, at(holiday, 16, 15))
        arn = start_run(sfn, s3, state_machine_arn=pipeline.stack.outputs["StateMachineArn"],
                        raw_bucket=pipeline.stack.outputs["RawBucketName"], run_input={}, csv=csv(symbols))
        described = wait_for(pipeline.stack, arn, timeout_s=120)
        assert described["status"] == "SUCCEEDED", described
        assert entered(pipeline, arn, "Not a trading day: no login to wait for") == 1
        assert entered(pipeline, arn, WAIT_STATE) == 0 and alerts() == [] and letters_of(pipeline, arn) == []
        count(login_matrix, "holiday-no-login", pipeline, arn, described)

        clock.move_to(at(wed, 16, 15))
        next_ist_day_for_the_budget(pipeline)
        log_in_again(pipeline)
        arn = start_run(sfn, s3, state_machine_arn=pipeline.stack.outputs["StateMachineArn"],
                        raw_bucket=pipeline.stack.outputs["RawBucketName"], run_input={}, csv=csv(symbols))
        assert wait_for(pipeline.stack, arn, timeout_s=300)["status"] == "SUCCEEDED"
        assert stored_all(pipeline, symbols, [wed])


def test_a_login_check_that_fails_every_attempt_lands_in_its_queue_and_alarms(pipeline, alerts, fresh_login):
    """The schedule invokes the morning check asynchronously, as EventBridge Scheduler does. Yesterday's token is dead,
    Fyers still honours refreshes but answers 5xx all morning: Lambda tries the event three times, then keeps it in
    LoginCheckDeadLetterQueue with the error (no token in it), and LoginCheckFailedAlarm watches that queue."""
    morning = at(date(2026, 12, 3), 8, 45)  # a Thursday NSE trades
    lam, sqs = pipeline.stack.client("lambda"), pipeline.stack.client("sqs")
    queue = pipeline.stack.physical_id("LoginCheckDeadLetterQueue")
    pipeline.sim.set_faults(refresh_policy="honoured")
    with time_machine.travel(morning, tick=True):
        the_login_died(pipeline, morning)
        secret = TokenStore(pipeline.stack.client("secretsmanager"), pipeline.stack.outputs["TokenSecretArn"]).load()
        pipeline.sim.set_faults(error_5xx_rate=1.0)
        log = pipeline.stack.workdir / "logs" / "RefreshTokensFunction.log"
        failures = "[ERROR] TransientFyersError: "  # how Lambda logs a failed invocation
        attempts_before = log.read_text().count(failures) if log.exists() else 0

        answer = lam.invoke(FunctionName=pipeline.stack.physical_id("RefreshTokensFunction"), InvocationType="Event",
                            Payload=b'{"notice": "morning"}')
        assert answer["StatusCode"] == 202 and answer["Payload"].read() == b""  # queued, not run in the call

        letters, deadline = [], time.monotonic() + 120
        while not letters and time.monotonic() < deadline:
            letters = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5, MessageAttributeNames=["All"],
                                          MaxNumberOfMessages=10).get("Messages", [])
    pipeline.sim.set_faults(error_5xx_rate=0.0)

    [letter] = letters
    assert json.loads(letter["Body"]) == {"notice": "morning"}
    attributes = {k: v["StringValue"] for k, v in letter["MessageAttributes"].items()}
    assert attributes["ErrorCode"] == "200" and attributes["RequestID"]
    assert "Fyers" in attributes["ErrorMessage"], attributes
    assert log.read_text().count(failures) - attempts_before == 3  # the event and Lambda's 2 retries
    assert alerts() == []  # no login link went out: the alarm on the queue is what tells the user
    for value in (secret.access_token, secret.refresh_token):
        assert not value or value not in json.dumps(letter)

    cloudwatch = pipeline.stack.client("cloudwatch")
    [alarm] = cloudwatch.describe_alarms(AlarmNames=[pipeline.stack.physical_id("LoginCheckFailedAlarm")])[
        "MetricAlarms"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "NumberOfMessagesSent")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": queue.rsplit("/", 1)[-1]}]
    assert alarm["AlarmActions"] == [pipeline.stack.outputs["TokenAlertTopicArn"]]
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=letter["ReceiptHandle"])
    log_in_again(pipeline)
