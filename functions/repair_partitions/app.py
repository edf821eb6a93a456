"""RepairPartitions: register the partitions the aggregation job wrote. Logic: pricefeed.catalog."""

import boto3
from aws_lambda_powertools import Logger

from pricefeed.catalog import read_job_result, register_job_partitions
from pricefeed.config import Settings
from pricefeed.errors import InvalidInput
from pricefeed.paths import BARS_TABLE, COVERAGE_TABLE

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("raw_bucket", "glue_database", "glue_table", "glue_coverage_table")
    key = event.get("result_key") if isinstance(event, dict) else None
    if not isinstance(key, str) or not key:
        raise InvalidInput("repair event needs a 'result_key' string")
    result = read_job_result(boto3.client("s3"), settings.raw_bucket, key)
    outcome = register_job_partitions(
        boto3.client("glue"),
        database=settings.glue_database,
        tables={BARS_TABLE: settings.glue_table, COVERAGE_TABLE: settings.glue_coverage_table},
        partitions=result["partitions"],
    )
    logger.info("partitions registered", extra=outcome)
    # The coverage summary (without its per-symbol-day list) goes into the execution's output.
    coverage = {k: v for k, v in (result.get("coverage") or {}).items() if k != "worst"}
    return {**outcome, "coverage": coverage}
