"""RefreshTokens (EventBridge schedules, IST, Mon-Fri): the daily Fyers login check on NSE trading days.

``{"notice": "morning"}`` (08:45): refresh the access token where Fyers still honours refresh tokens (the
RefreshTokenDaysLeft metric and a warning before the refresh token expires); where it does not, send the
one-click login link. ``{"notice": "reminder"}`` (15:45): the link once more if nobody logged in yet. A day
without a login is not an error here: the run waits for it (pricefeed.auth.daily_login).
Logic: pricefeed.auth.renewal.scheduled_refresh."""

import asyncio
import os
from datetime import datetime

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from pricefeed.auth.daily_login import LoginGate
from pricefeed.auth.keeper import keeper_from_settings
from pricefeed.auth.renewal import scheduled_refresh
from pricefeed.config import Settings
from pricefeed.errors import PricefeedError
from pricefeed.istime import IST
from pricefeed.metric_names import NAMESPACE, TOKEN_REFRESHES
from pricefeed.nse_holidays import is_trading_day

logger, metrics, tracer = Logger(), Metrics(namespace=NAMESPACE), Tracer()


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("app_config_secret_id", "token_secret_id", "state_table",
                                           "token_alert_topic_arn")
    notice = (event or {}).get("notice", "morning") if isinstance(event, dict) else "morning"
    today = datetime.now(IST).date()
    if not is_trading_day(today):
        logger.info("not an NSE trading day: no login needed", extra={"date": today.isoformat()})
        return {"trading_day": False, "date": today.isoformat()}
    secrets, dynamodb = boto3.client("secretsmanager"), boto3.client("dynamodb")
    keeper = keeper_from_settings(settings, secrets_client=secrets, dynamodb_client=dynamodb)
    sns, topic = boto3.client("sns"), settings.token_alert_topic_arn
    gate = LoginGate(keeper, dynamodb_client=dynamodb, table_name=settings.state_table, sns_client=sns,
                     topic_arn=topic, wait_until=os.environ.get("LOGIN_WAIT_UNTIL", "24:00"))
    try:
        summary = asyncio.run(scheduled_refresh(keeper, sns_client=sns, topic_arn=topic, metrics=metrics,
                                                login_needed=lambda: gate.notify(notice)))
    except PricefeedError as exc:
        logger.error("login check failed", extra={"error_type": type(exc).__name__, "error": str(exc)})
        raise
    metrics.add_metric(name=TOKEN_REFRESHES, unit=MetricUnit.Count, value=int(summary["refreshed"]))
    logger.info("login check", extra={**summary, "notice": notice, "trading_day": True})
    return {**summary, "trading_day": True, "date": today.isoformat()}
