"""The scheduled refresh (08:45 IST, before the market day): renew the access token, and warn on SNS and
through the ``RefreshTokenDaysLeft`` metric while there is still time to log in again (the refresh
token lives 15 days; after it expires only a person can log in).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from datetime import time as dtime
from typing import Any

from pricefeed.auth.keeper import TokenKeeper
from pricefeed.auth.store import AppConfig
from pricefeed.errors import NotLoggedIn
from pricefeed.istime import IST
from pricefeed.metric_names import REFRESH_TOKEN_DAYS_LEFT

log = logging.getLogger(__name__)

REFRESH_WARN_WITHIN = timedelta(days=2)
METRIC_DAYS_LEFT = REFRESH_TOKEN_DAYS_LEFT


def login_page_url(app: AppConfig) -> str:
    """The /oauth/login page next to the app's registered callback."""
    base, sep, _ = app.redirect_uri.rpartition("/oauth/callback")
    return f"{base}/oauth/login" if sep else "/oauth/login of the pricefeed HTTP API"


def _ist(moment: datetime) -> str:
    return moment.astimezone(IST).strftime("%Y-%m-%d %H:%M IST")


async def _alert(sns_client: Any, topic_arn: str, subject: str, message: str) -> bool:
    log.warning(message)
    if not topic_arn:
        return False
    await asyncio.to_thread(sns_client.publish, TopicArn=topic_arn, Subject=subject[:100], Message=message)
    return True


async def scheduled_refresh(
    keeper: TokenKeeper,
    *,
    sns_client: Any,
    topic_arn: str,
    metrics: Any = None,
    warn_within: timedelta = REFRESH_WARN_WITHIN,
) -> dict:
    """Before the market day: refresh the access token if it expires before today (IST) is over, and
    when the refresh token expires within ``warn_within`` publish a notice to ``topic_arn`` (and log a
    warning). Adds the metric ``RefreshTokenDaysLeft`` to ``metrics`` (Powertools ``Metrics``).

    Returns ``{refreshed, alerted, access_expires_at, refresh_expires_at, refresh_token_days_left}``.
    ``NotLoggedIn`` (after alerting) when no tokens are stored or the refresh token has expired.
    """
    now, login = keeper.now(), login_page_url(keeper.app)
    try:
        tokens = await keeper.tokens(force=True)
    except NotLoggedIn:
        if metrics is not None:
            metrics.add_metric(name=METRIC_DAYS_LEFT, unit="Count", value=0)
        message = f"No usable Fyers tokens are stored for app {keeper.app.app_id}. Open {login} to log in."
        await _alert(sns_client, topic_arn, "pricefeed: Fyers login needed", message)
        raise
    left = tokens.refresh_expires_at - now
    days_left = round(max(0.0, left.total_seconds() / 86_400), 2)
    if metrics is not None:
        metrics.add_metric(name=METRIC_DAYS_LEFT, unit="Count", value=days_left)
    alerted = False
    if left <= warn_within:
        when = _ist(tokens.refresh_expires_at)
        message = (
            f"The Fyers refresh token of app {keeper.app.app_id} expires at {when} (in {days_left:g} days). "
            f"After that the pipeline cannot renew its access token. Open {login} and log in to Fyers."
        )
        subject = f"pricefeed: log in to Fyers before {tokens.refresh_expires_at.astimezone(IST):%Y-%m-%d %H:%M} IST"
        alerted = await _alert(sns_client, topic_arn, subject, message)
    end_of_day = datetime.combine(now.astimezone(IST).date() + timedelta(days=1), dtime(0), IST)
    refreshed = tokens.access_expires_at < end_of_day
    if refreshed:
        await keeper.replace_expired(tokens.access_token)
        tokens = await keeper.tokens()
    return {
        "refreshed": refreshed,
        "alerted": alerted,
        "access_expires_at": tokens.access_expires_at.isoformat(),
        "refresh_expires_at": tokens.refresh_expires_at.isoformat(),
        "refresh_token_days_left": days_left,
    }
