"""LoginGate: the run's Fyers login gate (Fyers wants one 2FA login a trading day since April 2026).

``{"action": "check"}`` → is there a login valid now (refreshed where Fyers still allows); without one the
"waiting" notice goes out (once a day) and the answer says how long to wait. ``{"action": "wait", "task_token"}``
(the ``.waitForTaskToken`` state) keeps the run's task token until the OAuth callback resumes it.
``{"action": "resume", "state"}`` → the run's state for its next Map round of the symbols paused for a login.
Logic: pricefeed.auth.daily_login, pricefeed.ingest.paused."""

import asyncio
import os

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from pricefeed.auth.daily_login import LoginGate
from pricefeed.auth.keeper import keeper_from_settings
from pricefeed.config import Settings
from pricefeed.errors import InvalidInput, storage_error
from pricefeed.ingest.paused import resume_paused
from pricefeed.metric_names import LOGIN_WAITS, NAMESPACE

logger, metrics, tracer = Logger(), Metrics(namespace=NAMESPACE), Tracer()


def gate(settings: Settings) -> LoginGate:
    dynamodb = boto3.client("dynamodb")
    keeper = keeper_from_settings(settings, secrets_client=boto3.client("secretsmanager"), dynamodb_client=dynamodb)
    return LoginGate(keeper, dynamodb_client=dynamodb, table_name=settings.state_table, sns_client=boto3.client("sns"),
                     topic_arn=settings.token_alert_topic_arn, wait_until=os.environ.get("LOGIN_WAIT_UNTIL", "24:00"))


@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event, context):
    action = event.get("action") if isinstance(event, dict) else None
    settings = Settings.from_env().require("raw_bucket", "app_config_secret_id", "token_secret_id", "state_table")
    logger.append_keys(action=action, run_id=event.get("run_id") if isinstance(event, dict) else None)
    if action == "resume":
        try:
            state = resume_paused(boto3.client("s3"), settings.raw_bucket, event.get("state"))
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc) from None
        logger.info("symbols paused for a login", extra={"paused": state["paused_count"]})
        return state
    if action == "check":
        answer = asyncio.run(gate(settings).check(scheduled=bool(event.get("incremental"))))
        metrics.add_metric(name=LOGIN_WAITS, unit=MetricUnit.Count, value=int(not answer["logged_in"]))
        metrics.flush_metrics()  # only the check counts something: the other actions publish no metric
        if not answer["logged_in"]:
            logger.warning("no Fyers login valid now: the run waits for one",
                           extra={"wait_s": answer["wait_s"], "deadline": answer["deadline"]})
        return answer
    if action == "wait":
        answer = asyncio.run(gate(settings).wait(event.get("task_token")))
        logger.info("waiting for the next Fyers login" if answer["waiting"] else "a login landed meanwhile")
        return answer
    raise InvalidInput(f"login gate: action {action!r} is not one of check, wait, resume")
