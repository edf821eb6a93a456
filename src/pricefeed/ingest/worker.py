"""One ingest worker on Lambda: what it keeps across warm invocations (the token keeper, the account's rate
budget, the watermarks) and one symbol's ingest through a Fyers client that takes a budget slot per request.
Without a usable Fyers login (none today, or the day's token died and Fyers refused the refresh) the symbol is
paused for the next login (``pricefeed.ingest.paused``), never failed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pricefeed.auth.keeper import TokenKeeper, keeper_from_settings
from pricefeed.config import Settings
from pricefeed.errors import NotLoggedIn, storage_error
from pricefeed.fyers.client import FyersClient
from pricefeed.fyers.ratelimit import AccountRateLimiter
from pricefeed.ingest.item import IngestRequest
from pricefeed.ingest.paused import pause
from pricefeed.ingest.symbol_range import ingest_symbol
from pricefeed.ingest.watermark import Watermarks


@dataclass(frozen=True)
class IngestWorker:
    """What one Lambda container keeps across warm invocations: build it once per container (the handler
    caches it), so the token cache and the budget's view of the account last."""

    settings: Settings
    keeper: TokenKeeper
    budget: AccountRateLimiter
    watermarks: Watermarks

    @classmethod
    def from_env(cls) -> IngestWorker:
        """From the function's environment (``Settings``); names a missing variable."""
        return cls.from_settings(
            Settings.from_env().require("raw_bucket", "app_config_secret_id", "token_secret_id", "state_table")
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestWorker:
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
        return cls(settings, keeper, budget, Watermarks(dynamodb, settings.state_table))

    def ingest(self, request: IngestRequest) -> dict:
        """Ingest ``request``'s symbol and range (see :func:`ingest_symbol` for the result). S3 and DynamoDB
        failures are raised as named storage errors, so the state machine can retry the transient ones."""
        try:
            return asyncio.run(self._ingest(request))
        except NotLoggedIn as exc:
            return self.pause(request, str(exc))
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc) from None

    def pause(self, request: IngestRequest, reason: str) -> dict:
        """The Map item's result for a symbol paused until the next Fyers login (see the module docstring)."""
        try:
            return pause(boto3.client("s3"), self.settings.raw_bucket, request.run_id, request.symbol, reason)
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc) from None

    async def _ingest(self, request: IngestRequest) -> dict:
        if await self.keeper.usable(force=False) is None:  # no request is spent on a token Fyers refused
            raise NotLoggedIn("no Fyers login valid now")
        base_url, app_id = self.settings.fyers_api_base_url, self.keeper.app.app_id
        async with FyersClient(base_url, app_id, tokens=self.keeper, gate=self.budget) as client:
            return await ingest_symbol(
                request,
                client=client,
                s3=boto3.client("s3"),
                raw_bucket=self.settings.raw_bucket,
                watermarks=self.watermarks,
                ingested_prefix=request.ingested_prefix,
            )
