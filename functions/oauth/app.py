"""OAuth: GET /oauth/login → redirect to Fyers; GET /oauth/callback → verify the single-use state, exchange
the auth code and store the tokens. Logic: pricefeed.auth.callback. Responses never carry a token."""

import boto3
from aws_lambda_powertools import Logger

from pricefeed.auth.callback import error_page, login_cookie, respond, settings_needed
from pricefeed.config import Settings
from pricefeed.errors import PricefeedError

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    path = (event.get("rawPath") or "").rstrip("/")
    settings = Settings.from_env().require(*settings_needed(path))  # a deployment error fails, not a 400 page
    try:
        https = (event.get("headers") or {}).get("x-forwarded-proto", "https") == "https"
        response, tokens = respond(path, event.get("queryStringParameters") or {}, settings,
                                   secrets_client=boto3.client("secretsmanager"),
                                   dynamodb_client=boto3.client("dynamodb"),
                                   browser=login_cookie(event), secure=https)
    except PricefeedError as exc:
        logger.warning("login failed", extra={"error_type": type(exc).__name__})
        return error_page(exc)
    if tokens is not None:
        logger.info("logged in", extra={"access_expires_at": tokens.access_expires_at.isoformat()})
    return response
