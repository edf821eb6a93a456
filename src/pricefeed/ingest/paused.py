"""Symbols paused for a Fyers login, and the run's next round of them (see ``pricefeed.auth.daily_login``).

When a symbol's token dies mid-run and Fyers refuses the refresh (a backfill crossing 06:00 IST under the daily-login
rule), the ingest is not a failure: the symbol is paused (:func:`pause`: a marker under the run's ``paused/``
folder, and the Map item succeeds). Nothing it landed is lost, and nothing is settled, so its next ingest asks again
what this one did not finish. After the Map, :func:`resume_paused` turns the markers into the Map items of the next
round; the state machine waits for the next login and ingests them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from pricefeed.errors import InvalidInput, NotLoggedIn
from pricefeed.lake.paths import RunKeys
from pricefeed.symbol import Symbol

#: Rounds of "wait for a login, ingest the paused" one run may take (a backfill crosses 06:00 IST once a day).
MAX_ROUNDS = 30


def pause(s3, bucket: str, run_id: str, symbol: Symbol, reason: str, now: datetime | None = None) -> dict:
    """Mark ``symbol`` paused in ``run_id`` (``reason``: why a login is needed); returns the Map item's result."""
    marker = {"symbol": str(symbol), "paused_at": (now or datetime.now(UTC)).isoformat(), "reason": reason[:500]}
    s3.put_object(Bucket=bucket, Key=RunKeys(run_id).paused_marker(symbol), Body=json.dumps(marker).encode(),
                  ContentType="application/json")
    return {"symbol": str(symbol), "paused_for_login": True, "requests": 0, "candles": 0}


def resume_paused(s3, bucket: str, state: dict) -> dict:
    """The run's state for its next Map round: ``items_key`` the paused symbols (``paused_count`` of them) and
    ``login_round`` one more; unchanged but ``paused_count: 0`` when none paused. Safe to repeat: a round whose
    items were written (and markers deleted) is answered from its items file."""
    if not isinstance(state, dict) or not isinstance(state.get("run_id"), str):
        raise InvalidInput("resume: the state has no run_id")
    keys, login_round = RunKeys(state["run_id"]), int(state.get("login_round") or 0) + 1
    if login_round > MAX_ROUNDS:
        raise NotLoggedIn(
            f"run {state['run_id']}: its symbols paused for a Fyers login {MAX_ROUNDS} times; a login that Fyers keeps "
            "refusing (another account? a revoked app?) needs a look: log in again and start the run anew"
        )
    items_key = keys.resume_items(login_round)
    try:
        items = json.loads(s3.get_object(Bucket=bucket, Key=items_key)["Body"].read())
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
            raise
        items = None
    if items is None:
        markers = [
            obj["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=keys.paused_prefix)
            for obj in page.get("Contents", [])
        ]
        if not markers:
            return {**state, "paused_count": 0}
        symbols = sorted(json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read())["symbol"] for k in markers)
        items = [{"symbol": s} for s in symbols]
        s3.put_object(Bucket=bucket, Key=items_key, Body=json.dumps(items).encode(), ContentType="application/json")
        for start in range(0, len(markers), 1000):
            chunk = [{"Key": k} for k in markers[start : start + 1000]]
            s3.delete_objects(Bucket=bucket, Delete={"Objects": chunk, "Quiet": True})
    return {**state, "items_key": items_key, "paused_count": len(items), "login_round": login_round}
