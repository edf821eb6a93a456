"""RecordFailure: a Map item that failed for good → one dead-letter object. Logic: pricefeed.ingest.dead_letters."""

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from pricefeed.config import Settings
from pricefeed.ingest.dead_letters import record_failure
from pricefeed.metric_names import DEAD_LETTERS, NAMESPACE

logger, metrics, tracer = Logger(), Metrics(namespace=NAMESPACE), Tracer()


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("raw_bucket")
    result = record_failure(event, s3=boto3.client("s3"), raw_bucket=settings.raw_bucket)
    metrics.add_metric(name=DEAD_LETTERS, unit=MetricUnit.Count, value=1)
    logger.warning("dead-lettered", extra={"symbol": event.get("symbol"), **result})
    return result
