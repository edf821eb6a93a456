"""PlanRun: ticker list → symbol-master check → the Map's item list and the run's artefact keys.
Logic: pricefeed.ingest.plan (dates, dead letters for unknown symbols), pricefeed.fyers.symbol_master."""

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from pricefeed.config import Settings
from pricefeed.ingest.plan import PlanRequest, plan_run
from pricefeed.metric_names import DEAD_LETTERS, NAMESPACE

logger, metrics, tracer = Logger(), Metrics(namespace=NAMESPACE), Tracer()


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("raw_bucket", "ticker_list_key", "fyers_symbol_master_url")
    request = PlanRequest.parse(event)
    logger.append_keys(run_id=request.run_id, from_date=str(request.from_date), to_date=str(request.to_date),
                       incremental=request.incremental)
    plan = plan_run(request, s3=boto3.client("s3"), raw_bucket=settings.raw_bucket,
                    ticker_list_key=settings.ticker_list_key, map_concurrency=settings.map_concurrency,
                    symbol_master_url=settings.fyers_symbol_master_url, max_glue_workers=settings.max_glue_workers)
    for segment, copy in plan["symbol_master"].items():
        if copy.get("warning"):
            logger.warning("stale symbol master", extra={"segment": segment, **copy})
    # Unknown symbols are dead-lettered here, before any request: they count with the ingest failures.
    metrics.add_metric(name=DEAD_LETTERS, unit=MetricUnit.Count, value=plan["unknown_count"])
    logger.info("planned", extra={"symbols": plan["count"], "rejected": plan["rejected_count"],
                                  "unknown": plan["unknown_count"]})
    return plan
