"""IngestSymbol: one Map item → one symbol-day of raw Fyers candles in S3. Logic: pricefeed.ingest."""

import asyncio

import boto3
from aws_lambda_powertools import Logger

from pricefeed.config import Settings
from pricefeed.errors import PricefeedError
from pricefeed.fyers import FyersClient
from pricefeed.ingest import IngestRequest, ingest_symbol
from pricefeed.tokens import TokenStore, load_app_config

logger = Logger()


async def _run(request: IngestRequest, settings: Settings) -> dict:
    secrets = boto3.client("secretsmanager")
    app = load_app_config(secrets, settings.app_config_secret_id)
    tokens = TokenStore(secrets, settings.token_secret_id).load()
    async with FyersClient(settings.fyers_api_base_url, app.app_id, tokens.access_token) as client:
        return await ingest_symbol(request, client=client, s3=boto3.client("s3"), raw_bucket=settings.raw_bucket)


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("raw_bucket", "app_config_secret_id", "token_secret_id")
    request = IngestRequest.parse(event)
    logger.append_keys(symbol=request.symbol, trading_date=request.trading_date.isoformat(), run_id=request.run_id)
    attempt = int(event.get("attempt") or 0) + 1
    try:
        result = asyncio.run(_run(request, settings))
    except PricefeedError as exc:
        # The attempt number reaches the dead letter through the error message (the Catch sees nothing else).
        exc.args = (f"attempt {attempt}: {exc}",)
        logger.warning("ingest failed", extra={"error_type": type(exc).__name__, "attempt": attempt})
        raise
    logger.info("ingested", extra=result)
    return result
