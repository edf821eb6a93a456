"""OAuth: GET /oauth/login → redirect to Fyers; GET /oauth/callback → exchange and store tokens.

Logic: pricefeed.oauth. Responses never carry a token.
"""

import asyncio

import boto3
from aws_lambda_powertools import Logger

from pricefeed.config import Settings
from pricefeed.errors import PricefeedError
from pricefeed.oauth import complete_login, error_page, login_location, page
from pricefeed.tokens import TokenStore, load_app_config

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("app_config_secret_id", "token_secret_id")
    path = (event.get("rawPath") or "").rstrip("/")
    secrets = boto3.client("secretsmanager")
    try:
        app = load_app_config(secrets, settings.app_config_secret_id)
        if path.endswith("/oauth/login"):
            return {"statusCode": 302, "headers": {"location": login_location(app, settings.fyers_api_base_url)}}
        if path.endswith("/oauth/callback"):
            store = TokenStore(secrets, settings.token_secret_id)
            query = event.get("queryStringParameters") or {}
            tokens = asyncio.run(complete_login(query, app=app, base_url=settings.fyers_api_base_url, store=store))
            logger.info("logged in", extra={"access_expires_at": tokens.access_expires_at.isoformat()})
            return page(
                "Logged in to Fyers",
                f"Tokens stored. Access valid until {tokens.access_expires_at.isoformat()}; "
                f"log in again before {tokens.refresh_expires_at.date().isoformat()}.",
                200,
            )
        return page("Not found", "use /oauth/login", 404)
    except PricefeedError as exc:
        logger.warning("login failed", extra={"error_type": type(exc).__name__})
        return error_page(exc)
