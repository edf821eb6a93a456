"""The RefreshTokens Lambda (the morning and reminder login checks) with its environment, moto and the simulator.
Each test runs at 08:45 IST of the next NSE trading day (the function does nothing on other days)."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
import time_machine
from tokenkit import (
    APP,
    STATE_TABLE,
    TOKEN_SECRET,
    Clock,
    create_resources,
    leaked,
    login,
    start_simulator,
    stored_secret,
)

from handlerkit import load_handler, sample_event
from pricefeed.auth.fyers_oauth import Tokens
from pricefeed.errors import InvalidInput
from pricefeed.istime import IST
from pricefeed.nse_holidays import is_trading_day

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = SimpleNamespace(
    function_name="RefreshTokensFunction",
    memory_limit_in_mb=256,
    invoked_function_arn="arn:aws:lambda:ap-south-1:123456789012:function:RefreshTokensFunction",
    aws_request_id="req-1",
)


class RealTime(Clock):
    def __call__(self) -> float:
        return time.time()


@pytest.fixture
def function(mocked_aws, monkeypatch):
    """Logged in (on the real clock) with yesterday's access token; returns (handler, sim, secrets)."""
    clock = RealTime(datetime.now(UTC))  # the Lambda reads the real (or the travelled) time: so does Fyers
    sim = start_simulator(clock)
    secrets, dynamodb = create_resources(mocked_aws)
    login(sim, clock, secrets, dynamodb)
    tokens = Tokens.from_json(stored_secret(secrets))
    yesterday = dataclasses.replace(tokens, access_expires_at=datetime.now(UTC) - timedelta(hours=1))
    secrets.put_secret_value(SecretId=TOKEN_SECRET, SecretString=yesterday.to_json())
    topic = boto3.client("sns", region_name=mocked_aws).create_topic(Name="alerts")["TopicArn"]
    secrets.create_secret(Name="pricefeed/app", SecretString=json.dumps(dataclasses.asdict(APP)))
    env = {
        "APP_CONFIG_SECRET_ID": "pricefeed/app",
        "TOKEN_SECRET_ID": TOKEN_SECRET,
        "STATE_TABLE": STATE_TABLE,
        "TOKEN_ALERT_TOPIC_ARN": topic,
        "FYERS_API_BASE_URL": sim.url,
        "POWERTOOLS_METRICS_NAMESPACE": "pricefeed",
    }
    module = load_handler("refresh_tokens", monkeypatch, env)
    yield module.handler, sim, secrets, yesterday
    sim.stop()


def next_trading_morning(after: datetime | None = None) -> datetime:
    day = (after or datetime.now(IST)).astimezone(IST).date() + timedelta(days=1)
    while not is_trading_day(day):
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, 8, 45, tzinfo=IST)


@pytest.fixture
def morning():
    with time_machine.travel(next_trading_morning(), tick=True):
        yield


def test_the_scheduled_function_refreshes_and_emits_the_days_left_metric(function, morning, capsys):
    handler, sim, secrets, yesterday = function
    event = sample_event("refresh_tokens")
    summary = handler(event, CONTEXT)
    stored = Tokens.from_json(stored_secret(secrets))
    assert summary["refreshed"] is True and summary["alerted"] is False
    assert stored.access_token != yesterday.access_token and stored.access_expires_at > datetime.now(UTC)
    assert sim.stats()["requests"]["/api/v3/validate-refresh-token"] == 1
    out = capsys.readouterr().out
    [emf] = [json.loads(line) for line in out.splitlines() if '"_aws"' in line and "CloudWatchMetrics" in line]
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "pricefeed"
    assert emf["service"] == "refresh_tokens"  # the dimension an alarm on the metric must name
    [days_left] = emf["RefreshTokenDaysLeft"]
    assert abs(days_left - (stored.refresh_expires_at - datetime.now(UTC)).total_seconds() / 86_400) < 0.01
    assert not leaked(out, stored.access_token, stored.refresh_token, APP.pin, APP.secret_key)


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_the_function_names_a_missing_variable(function, morning, monkeypatch):
    handler = function[0]
    monkeypatch.delenv("TOKEN_ALERT_TOPIC_ARN")
    with pytest.raises(InvalidInput, match="TOKEN_ALERT_TOPIC_ARN"):
        handler({}, CONTEXT)


def alerts_queue(mocked_aws) -> tuple[object, str]:
    sns, sqs = boto3.client("sns", region_name=mocked_aws), boto3.client("sqs", region_name=mocked_aws)
    queue = sqs.create_queue(QueueName="notices")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=sns.list_topics()["Topics"][0]["TopicArn"], Protocol="sqs", Endpoint=arn)
    return sqs, queue


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_where_fyers_refuses_the_refresh_the_link_goes_out_once_a_kind_a_day(function, morning, mocked_aws):
    handler, sim, _, _ = function
    sim.set_faults(refresh_policy="refused")  # Fyers since April 2026: one login a trading day
    sqs, queue = alerts_queue(mocked_aws)
    first = handler({"notice": "morning"}, CONTEXT)
    again = handler({"notice": "morning"}, CONTEXT)  # a retried invocation: no second e-mail
    reminder = handler({"notice": "reminder"}, CONTEXT)
    got = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]]
    assert (first["logged_in"], first["alerted"], again["alerted"], reminder["alerted"]) == (False, True, False, True)
    assert len(got) == 2 and all("/oauth/login" in m["Message"] for m in got)
    assert "Still no Fyers login" in " ".join(m["Message"] for m in got)
    assert sim.stats()["requests"]["/api/v3/validate-refresh-token"] == 1  # refused once, then on record
    assert not any(leaked(m["Message"], APP.pin, APP.secret_key) for m in got)


def test_on_a_day_nse_does_not_trade_the_function_does_nothing(function):
    handler, sim, _, _ = function
    day = datetime.now(IST).date() + timedelta(days=1)
    while is_trading_day(day):
        day += timedelta(days=1)
    with time_machine.travel(datetime(day.year, day.month, day.day, 8, 45, tzinfo=IST), tick=True):
        summary = handler({"notice": "morning"}, CONTEXT)
    assert summary == {"trading_day": False, "date": day.isoformat()}
    assert sim.stats()["requests"].get("/api/v3/validate-refresh-token", 0) == 0
