"""The scheduled login check (08:45 IST, before the market day): renew the access token where Fyers still
honours refresh tokens, and warn on SNS and through the ``RefreshTokenDaysLeft`` metric while there is still time
to log in again (a refresh token lives 15 days). Since April 2026 Fyers wants one 2FA login a trading day and
may refuse every refresh: then a login is needed, and the notice with the login link goes out instead
(``pricefeed.auth.daily_login``); no metric is emitted, so the refresh-token alarm stays quiet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
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
    login_needed: Callable[[], bool] | None = None,
) -> dict:
    """The morning check: refresh the access token if it expires before today (IST) is over and Fyers still honours
    refresh tokens; otherwise a login is needed and ``login_needed()`` sends the notice (once a day: see
    ``pricefeed.auth.daily_login``) and says whether it went out. Where the refresh works, adds the metric
    ``RefreshTokenDaysLeft`` to ``metrics`` (Powertools ``Metrics``) and, when the refresh token expires within
    ``warn_within``, publishes a warning to ``topic_arn``. A refused refresh is not an error: it is "login needed".

    Returns ``{logged_in, refreshed, refreshable, alerted, access_expires_at, refresh_expires_at,
    refresh_token_days_left}`` (the last three ``None`` when unknown or not refreshable).
    """
    now = keeper.now()
    summary: dict[str, Any] = {
        "logged_in": False, "refreshed": False, "refreshable": False, "alerted": False,
        "access_expires_at": None, "refresh_expires_at": None, "refresh_token_days_left": None,
    }
    try:
        tokens = await keeper.tokens(force=True)
        summary["refreshable"] = bool(tokens.refresh_token) and not tokens.refresh_expired(now, margin=timedelta(0))
        end_of_day = datetime.combine(now.astimezone(IST).date() + timedelta(days=1), dtime(0), IST)
        if tokens.access_expires_at < end_of_day:
            await keeper.replace_expired(tokens.access_token)
            tokens, summary["refreshed"] = await keeper.tokens(), True
        refused = await asyncio.to_thread(keeper.refused, tokens.access_token)
    except NotLoggedIn as exc:
        log.info("Fyers login needed", extra={"reason": str(exc)})
        refused, summary["refreshable"] = str(exc), False
    if refused:
        summary["refreshed"] = False
        summary["alerted"] = bool(login_needed()) if login_needed is not None else False
        return summary
    summary.update(logged_in=True, access_expires_at=tokens.access_expires_at.isoformat())
    if not summary["refreshable"]:
        return summary  # a login of the day without a working refresh: nothing to count down
    left = tokens.refresh_expires_at - now
    days_left = round(max(0.0, left.total_seconds() / 86_400), 2)
    summary.update(refresh_expires_at=tokens.refresh_expires_at.isoformat(), refresh_token_days_left=days_left)
    if metrics is not None:
        metrics.add_metric(name=METRIC_DAYS_LEFT, unit="Count", value=days_left)
    if left <= warn_within:
        login = login_page_url(keeper.app)
        when = _ist(tokens.refresh_expires_at)
        message = (
            f"The Fyers refresh token of app {keeper.app.app_id} expires at {when} (in {days_left:g} days). "
            f"After that the pipeline cannot renew its access token. Open {login} and log in to Fyers."
        )
        subject = f"pricefeed: log in to Fyers before {tokens.refresh_expires_at.astimezone(IST):%Y-%m-%d %H:%M} IST"
        summary["alerted"] = await _alert(sns_client, topic_arn, subject, message)
    return summary
