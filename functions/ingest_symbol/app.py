"""IngestSymbol: one Map item → one symbol's requested minutes of raw Fyers candles in S3.
Logic: pricefeed.ingest.symbol_range.

Every request first takes a slot of the account-wide rate budget (pricefeed.fyers.ratelimit); the access token comes
from a cached read of the token secret and an expired one is refreshed once for all workers (pricefeed.auth.keeper).
"""

import asyncio
import time
from functools import cache

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from pricefeed.auth.keeper import TokenKeeper
from pricefeed.auth.store import load_app_config
from pricefeed.config import Settings
from pricefeed.errors import PricefeedError, RateLimited, storage_error
from pricefeed.fyers.client import FyersClient
from pricefeed.fyers.ratelimit import AccountRateLimiter
from pricefeed.ingest.symbol_range import IngestRequest, ingest_symbol
from pricefeed.ingest.watermark import Watermarks
from pricefeed.metric_names import CANDLES_FETCHED, FYERS_REQUESTS, INGEST_FAILURES, NAMESPACE, RATE_LIMITED

logger = Logger()
metrics = Metrics(namespace=NAMESPACE)
tracer = Tracer()


@cache
def _workers(settings: Settings) -> tuple[TokenKeeper, AccountRateLimiter, Watermarks]:
    # Built once per container, so the token cache lasts across warm invocations.
    secrets, dynamodb = boto3.client("secretsmanager"), boto3.client("dynamodb")
    app = load_app_config(secrets, settings.app_config_secret_id)
    keeper = TokenKeeper(
        secrets_client=secrets,
        token_secret_id=settings.token_secret_id,
        app=app,
        base_url=settings.fyers_api_base_url,
        dynamodb_client=dynamodb,
        table_name=settings.state_table,
    )
    budget = AccountRateLimiter(
        dynamodb,
        settings.state_table,
        app.app_id,
        per_second=settings.fyers_per_second,
        per_minute=settings.fyers_per_minute,
        per_day=settings.fyers_per_day,
    )
    return keeper, budget, Watermarks(dynamodb, settings.state_table)


async def _run(request: IngestRequest, settings: Settings) -> dict:
    keeper, budget, watermarks = _workers(settings)
    async with FyersClient(settings.fyers_api_base_url, keeper.app.app_id, tokens=keeper, gate=budget) as client:
        return await ingest_symbol(
            request,
            client=client,
            s3=boto3.client("s3"),
            raw_bucket=settings.raw_bucket,
            watermarks=watermarks,
            ingested_prefix=request.ingested_prefix,
        )


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("raw_bucket", "app_config_secret_id", "token_secret_id", "state_table")
    request = IngestRequest.parse(event)
    tracer.put_annotation(key="symbol", value=request.symbol)
    logger.append_keys(
        symbol=request.symbol, from_date=request.from_date.isoformat(), to_date=request.to_date.isoformat(),
        run_id=request.run_id,
    )
    attempt = request.attempt + 1
    started = time.monotonic()
    try:
        try:
            result = asyncio.run(_run(request, settings))
        except (ClientError, BotoCoreError) as exc:  # S3/DynamoDB: named, so the state machine can retry it
            raise storage_error(exc) from None
    except PricefeedError as exc:
        if isinstance(exc, RateLimited):  # Fyers answered 429 (even after the client's own retries)
            metrics.add_metric(name=RATE_LIMITED, unit=MetricUnit.Count, value=1)
        else:
            metrics.add_metric(name=INGEST_FAILURES, unit=MetricUnit.Count, value=1)
        # The attempt number reaches the dead letter through the error message (the Catch sees nothing else).
        exc.args = (f"attempt {attempt}: {exc}",)
        logger.warning("ingest failed", extra={"error_type": type(exc).__name__, "attempt": attempt})
        raise
    metrics.add_metric(name=FYERS_REQUESTS, unit=MetricUnit.Count, value=result["requests"])
    metrics.add_metric(name=CANDLES_FETCHED, unit=MetricUnit.Count, value=result["candles"])
    logger.info("ingested", extra={**result, "elapsed_ms": round((time.monotonic() - started) * 1000)})
    return result
