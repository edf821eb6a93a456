"""The RefreshTokens Lambda (the 08:45 IST schedule) with its environment, moto and the simulator."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
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

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = SimpleNamespace(
    function_name="RefreshTokensFunction",
    memory_limit_in_mb=256,
    invoked_function_arn="arn:aws:lambda:ap-south-1:123456789012:function:RefreshTokensFunction",
    aws_request_id="req-1",
)


@pytest.fixture
def function(mocked_aws, monkeypatch):
    """Logged in (on the real clock) with yesterday's access token; returns (handler, sim, secrets)."""
    clock = Clock(datetime.now(UTC))
    clock.__call__ = time.time  # type: ignore[method-assign]  # the Lambda reads the real time
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


def test_the_scheduled_function_refreshes_and_emits_the_days_left_metric(function, capsys):
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
    assert 14.9 < days_left <= 15
    assert not leaked(out, stored.access_token, stored.refresh_token, APP.pin, APP.secret_key)


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_the_function_names_a_missing_variable(function, monkeypatch):
    handler = function[0]
    monkeypatch.delenv("TOKEN_ALERT_TOPIC_ARN")
    with pytest.raises(InvalidInput, match="TOKEN_ALERT_TOPIC_ARN"):
        handler({}, CONTEXT)
