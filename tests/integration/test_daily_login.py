"""The daily-login gate on moto and the simulator (Fyers refusing every refresh, as since April 2026): the check,
the wait's deadline, the notices, the waiting runs' task tokens and the next round of paused symbols. The state
machine around them is tested end to end in tests/e2e/test_login_day.py."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError
from tokenkit import APP, LOGIN_AT, STATE_TABLE, Clock, create_resources, keeper, login, start_simulator

from pricefeed.auth.daily_login import LoginGate, resume_waiting, wait_deadline, wait_seconds
from pricefeed.errors import InvalidInput
from pricefeed.ingest.paused import pause, resume_paused
from pricefeed.istime import IST
from pricefeed.lake.paths import RunKeys
from pricefeed.symbol import Symbol


@pytest.fixture
def clock():
    return Clock(LOGIN_AT)


@pytest.fixture
def sim(clock):
    server = start_simulator(clock, refresh_policy="refused")
    yield server
    server.stop()


@pytest.fixture
def aws(mocked_aws):
    secrets, dynamodb = create_resources(mocked_aws)
    sns, sqs = boto3.client("sns", region_name=mocked_aws), boto3.client("sqs", region_name=mocked_aws)
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="mail")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)

    def mail() -> list[dict]:
        return [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
                .get("Messages", [])]

    return secrets, dynamodb, sns, topic, mail


def gate(sim, clock, aws, **kw) -> LoginGate:
    secrets, dynamodb, sns, topic, _ = aws
    return LoginGate(keeper(sim, clock, secrets, dynamodb), dynamodb_client=dynamodb, table_name=STATE_TABLE,
                     sns_client=sns, topic_arn=topic, **kw)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(("now", "until", "deadline"), [
    ("2026-11-25T16:15:00+05:30", "24:00", "2026-11-26T00:00:00+05:30"),
    ("2026-11-25T16:15:00+05:30", "18:30", "2026-11-25T18:30:00+05:30"),
    ("2026-11-25T23:00:00+00:00", "24:00", "2026-11-27T00:00:00+05:30"),  # 04:30 IST on the 26th: its day ends
])
def test_the_wait_ends_at_the_given_ist_time_of_the_day_it_began(now, until, deadline):
    assert wait_deadline(at(now), until) == at(deadline)
    assert wait_seconds(at(now), until) == int((at(deadline) - at(now)).total_seconds())


def test_a_deadline_that_passed_leaves_nothing_to_wait_and_a_bad_one_is_named():
    assert wait_seconds(at("2026-11-25T19:00:00+05:30"), "18:30") == 0
    for bad in ("25:00", "1830", "", "24:30", "ab:cd"):
        with pytest.raises(InvalidInput, match=f"login wait deadline {bad!r}"):
            wait_deadline(at("2026-11-25T16:15:00+05:30"), bad)


def test_without_a_login_the_check_says_how_long_to_wait_and_sends_the_link_once(sim, clock, aws):
    clock.set(at("2026-11-25T16:15:00+05:30"))  # a Wednesday, nobody logged in
    first = asyncio.run(gate(sim, clock, aws).check())
    again = asyncio.run(gate(sim, clock, aws).check())
    assert (first["logged_in"], first["trading_day"], first["wait_s"]) == (False, True, 7 * 3600 + 45 * 60)
    assert (first["notified"], again["notified"]) == (True, False)
    [mail] = aws[4]()
    assert "/oauth/login" in mail["Message"] and "waiting" in mail["Message"]


def test_a_login_of_today_passes_and_yesterdays_does_not_once_fyers_refuses_its_refresh(sim, clock, aws):
    secrets, dynamodb, *_ = aws
    login(sim, clock, secrets, dynamodb)  # Tue 17:30 IST
    assert asyncio.run(gate(sim, clock, aws).check())["logged_in"] is True
    clock.set(at("2026-11-25T09:00:00+05:30"))  # the token died at 06:00; Fyers refuses the refresh
    answer = asyncio.run(gate(sim, clock, aws).check())
    assert answer["logged_in"] is False and sim.stats()["requests"]["/api/v3/validate-refresh-token"] == 1
    asyncio.run(gate(sim, clock, aws).check())
    assert sim.stats()["requests"]["/api/v3/validate-refresh-token"] == 1  # the refusal is on record


def test_the_link_goes_out_only_when_the_run_will_wait_for_it(sim, clock, aws):
    clock.set(at("2026-11-24T16:15:00+05:30"))  # an NSE holiday in 2026: a scheduled run ends without waiting
    answer = asyncio.run(gate(sim, clock, aws).check(scheduled=True))
    assert (answer["logged_in"], answer["trading_day"], answer["notified"]) == (False, False, False)
    assert aws[4]() == []
    late = asyncio.run(gate(sim, clock, aws, wait_until="16:00").check())  # past its deadline: fails at once
    assert (late["wait_s"], late["notified"]) == (0, False) and aws[4]() == []
    by_hand = asyncio.run(gate(sim, clock, aws).check())  # a run started by hand waits, holiday or not
    assert by_hand["notified"] is True and len(aws[4]()) == 1


def test_a_run_that_stopped_waiting_is_forgotten_and_one_that_waits_after_the_login_goes_on_at_once(
    sim, clock, aws, monkeypatch
):
    secrets, dynamodb, *_ = aws
    sent: list[str] = []

    class Sfn:  # Step Functions' answers to SendTaskSuccess (moto's executions are not running here)
        def send_task_success(self, taskToken, output):
            if taskToken == "gone":
                raise ClientError({"Error": {"Code": "TaskTimedOut", "Message": "timed out"}}, "SendTaskSuccess")
            assert json.loads(output)["logged_in"] is True
            sent.append(taskToken)

    asyncio.run(gate(sim, clock, aws).wait("gone"))  # no login yet: both wait
    assert asyncio.run(gate(sim, clock, aws).wait("run-1")) == {"waiting": True, "resumed": 0}
    login(sim, clock, secrets, dynamodb)
    assert resume_waiting(dynamodb, STATE_TABLE, APP.app_id, _tokens(secrets), sfn_client=Sfn()) == 1
    assert sent == ["run-1"]
    item = dynamodb.get_item(TableName=STATE_TABLE, Key={"pk": {"S": f"login-waiters#{APP.app_id}"}})["Item"]
    assert "tokens" not in item  # both forgotten
    real = boto3.client

    def client(service, **kw):
        return Sfn() if service == "stepfunctions" else real(service, **kw)

    monkeypatch.setattr(boto3, "client", client)
    answer = asyncio.run(gate(sim, clock, aws).wait("run-2"))  # waits after the login landed: resumed by itself
    assert answer == {"waiting": False, "resumed": 1} and sent == ["run-1", "run-2"]


def _tokens(secrets):
    from pricefeed.auth.store import TokenStore

    return TokenStore(secrets, "pricefeed/fyers-tokens").load()


def test_paused_symbols_become_the_next_round_once_even_when_asked_twice(mocked_aws):
    s3 = boto3.client("s3", region_name=mocked_aws)
    s3.create_bucket(Bucket="raw", CreateBucketConfiguration={"LocationConstraint": mocked_aws})
    state = {"run_id": "run-1", "items_key": RunKeys("run-1").items, "count": 3}
    assert resume_paused(s3, "raw", state) == {**state, "paused_count": 0}
    for name in ("NSE:SIM0002-EQ", "NSE:SIM0001-EQ"):
        assert pause(s3, "raw", "run-1", Symbol.parse(name), "no login")["paused_for_login"] is True
    first = resume_paused(s3, "raw", state)
    again = resume_paused(s3, "raw", state)  # a retried Lambda: the markers are gone, the round's items are not
    assert first == again == {**state, "items_key": RunKeys("run-1").resume_items(1), "paused_count": 2,
                              "login_round": 1}
    items = json.loads(s3.get_object(Bucket="raw", Key=first["items_key"])["Body"].read())
    assert items == [{"symbol": "NSE:SIM0001-EQ"}, {"symbol": "NSE:SIM0002-EQ"}]
    assert resume_paused(s3, "raw", first) == {**first, "paused_count": 0}  # the next round paused nothing
    with pytest.raises(InvalidInput, match="run_id"):
        resume_paused(s3, "raw", {"items_key": "x"})


def test_login_wait_until_is_checked_when_the_gate_is_built(sim, clock, aws):
    with pytest.raises(InvalidInput, match="HH:MM IST"):
        gate(sim, clock, aws, wait_until="6pm")
    assert gate(sim, clock, aws, wait_until="18:00").wait_until == "18:00"
    assert timedelta(0) < wait_deadline(datetime.now(IST)) - datetime.now(IST) <= timedelta(days=1)


def test_a_token_fyers_refuses_whose_refresh_token_ran_out_is_not_taken_for_a_login(sim, clock, aws):
    """The JWT says the token lives till 06:00, but Fyers refuses it and there is nothing to refresh it with: the
    refusal goes on record, so the check does not send the run back to the Map for another round of pauses."""
    from dataclasses import replace

    from pricefeed.auth.store import TokenStore
    from pricefeed.errors import NotLoggedIn

    secrets, dynamodb, *_ = aws
    login(sim, clock, secrets, dynamodb)
    store = TokenStore(secrets, "pricefeed/fyers-tokens")
    tokens = store.load()
    store.save(replace(tokens, refresh_expires_at=tokens.issued_at - timedelta(hours=1)))
    sim.expire_tokens_in(0)
    with pytest.raises(NotLoggedIn, match="refresh token expired"):
        asyncio.run(keeper(sim, clock, secrets, dynamodb).replace_expired(tokens.access_token))
    assert asyncio.run(gate(sim, clock, aws).check())["logged_in"] is False
    assert sim.stats()["requests"].get("/api/v3/validate-refresh-token", 0) == 0
