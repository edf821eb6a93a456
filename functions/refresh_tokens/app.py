"""RefreshTokens (EventBridge schedule, 08:45 IST Mon-Fri): refresh the Fyers access token before the market
day; warn on SNS and through the RefreshTokenDaysLeft metric when the refresh token nears expiry.

Logic: pricefeed.auth.renewal.scheduled_refresh. Env: APP_CONFIG_SECRET_ID, TOKEN_SECRET_ID, STATE_TABLE,
TOKEN_ALERT_TOPIC_ARN, FYERS_API_BASE_URL (and POWERTOOLS_METRICS_NAMESPACE=pricefeed).
"""

import asyncio

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from pricefeed.auth.keeper import TokenKeeper
from pricefeed.auth.renewal import scheduled_refresh
from pricefeed.auth.store import load_app_config
from pricefeed.config import Settings
from pricefeed.errors import PricefeedError
from pricefeed.metric_names import NAMESPACE, TOKEN_REFRESHES

logger = Logger()
metrics = Metrics(namespace=NAMESPACE)
tracer = Tracer()


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require(
        "app_config_secret_id", "token_secret_id", "state_table", "token_alert_topic_arn"
    )
    secrets = boto3.client("secretsmanager")
    keeper = TokenKeeper(
        secrets_client=secrets,
        token_secret_id=settings.token_secret_id,
        app=load_app_config(secrets, settings.app_config_secret_id),
        base_url=settings.fyers_api_base_url,
        dynamodb_client=boto3.client("dynamodb"),
        table_name=settings.state_table,
    )
    try:
        summary = asyncio.run(
            scheduled_refresh(
                keeper, sns_client=boto3.client("sns"), topic_arn=settings.token_alert_topic_arn, metrics=metrics
            )
        )
    except PricefeedError as exc:
        logger.error("token refresh failed", extra={"error_type": type(exc).__name__, "error": str(exc)})
        raise
    metrics.add_metric(name=TOKEN_REFRESHES, unit=MetricUnit.Count, value=int(summary["refreshed"]))
    logger.info("token refresh", extra=summary)
    return summary
