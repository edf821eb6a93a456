"""One ingest worker on Lambda: what it keeps across warm invocations (the token keeper, the account's rate
budget, the watermarks) and one symbol's ingest through a Fyers client that takes a budget slot per request."""

from __future__ import annotations

import asyncio
from functools import cache

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pricefeed.auth.keeper import TokenKeeper, keeper_from_settings
from pricefeed.config import Settings
from pricefeed.errors import storage_error
from pricefeed.fyers.client import FyersClient
from pricefeed.fyers.ratelimit import AccountRateLimiter
from pricefeed.ingest.symbol_range import IngestRequest, ingest_symbol
from pricefeed.ingest.watermark import Watermarks

REQUIRED_SETTINGS = ("raw_bucket", "app_config_secret_id", "token_secret_id", "state_table")


@cache
def _worker(settings: Settings) -> tuple[TokenKeeper, AccountRateLimiter, Watermarks]:
    # Built once per container, so the token cache lasts across warm invocations.
    dynamodb = boto3.client("dynamodb")
    keeper = keeper_from_settings(settings, secrets_client=boto3.client("secretsmanager"), dynamodb_client=dynamodb)
    budget = AccountRateLimiter(
        dynamodb,
        settings.state_table,
        keeper.app.app_id,
        per_second=settings.fyers_per_second,
        per_minute=settings.fyers_per_minute,
        per_day=settings.fyers_per_day,
    )
    return keeper, budget, Watermarks(dynamodb, settings.state_table)


async def _ingest(request: IngestRequest, settings: Settings) -> dict:
    keeper, budget, watermarks = _worker(settings)
    async with FyersClient(settings.fyers_api_base_url, keeper.app.app_id, tokens=keeper, gate=budget) as client:
        return await ingest_symbol(
            request,
            client=client,
            s3=boto3.client("s3"),
            raw_bucket=settings.raw_bucket,
            watermarks=watermarks,
            ingested_prefix=request.ingested_prefix,
        )


def ingest_from_fyers(request: IngestRequest, settings: Settings) -> dict:
    """Ingest ``request``'s symbol and range (see :func:`ingest_symbol` for the result). S3 and DynamoDB
    failures are raised as named storage errors, so the state machine can retry the transient ones."""
    try:
        return asyncio.run(_ingest(request, settings))
    except (ClientError, BotoCoreError) as exc:
        raise storage_error(exc) from None
