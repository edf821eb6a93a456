"""Token lifecycle against the Fyers simulator on loopback and moto: login, expiry, one refresh for many
workers, refresh-token rotation, and the scheduled refresh with its SNS warning."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import boto3
import pytest
from aws_lambda_powertools import Metrics
from tokenkit import (
    APP,
    LOGIN_AT,
    PIN,
    SECRET_KEY,
    Clock,
    create_resources,
    history_window,
    keeper,
    login,
    refresh_calls,
    start_simulator,
    stored_secret,
)

from pricefeed.auth.fyers_oauth import IST, Tokens
from pricefeed.auth.renewal import scheduled_refresh
from pricefeed.errors import NotLoggedIn, TokenExpired
from pricefeed.fyers.client import FyersClient

WORKERS = 8


@pytest.fixture
def clock():
    return Clock(LOGIN_AT)


@pytest.fixture
def sim(clock):
    server = start_simulator(clock)
    yield server
    server.stop()


@pytest.fixture
def aws(mocked_aws):
    return create_resources(mocked_aws)


@pytest.fixture
def logged_in(sim, clock, aws):
    login(sim, clock, *aws)
    return aws


def history(sim, clock, token: str):
    async def call():
        async with FyersClient(sim.url, APP.app_id, token, max_attempts=1) as client:
            return await client.history("NSE:SBIN-EQ", "1", *history_window(clock))

    return asyncio.run(call())


def stored(secrets) -> Tokens:
    return Tokens.from_json(stored_secret(secrets))


def secret_strings(secrets) -> list[str]:
    tokens = stored(secrets)
    return [tokens.access_token, tokens.refresh_token, PIN, SECRET_KEY]


# --- the lifecycle ---------------------------------------------------------------------------------
def test_an_expired_token_is_replaced_and_the_call_then_succeeds(sim, clock, logged_in, caplog):
    caplog.set_level(logging.INFO)
    worker = keeper(sim, clock, *logged_in)
    token = asyncio.run(worker.access_token())
    assert history(sim, clock, token).payload["s"] in ("ok", "no_data")
    # When Fyers expires every token issued so far
    sim.expire_tokens_in(0)
    with pytest.raises(TokenExpired):
        history(sim, clock, token)
    # Then the worker replaces it, and the call goes through with the new one
    fresh = asyncio.run(worker.replace_expired(token))
    assert fresh != token and history(sim, clock, fresh).payload["s"] in ("ok", "no_data")
    assert asyncio.run(worker.access_token()) == fresh  # no stale cached token afterwards
    assert stored(logged_in[0]).access_token == fresh and refresh_calls(sim) == 1
    assert not any(s in caplog.text for s in [token, *secret_strings(logged_in[0])])


def test_a_refresh_that_lands_after_a_new_login_keeps_the_login(sim, clock, logged_in, monkeypatch):
    secrets, dynamodb = logged_in
    worker = keeper(sim, clock, *logged_in)
    token = asyncio.run(worker.access_token())
    sim.expire_tokens_in(0)
    refresh, logins = worker._refresh, []

    async def refresh_while_someone_logs_in(tokens: Tokens) -> Tokens:
        minted = await refresh(tokens)  # Fyers answered the refresh ...
        await asyncio.to_thread(login, sim, clock, secrets, dynamodb)  # ... and a login landed meanwhile
        logins.append(stored(secrets).access_token)
        return minted

    monkeypatch.setattr(worker, "_refresh", refresh_while_someone_logs_in)
    fresh = asyncio.run(worker.replace_expired(token))
    # the refreshed tokens (minted from the older login's refresh token) did not overwrite the newer login
    assert fresh == logins[0] == stored(secrets).access_token != token and refresh_calls(sim) == 1
    assert history(sim, clock, fresh).payload["s"] in ("ok", "no_data")


def test_access_tokens_are_read_through_a_cache(sim, clock, logged_in):
    secrets, dynamodb = logged_in
    reads = []
    secrets._client.meta.events.register("before-call.secrets-manager.GetSecretValue", lambda **_: reads.append(1))
    worker = keeper(sim, clock, secrets, dynamodb)
    tokens = {asyncio.run(worker.access_token()) for _ in range(5)}
    assert len(tokens) == 1 and len(reads) == 1


def test_a_token_already_past_its_expiry_is_refreshed_before_use(sim, clock, logged_in):
    before = stored(logged_in[0])
    clock.set(before.access_expires_at + timedelta(hours=2))  # 08:00 IST the next day
    token = asyncio.run(keeper(sim, clock, *logged_in).access_token())
    assert token != before.access_token and history(sim, clock, token).payload["s"] in ("ok", "no_data")
    assert refresh_calls(sim) == 1


# --- the stampede ------------------------------------------------------------------------------------
class LeaseBarrier:
    """Holds every worker's first attempt at the refresh lease until all have read the expired token, so
    they really compete (no timing luck): the DynamoDB conditional put must let exactly one through."""

    def __init__(self, client, barrier: threading.Barrier):
        self._client, self._barrier, self._first = client, barrier, True

    def __getattr__(self, name):
        return getattr(self._client, name)

    def put_item(self, **kwargs):
        if self._first and kwargs["Item"]["pk"]["S"].startswith("lock#token-refresh#"):
            self._first = False
            self._barrier.wait(timeout=20)
        return self._client.put_item(**kwargs)


def expired_token(sim, clock, logged_in) -> str:
    token = stored(logged_in[0]).access_token
    sim.expire_tokens_in(0)
    with pytest.raises(TokenExpired):
        history(sim, clock, token)
    return token


def test_eight_asyncio_workers_refresh_exactly_once(sim, clock, logged_in):
    secrets, dynamodb = logged_in
    token = expired_token(sim, clock, logged_in)
    barrier = threading.Barrier(WORKERS)
    workers = [keeper(sim, clock, secrets, LeaseBarrier(dynamodb, barrier)) for _ in range(WORKERS)]

    async def stampede():
        # each worker blocks a thread at the barrier: give the loop enough threads
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=4 * WORKERS))
        tasks = [w.replace_expired(token) for w in workers]
        return await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)

    fresh = asyncio.run(stampede())
    assert refresh_calls(sim) == 1
    assert len(set(fresh)) == 1 and fresh[0] != token
    assert history(sim, clock, fresh[0]).payload["s"] in ("ok", "no_data")


def test_eight_threads_like_separate_lambdas_refresh_exactly_once(sim, clock, logged_in):
    secrets, dynamodb = logged_in
    token = expired_token(sim, clock, logged_in)
    barrier = threading.Barrier(WORKERS)
    results: list[str] = []

    def lambda_invocation():
        worker = keeper(sim, clock, secrets, LeaseBarrier(dynamodb, barrier))
        results.append(asyncio.run(worker.replace_expired(token)))

    threads = [threading.Thread(target=lambda_invocation) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == WORKERS and refresh_calls(sim) == 1
    assert len(set(results)) == 1 and history(sim, clock, results[0]).payload["s"] in ("ok", "no_data")


def test_a_worker_that_died_holding_the_lease_is_taken_over_when_it_runs_out(sim, clock, logged_in):
    secrets, dynamodb = logged_in
    token = expired_token(sim, clock, logged_in)
    dynamodb.put_item(
        TableName="pricefeed-state",
        Item={
            "pk": {"S": f"lock#token-refresh#{APP.app_id}"},
            "holder": {"S": "dead"},
            "lease_until": {"N": str(clock() + 30)},
            "expires_at": {"N": str(int(clock()) + 3600)},
        },
    )
    worker = keeper(sim, clock, secrets, dynamodb, lease_s=30.0, sleep=clock.sleep, poll_s=1.0)
    start = clock()
    fresh = asyncio.run(worker.replace_expired(token))
    assert fresh != token and refresh_calls(sim) == 1
    assert 30 <= clock() - start <= 32  # it waited the lease out, then refreshed itself


# --- refusals --------------------------------------------------------------------------------------
def test_a_wrong_pin_means_a_login_is_needed_without_secrets_and_nobody_retries_it(sim, clock, logged_in, caplog):
    caplog.set_level(logging.INFO)
    secrets, dynamodb = logged_in
    token = expired_token(sim, clock, logged_in)
    wrong = type(APP)(APP.app_id, APP.secret_key, APP.redirect_uri, "0000")
    with pytest.raises(NotLoggedIn, match="-1005") as first:
        asyncio.run(keeper(sim, clock, secrets, dynamodb, app=wrong).replace_expired(token))
    # A second worker gets the same named error without asking Fyers again, even after the lease ran out
    clock.t += 300
    with pytest.raises(NotLoggedIn, match="-1005") as second:
        asyncio.run(keeper(sim, clock, secrets, dynamodb, app=wrong).replace_expired(token))
    assert refresh_calls(sim) == 1 and stored(secrets).access_token == token
    texts = [str(first.value), str(second.value), caplog.text]
    assert not any(s in text for s in [*secret_strings(secrets), "0000"] for text in texts)


def test_an_expired_refresh_token_says_to_log_in_again(sim, clock, logged_in):
    token = stored(logged_in[0]).access_token
    clock.set(LOGIN_AT + timedelta(days=15, minutes=1))
    with pytest.raises(NotLoggedIn, match="log in again"):
        asyncio.run(keeper(sim, clock, *logged_in).replace_expired(token))
    assert refresh_calls(sim) == 0  # known from the stored expiry: Fyers is not asked


def test_a_refresh_token_fyers_no_longer_accepts_says_to_log_in_again(sim, clock, logged_in):
    secrets, dynamodb = logged_in
    token = expired_token(sim, clock, logged_in)
    tokens = stored(secrets)
    forged = Tokens(
        token, tokens.refresh_token[:-4] + "AAAA", tokens.access_expires_at, tokens.refresh_expires_at, tokens.issued_at
    )
    secrets.put_secret_value(SecretId="pricefeed/fyers-tokens", SecretString=forged.to_json())
    with pytest.raises(NotLoggedIn, match="log in again") as caught:
        asyncio.run(keeper(sim, clock, secrets, dynamodb).replace_expired(token))
    assert "-17" in str(caught.value) and forged.refresh_token not in str(caught.value)


def test_without_stored_tokens_the_keeper_says_not_logged_in(sim, clock, aws):
    with pytest.raises(NotLoggedIn, match="login"):
        asyncio.run(keeper(sim, clock, *aws).access_token())


# --- rotation ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("rotates", [True, False])
def test_the_refresh_token_is_kept_unless_fyers_rotates_it(sim, clock, logged_in, rotates):
    secrets, dynamodb = logged_in
    sim.set_faults(refresh_rotates=rotates)
    before = stored(secrets)
    for _day in range(2):  # two days running: the kept refresh token must still work the second time
        clock.t += 86_400
        token = stored(secrets).access_token
        asyncio.run(keeper(sim, clock, secrets, dynamodb).replace_expired(token))
    after = stored(secrets)
    assert refresh_calls(sim) == 2
    assert (after.refresh_token != before.refresh_token) is rotates
    assert (after.refresh_expires_at > before.refresh_expires_at) is rotates
    assert history(sim, clock, after.access_token).payload["s"] in ("ok", "no_data")


# --- the scheduled refresh -------------------------------------------------------------------------
@pytest.fixture
def alerts(mocked_aws):
    """An SNS topic with an SQS queue subscribed: what a person would receive."""
    sns = boto3.client("sns", region_name=mocked_aws)
    sqs = boto3.client("sqs", region_name=mocked_aws)
    topic = sns.create_topic(Name="pricefeed-token-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)

    def received() -> list[dict]:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    return sns, topic, received


def at_0845_ist(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T08:45:00+05:30")


def run_scheduled(sim, clock, logged_in, alerts, metrics=None, notices: list | None = None) -> dict:
    sns, topic, _ = alerts
    worker = keeper(sim, clock, *logged_in)

    def login_needed() -> bool:
        if notices is not None:
            notices.append(clock())
        return True

    return asyncio.run(
        scheduled_refresh(worker, sns_client=sns, topic_arn=topic, metrics=metrics, login_needed=login_needed)
    )


@pytest.fixture
def metrics():
    recorder = Metrics(namespace="pricefeed", service="refresh_tokens")
    yield recorder
    recorder.clear_metrics()


def days_left_metric(metrics: Metrics) -> list[float]:
    emf = metrics.serialize_metric_set()
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "pricefeed"
    return emf["RefreshTokenDaysLeft"]


def test_the_morning_refresh_renews_the_access_token_for_the_day(sim, clock, logged_in, alerts, metrics):
    before = stored(logged_in[0])
    clock.set(at_0845_ist("2026-11-25"))  # the next morning: the token died at 06:00
    summary = run_scheduled(sim, clock, logged_in, alerts, metrics)
    after = stored(logged_in[0])
    assert summary["refreshed"] is True and after.access_token != before.access_token
    assert after.access_expires_at.astimezone(IST) == datetime.fromisoformat("2026-11-26T06:00:00+05:30")
    assert summary["access_expires_at"] == after.access_expires_at.isoformat()
    assert history(sim, clock, after.access_token).payload["s"] in ("ok", "no_data")
    assert (
        days_left_metric(metrics) == [summary["refresh_token_days_left"]]
        and 14 < summary["refresh_token_days_left"] < 15
    )
    assert alerts[2]() == [] and summary["alerted"] is False


def test_a_token_already_valid_all_day_is_left_alone(sim, clock, logged_in, alerts):
    clock.set(at_0845_ist("2026-11-25"))
    run_scheduled(sim, clock, logged_in, alerts)
    assert run_scheduled(sim, clock, logged_in, alerts)["refreshed"] is False  # a second run the same morning
    assert refresh_calls(sim) == 1


def test_one_day_before_the_refresh_token_expires_a_notice_is_published(sim, clock, logged_in, alerts, caplog):
    caplog.set_level(logging.INFO)
    clock.set(at_0845_ist("2026-12-08"))  # 14 days 15 h after the login: 1.4 days left
    summary = run_scheduled(sim, clock, logged_in, alerts)
    [notice] = alerts[2]()
    assert summary["alerted"] is True and summary["refreshed"] is True and summary["refresh_token_days_left"] < 2
    assert "2026-12-09 17:30 IST" in notice["Message"] and "2026-12-09" in notice["Subject"]
    assert f"{APP.redirect_uri.rsplit('/', 1)[0]}/login" in notice["Message"]
    leaks = [*secret_strings(logged_in[0]), stored(logged_in[0]).refresh_token]
    assert not any(s in notice["Message"] or s in notice["Subject"] or s in caplog.text for s in leaks)
    assert "expires at 2026-12-09 17:30 IST" in caplog.text  # also logged as a warning


def test_five_days_before_the_refresh_token_expires_nothing_is_published(sim, clock, logged_in, alerts):
    clock.set(at_0845_ist("2026-12-04"))
    summary = run_scheduled(sim, clock, logged_in, alerts)
    assert summary["alerted"] is False and 5 < summary["refresh_token_days_left"] < 6
    assert alerts[2]() == []


def test_an_expired_refresh_token_means_a_login_is_needed_not_an_error(sim, clock, logged_in, alerts, metrics):
    clock.set(at_0845_ist("2026-12-10"))
    notices: list = []
    summary = run_scheduled(sim, clock, logged_in, alerts, metrics, notices)
    assert (summary["logged_in"], summary["refreshable"], summary["alerted"]) == (False, False, True)
    assert len(notices) == 1 and alerts[2]() == []  # the login notice (pricefeed.auth.daily_login), no warning
    assert refresh_calls(sim) == 0 and "RefreshTokenDaysLeft" not in metrics.metric_set


def test_without_tokens_the_scheduled_check_asks_for_a_login(sim, clock, aws, alerts, metrics):
    notices: list = []
    summary = run_scheduled(sim, clock, aws, alerts, metrics, notices)
    assert summary["logged_in"] is False and len(notices) == 1
    assert "RefreshTokenDaysLeft" not in metrics.metric_set


def test_where_fyers_refuses_the_refresh_the_check_asks_for_a_login_once_and_emits_no_days_left(
    sim, clock, logged_in, alerts, metrics
):
    sim.set_faults(refresh_policy="refused")  # Fyers since April 2026
    clock.set(at_0845_ist("2026-11-25"))  # the next morning: yesterday's token died at 06:00
    notices: list = []
    first = run_scheduled(sim, clock, logged_in, alerts, metrics, notices)
    again = run_scheduled(sim, clock, logged_in, alerts, None, notices)  # the reminder later that day
    assert (first["logged_in"], first["refreshed"], first["refreshable"]) == (False, False, False)
    assert again["logged_in"] is False and len(notices) == 2  # each asks; LoginGate sends each kind once a day
    assert refresh_calls(sim) == 1  # refused once: the refusal is on record, Fyers is not asked again
    assert "RefreshTokenDaysLeft" not in metrics.metric_set  # so the refresh-token alarm stays quiet


def test_a_call_refused_for_an_expired_token_is_repeated_once_with_the_new_one(sim, clock, logged_in):
    worker = keeper(sim, clock, *logged_in)
    asyncio.run(worker.access_token())  # cached, as in a warm Lambda
    sim.expire_tokens_in(0)
    before = sim.stats()["requests"].get("/data/history", 0)

    async def fetch():
        async with FyersClient(sim.url, APP.app_id, tokens=worker, max_attempts=1) as client:
            return await client.history("NSE:SBIN-EQ", "1", *history_window(clock))

    answer = asyncio.run(fetch())
    # Refused once with the old token, then answered with the new one; one refresh in between.
    assert answer.payload["s"] in ("ok", "no_data")
    assert sim.stats()["requests"]["/data/history"] - before == 2
    assert refresh_calls(sim) == 1


def test_a_stored_token_that_fyers_refuses_too_is_followed_by_one_refresh_within_the_call(sim, clock, logged_in):
    # A warm worker holds the token of the first login; a later login stored a second one; at 06:00 IST Fyers
    # expires both. The worker is handed the stored one first, is refused again, and then refreshes once.
    worker = keeper(sim, clock, *logged_in)
    first = asyncio.run(worker.access_token())
    login(sim, clock, *logged_in)
    assert stored(logged_in[0]).access_token != first
    sim.expire_tokens_in(0)

    async def call():
        async with FyersClient(sim.url, APP.app_id, tokens=worker, max_attempts=1) as client:
            return await client.history("NSE:SBIN-EQ", "1", *history_window(clock))

    assert asyncio.run(call()).payload["s"] in ("ok", "no_data")
    assert refresh_calls(sim) == 1
