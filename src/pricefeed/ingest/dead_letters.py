"""Dead letters: one JSON object per symbol-day whose ingest failed for good, at the seed's errors path."""

from __future__ import annotations

import json
import re
from datetime import datetime

from pricefeed.errors import InvalidInput
from pricefeed.istime import parse_date, utcnow
from pricefeed.lake import paths
from pricefeed.lake.envelope import iso_utc
from pricefeed.symbol import split_symbol

_ATTEMPT = re.compile(r"^attempt (\d+): ")
_MAX_MESSAGE = 2000


def describe_error(error: object) -> tuple[str, str, int | None]:
    """(type, message, attempts) from a Catch's ``{"Error", "Cause"}``; Cause may be a Lambda error payload."""
    if not isinstance(error, dict):
        return "Unknown", "no error details were passed", None
    error_type = str(error.get("Error") or "Unknown")
    cause = error.get("Cause")
    message = str(cause or "")
    if isinstance(cause, str):
        try:
            payload = json.loads(cause)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            message = str(payload.get("errorMessage", ""))
            error_type = str(payload.get("errorType") or error_type)
    attempts = None
    match = _ATTEMPT.match(message)
    if match:
        attempts = int(match.group(1))
        message = message[match.end() :]
    return error_type, message[:_MAX_MESSAGE], attempts


def record_failure(event: object, *, s3, raw_bucket: str, now: datetime | None = None) -> dict:
    """Write the dead letter for a failed Map item; returns its key. The stack trace is never kept."""
    if not isinstance(event, dict) or not isinstance(event.get("symbol"), str):
        raise InvalidInput("failure event needs a 'symbol' string")
    symbol = event["symbol"]
    split_symbol(symbol)
    day = parse_date(event.get("date"), what="failure event 'date'")
    error_type, message, attempts = describe_error(event.get("error"))
    failed_at = now or utcnow()
    letter = {
        "symbol": symbol,
        "trading_date": day.isoformat(),
        "run_id": event.get("run_id", ""),
        "error_type": error_type,
        "error_message": message,
        "attempts": attempts,
        "failed_at": iso_utc(failed_at),
        "input": {"symbol": symbol, "date": day.isoformat(), "run_id": event.get("run_id", "")},
    }
    # A range run: the dead letter says which dates the item asked for (it is filed under the last one).
    for name in ("from", "to"):
        if event.get(name) is not None:
            letter["input"][name] = parse_date(event[name], what=f"failure event '{name}'").isoformat()
    key = paths.dead_letter_key(symbol, day, failed_at)
    s3.put_object(
        Bucket=raw_bucket, Key=key, Body=json.dumps(letter, indent=1).encode(), ContentType="application/json"
    )
    run_id = letter["run_id"]
    if isinstance(run_id, str) and run_id and "/" not in run_id:  # after the letter: a marker's letter exists
        marker = {"symbol": symbol, "dead_letter_key": key, "error_type": error_type, "attempts": attempts}
        s3.put_object(
            Bucket=raw_bucket,
            Key=paths.RunKeys(run_id).failed_marker(symbol),
            Body=json.dumps(marker).encode(),
            ContentType="application/json",
        )
    return {"dead_letter_key": key}
