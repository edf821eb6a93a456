"""The daily Fyers login as the normal case (since 1 April 2026: one 2FA login a trading day, refresh discontinued).

A run never dead-letters a ticker for want of a login. Before its Map, the state machine asks :meth:`LoginGate.check`
whether a login valid now exists (refreshing first where Fyers still honours the refresh); if not, it waits in
"Wait for today's Fyers login" (``.waitForTaskToken``) until the wait's deadline (the end of the IST day, or the
configured ``HH:MM`` IST). :meth:`LoginGate.wait` keeps the state's task token in the state table
(``login-waiters#<app_id>``); the OAuth callback, once a login is stored, resumes every waiting run
(:func:`resume_waiting`). A symbol whose token dies mid-run (a backfill crossing 06:00 IST) is *paused*, not
failed (:func:`pause_marker`); after the Map the run collects the paused symbols, waits for the next login the
same way and ingests them (:func:`resume_paused`).

Notices go to the alert topic (e-mail, or an HTTPS subscription for a chat webhook) with the one-click login link,
at most once a kind an IST day (``login-notice#<app_id>#<date>#<kind>``): ``morning`` (the scheduled check before
the session), ``reminder`` (shortly before the scheduled run) and ``waiting`` (a run is waiting now).
Task tokens are kept out of every log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pricefeed.auth.keeper import TokenKeeper
from pricefeed.auth.renewal import login_page_url
from pricefeed.errors import InvalidInput
from pricefeed.istime import IST
from pricefeed.nse_holidays import is_trading_day

log = logging.getLogger(__name__)

WAITERS_PREFIX = "login-waiters#"
NOTICE_PREFIX = "login-notice#"
NOTICE_TTL_S = 3 * 86_400
#: Answers of SendTaskSuccess that mean "this run no longer waits": forget its token.
GONE = frozenset({"TaskDoesNotExist", "TaskTimedOut", "InvalidToken"})


def wait_deadline(now: datetime, until: str = "24:00") -> datetime:
    """Today's (IST) end of the wait: ``until`` is ``HH:MM`` IST, ``24:00`` = the end of the IST day."""
    try:
        hours, minutes = (int(part) for part in until.split(":"))
        if not (0 <= hours <= 24 and 0 <= minutes < 60 and hours * 60 + minutes <= 1440) or len(until) != 5:
            raise ValueError
    except ValueError:
        raise InvalidInput(f"login wait deadline {until!r} must be HH:MM IST between 00:00 and 24:00") from None
    day = now.astimezone(IST).date()
    return datetime.combine(day, dtime(0), IST) + timedelta(hours=hours, minutes=minutes)


def wait_seconds(now: datetime, until: str = "24:00") -> int:
    """Whole seconds from ``now`` to :func:`wait_deadline` (0 once it passed)."""
    return max(0, int((wait_deadline(now, until) - now).total_seconds()))


def waiters_key(app_id: str) -> dict:
    return {"pk": {"S": WAITERS_PREFIX + app_id}}


def resume_waiting(dynamodb_client: Any, table_name: str, app_id: str, tokens: Any, sfn_client: Any = None) -> int:
    """SendTaskSuccess to every run waiting for a login of ``app_id`` (``tokens.access_expires_at`` in the output), then
    forget their tokens; returns how many runs resumed. A run that stopped waiting (timed out, stopped) is skipped."""
    import boto3

    sfn = sfn_client or boto3.client("stepfunctions")
    key = waiters_key(app_id)
    item = dynamodb_client.get_item(TableName=table_name, Key=key, ConsistentRead=True).get("Item", {})
    output = json.dumps({"logged_in": True, "access_expires_at": tokens.access_expires_at.isoformat()})
    resumed, done = 0, []
    for token in item.get("tokens", {}).get("SS", []):
        try:
            sfn.send_task_success(taskToken=token, output=output)
            resumed += 1
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in GONE:
                raise
        done.append(token)
    if done:
        dynamodb_client.update_item(
            TableName=table_name,
            Key=key,
            UpdateExpression="DELETE tokens :t",
            ExpressionAttributeValues={":t": {"SS": done}},
        )
    if resumed:
        log.info("resumed the runs waiting for a Fyers login", extra={"runs": resumed})
    return resumed


def resume_after_login(dynamodb_client: Any, table_name: str, app_id: str, tokens: Any, *, sfn_client: Any) -> str:
    """After a login stored elsewhere than the stack's callback (``pricefeed login`` on a laptop): resume the waiting
    runs; what to tell the person ("" when no run waited)."""
    try:
        resumed = resume_waiting(dynamodb_client, table_name, app_id, tokens, sfn_client=sfn_client)
    except (ClientError, BotoCoreError) as exc:
        code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else type(exc).__name__
        return (f"Could not resume the runs waiting for a login ({code}): they time out at the end of the IST day, "
                "and the next scheduled run asks what they missed.")
    return f"Resumed {resumed} run(s) that were waiting for this login." if resumed else ""


