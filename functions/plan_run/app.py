"""PlanRun: ticker list → the Map's item list and the run's artefact keys. Logic: pricefeed.plan."""

import boto3
from aws_lambda_powertools import Logger

from pricefeed.config import Settings
from pricefeed.plan import PlanRequest, plan_run

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("raw_bucket", "ticker_list_key")
    request = PlanRequest.parse(event)
    logger.append_keys(run_id=request.run_id, trading_date=request.trading_date.isoformat())
    plan = plan_run(
        request,
        s3=boto3.client("s3"),
        raw_bucket=settings.raw_bucket,
        ticker_list_key=settings.ticker_list_key,
        map_concurrency=settings.map_concurrency,
    )
    logger.info("planned", extra={"symbols": plan["count"], "rejected": plan["rejected_count"]})
    return plan
