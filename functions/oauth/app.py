"""OAuth: GET /oauth/login → redirect to Fyers; GET /oauth/callback → verify the single-use state, exchange
the auth code and store the tokens.

Logic: pricefeed.auth.callback. Responses never carry a token. Env: APP_CONFIG_SECRET_ID, TOKEN_SECRET_ID,
FYERS_API_BASE_URL, and STATE_TABLE (callback only).
"""

import asyncio

import boto3
from aws_lambda_powertools import Logger

from pricefeed.auth.callback import complete_login, error_page, login_location, page, success_page
from pricefeed.auth.store import TokenStore, load_app_config
from pricefeed.config import Settings
from pricefeed.errors import PricefeedError

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    path = (event.get("rawPath") or "").rstrip("/")
    callback = path.endswith("/oauth/callback")
    needed = ("app_config_secret_id", "token_secret_id") + (("state_table",) if callback else ())
    settings = Settings.from_env().require(*needed)  # a deployment error: fails the invocation, not a 400
    secrets = boto3.client("secretsmanager")
    try:
        app = load_app_config(secrets, settings.app_config_secret_id)
        if path.endswith("/oauth/login"):
            return {"statusCode": 302, "headers": {"location": login_location(app, settings.fyers_api_base_url)}}
        if callback:
            tokens = asyncio.run(
                complete_login(
                    event.get("queryStringParameters") or {},
                    app=app,
                    base_url=settings.fyers_api_base_url,
                    store=TokenStore(secrets, settings.token_secret_id),
                    dynamodb_client=boto3.client("dynamodb"),
                    table_name=settings.state_table,
                )
            )
            logger.info("logged in", extra={"access_expires_at": tokens.access_expires_at.isoformat()})
            return success_page(tokens)
        return page("Not found", "use /oauth/login", 404)
    except PricefeedError as exc:
        logger.warning("login failed", extra={"error_type": type(exc).__name__})
        return error_page(exc)
