"""RecordFailure: a Map item that failed for good → one dead-letter object. Logic: pricefeed.deadletter."""

import boto3
from aws_lambda_powertools import Logger

from pricefeed.config import Settings
from pricefeed.deadletter import record_failure

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("raw_bucket")
    result = record_failure(event, s3=boto3.client("s3"), raw_bucket=settings.raw_bucket)
    logger.warning("dead-lettered", extra={"symbol": event.get("symbol"), **result})
    return result
