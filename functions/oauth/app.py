"""OAuth: GET /oauth/login → redirect to Fyers; GET /oauth/callback → verify the single-use state, exchange
the auth code and store the tokens, then resume the runs waiting for today's login (pricefeed.auth.daily_login).
Logic: pricefeed.auth.callback. Responses never carry a token."""

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from pricefeed.auth.callback import error_page, login_cookie, respond, settings_needed
from pricefeed.auth.daily_login import resume_waiting
from pricefeed.auth.store import load_app_config
from pricefeed.config import Settings
from pricefeed.errors import PricefeedError

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    path = (event.get("rawPath") or "").rstrip("/")
    settings = Settings.from_env().require(*settings_needed(path))  # a deployment error fails, not a 400 page
    try:
        https = (event.get("headers") or {}).get("x-forwarded-proto", "https") == "https"
        secrets, dynamodb = boto3.client("secretsmanager"), boto3.client("dynamodb")
        response, tokens = respond(path, event.get("queryStringParameters") or {}, settings,
                                   secrets_client=secrets, dynamodb_client=dynamodb,
                                   browser=login_cookie(event), secure=https)
    except PricefeedError as exc:
        logger.warning("login failed", extra={"error_type": type(exc).__name__})
        return error_page(exc)
    if tokens is not None:
        logger.info("logged in", extra={"access_expires_at": tokens.access_expires_at.isoformat()})
        try:  # the runs waiting for today's login go on now; the login itself is stored whatever happens here
            app_id = load_app_config(secrets, settings.app_config_secret_id).app_id
            resumed = resume_waiting(dynamodb, settings.state_table, app_id, tokens)
            logger.info("resumed the runs waiting for a login", extra={"runs": resumed})
        except (ClientError, BotoCoreError, PricefeedError) as exc:
            logger.error("could not resume the waiting runs; they time out, and the next run asks what they missed",
                         extra={"error_type": type(exc).__name__})
    return response