class LoginGate:
    """Whether the pipeline may call Fyers now, and the waiting runs' task tokens. ``sns_client``/``topic_arn``:
    where notices go; ``wait_until``: the wait's daily deadline (``HH:MM`` IST)."""

    def __init__(
        self,
        keeper: TokenKeeper,
        *,
        dynamodb_client: Any,
        table_name: str,
        sns_client: Any = None,
        topic_arn: str = "",
        wait_until: str = "24:00",
    ):
        self.keeper, self._db, self._table = keeper, dynamodb_client, table_name
        self._sns, self._topic, self.wait_until = sns_client, topic_arn, wait_until
        wait_deadline(keeper.now(), wait_until)  # a bad setting fails here, named

    @property
    def _waiters_key(self) -> dict:
        return waiters_key(self.keeper.app.app_id)

    async def check(self, *, notice: str = "waiting", scheduled: bool = False) -> dict:
        """``{logged_in, trading_day, wait_s, deadline, access_expires_at, notified}``; without a login the
        ``notice`` kind goes out (once today) when the run will wait for one: not once the deadline passed, and not
        for a ``scheduled`` run on a day NSE does not trade (it ends without waiting)."""
        now = self.keeper.now()
        tokens = await self.keeper.usable()
        answer = {
            "logged_in": tokens is not None,
            "trading_day": is_trading_day(now.astimezone(IST).date()),
            "wait_s": 0 if tokens is not None else wait_seconds(now, self.wait_until),
            "deadline": wait_deadline(now, self.wait_until).isoformat(),
            "access_expires_at": tokens.access_expires_at.isoformat() if tokens is not None else None,
            "notified": False,
        }
        waits = answer["wait_s"] >= 1 and (answer["trading_day"] or not scheduled)
        if tokens is None and notice and waits:
            answer["notified"] = await asyncio.to_thread(self.notify, notice, now)
        return answer

    async def wait(self, task_token: str) -> dict:
        """Register a waiting run's ``task_token``; if a login landed meanwhile, resume it at once (the callback may
        have looked for waiters just before this one registered)."""
        if not isinstance(task_token, str) or not task_token:
            raise InvalidInput("login wait: the event has no task_token")
        await asyncio.to_thread(
            self._db.update_item,
            TableName=self._table,
            Key=self._waiters_key,
            UpdateExpression="ADD tokens :t",
            ExpressionAttributeValues={":t": {"SS": [task_token]}},
        )
        tokens = await self.keeper.usable()
        if tokens is not None:
            resumed = await asyncio.to_thread(resume_waiting, self._db, self._table, self.keeper.app.app_id, tokens)
            return {"waiting": False, "resumed": resumed}
        return {"waiting": True, "resumed": 0}

    def notify(self, kind: str, now: datetime | None = None) -> bool:
        """Publish the ``kind`` notice with the login link, unless it already went out this IST day."""
        now = now or datetime.now(UTC)
        day = now.astimezone(IST).date()
        if not self._topic or not self._first_today(kind, day, now):
            return False
        app, link = self.keeper.app, login_page_url(self.keeper.app)
        deadline = wait_deadline(now, self.wait_until).astimezone(IST).strftime("%H:%M IST")
        lines = {
            "morning": f"No Fyers login for {day:%a %d %b %Y} yet (app {app.app_id}). Fyers asks for one 2FA login "
            f"each trading day. Log in before the scheduled run: {link}",
            "reminder": f"Still no Fyers login for {day:%a %d %b %Y} (app {app.app_id}); the scheduled run starts "
            f"soon and will wait for it. Log in: {link}",
            "waiting": f"A pricefeed run is waiting for today's Fyers login (app {app.app_id}) until {deadline}; it "
            f"goes on by itself once you log in: {link}. Nothing is dead-lettered while it waits.",
        }
        message = lines.get(kind, lines["waiting"])
        subject = f"pricefeed: log in to Fyers for {day:%d %b}"
        self._sns.publish(TopicArn=self._topic, Subject=subject[:100], Message=message)
        log.warning("Fyers login needed; notice sent", extra={"notice": kind, "trading_date": day.isoformat()})
        return True

    def _first_today(self, kind: str, day: date, now: datetime) -> bool:
        key = f"{NOTICE_PREFIX}{self.keeper.app.app_id}#{day.isoformat()}#{kind}"
        try:
            self._db.put_item(
                TableName=self._table,
                Item={"pk": {"S": key}, "expires_at": {"N": str(int(now.timestamp()) + NOTICE_TTL_S)}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
