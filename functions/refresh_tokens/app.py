"""RefreshTokens (EventBridge schedule, 08:45 IST Mon-Fri): refresh the Fyers access token before the market
day; warn on SNS and through the RefreshTokenDaysLeft metric when the refresh token nears expiry.
Logic: pricefeed.auth.renewal.scheduled_refresh."""

import asyncio

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from pricefeed.auth.keeper import keeper_from_settings
from pricefeed.auth.renewal import scheduled_refresh
from pricefeed.config import Settings
from pricefeed.errors import PricefeedError
from pricefeed.metric_names import NAMESPACE, TOKEN_REFRESHES

logger, metrics, tracer = Logger(), Metrics(namespace=NAMESPACE), Tracer()


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("app_config_secret_id", "token_secret_id", "state_table",
                                           "token_alert_topic_arn")
    keeper = keeper_from_settings(settings, secrets_client=boto3.client("secretsmanager"),
                                  dynamodb_client=boto3.client("dynamodb"))
    sns, topic = boto3.client("sns"), settings.token_alert_topic_arn
    try:
        summary = asyncio.run(scheduled_refresh(keeper, sns_client=sns, topic_arn=topic, metrics=metrics))
    except PricefeedError as exc:
        logger.error("token refresh failed", extra={"error_type": type(exc).__name__, "error": str(exc)})
        raise
    metrics.add_metric(name=TOKEN_REFRESHES, unit=MetricUnit.Count, value=int(summary["refreshed"]))
    logger.info("token refresh", extra=summary)
    return summary
