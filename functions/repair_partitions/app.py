"""RepairPartitions: register the partitions the aggregation job wrote. Logic: pricefeed.aggregate.catalog."""

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from pricefeed.aggregate.catalog import read_job_result, register_result
from pricefeed.config import Settings
from pricefeed.errors import InvalidInput
from pricefeed.lake.paths import BARS_MONTHLY_TABLE, BARS_TABLE, COVERAGE_MONTHLY_TABLE, COVERAGE_TABLE
from pricefeed.metric_names import BARS_STORED, MISSING_MINUTES, NAMESPACE, SYMBOL_DAYS_WITH_GAPS

logger, metrics, tracer = Logger(), Metrics(namespace=NAMESPACE), Tracer()


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require(
        "raw_bucket",
        "glue_database",
        "glue_table",
        "glue_coverage_table",
        "glue_bars_monthly_table",
        "glue_coverage_monthly_table",
    )
    key = event.get("result_key") if isinstance(event, dict) else None
    if not isinstance(key, str) or not key:
        raise InvalidInput("repair event needs a 'result_key' string")
    s3 = boto3.client("s3")
    result = read_job_result(s3, settings.raw_bucket, key)
    tables = {
        BARS_TABLE: settings.glue_table,
        COVERAGE_TABLE: settings.glue_coverage_table,
        BARS_MONTHLY_TABLE: settings.glue_bars_monthly_table,
        COVERAGE_MONTHLY_TABLE: settings.glue_coverage_monthly_table,
    }
    outcome = register_result(boto3.client("glue"), s3, settings.raw_bucket, result,
                              database=settings.glue_database, tables=tables)
    logger.info("partitions registered", extra=outcome)
    # The coverage summary (without its per-symbol-day list) goes into the execution's output.
    coverage = {k: v for k, v in (result.get("coverage") or {}).items() if k != "worst"}
    metrics.add_metric(name=MISSING_MINUTES, unit=MetricUnit.Count, value=coverage.get("missing_minutes", 0))
    metrics.add_metric(name=SYMBOL_DAYS_WITH_GAPS, unit=MetricUnit.Count, value=coverage.get("with_gaps", 0))
    for timeframe, bars in (result.get("bars") or {}).items():
        # One metric per timeframe: a Metrics set shares its dimensions, so each goes out on its own.
        with single_metric(name=BARS_STORED, unit=MetricUnit.Count, value=bars, namespace=NAMESPACE) as metric:
            metric.add_dimension(name="timeframe", value=timeframe)
    return {**outcome, "coverage": coverage}
