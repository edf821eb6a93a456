"""Dead letters: one JSON object per symbol-day whose ingest failed for good, at the seed's errors path."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime

from pricefeed.errors import InvalidInput
from pricefeed.istime import parse_date, utcnow
from pricefeed.lake import paths
from pricefeed.lake.envelope import iso_utc
from pricefeed.symbol import Symbol

_ATTEMPT = re.compile(r"^attempt (\d+): ")
_MAX_MESSAGE = 2000


@dataclass(frozen=True)
class Failure:
    """Why an item failed for good: the error's name, its message, and how many times the ingest ran
    (``0``: never asked, as for a symbol Fyers does not know; ``None``: not known)."""

    error_type: str
    message: str
    attempts: int | None


def with_attempt(message: str, attempt: int) -> str:
    """The ingest's error message as it leaves the Lambda: Step Functions passes a failed Task's error name and
    message to the Catch and nothing else, so the attempt number travels in front of the message."""
    return f"attempt {attempt}: {message}"


def failure_from_catch(error: object) -> Failure:
    """The edge: a Catch's ``{"Error", "Cause"}`` (Cause may be a Lambda error payload whose message carries
    :func:`with_attempt`'s prefix) as a :class:`Failure`."""
    if not isinstance(error, dict):
        return Failure("Unknown", "no error details were passed", None)
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
    return Failure(error_type, message[:_MAX_MESSAGE], attempts)


def reason(letter: dict, limit: int) -> str:
    """A dead letter's message without the operation in front of it (``history: HTTP 429`` → ``HTTP 429``)."""
    return str(letter.get("error_message", "")).split(": ", 1)[-1][:limit]


def record_failure(event: object, *, s3, raw_bucket: str, now: datetime | None = None) -> dict:
    """RecordFailure's event (the failed Map item with the Catch's ``error``) → its dead letter; returns
    ``{"dead_letter_key"}``."""
    if not isinstance(event, dict) or not isinstance(event.get("symbol"), str):
        raise InvalidInput("failure event needs a 'symbol' string")
    symbol = Symbol.parse(event["symbol"])
    asked = {name: parse_date(event[name], what=f"failure event '{name}'") for name in ("from", "to")
             if event.get(name) is not None}
    key = write_dead_letter(
        s3, raw_bucket, symbol=symbol, trading_date=parse_date(event.get("date"), what="failure event 'date'"),
        failure=failure_from_catch(event.get("error")), run_id=event.get("run_id", ""), asked=asked, now=now,
    )
    return {"dead_letter_key": key}


def write_dead_letter(
    s3, raw_bucket: str, *, symbol: Symbol, trading_date: date, failure: Failure, run_id: object = "",
    asked: dict[str, date] | None = None, now: datetime | None = None,
) -> str:
    """Write one dead letter (filed under ``trading_date``; ``asked``: the ``from``/``to`` dates the item asked
    for) and, for a run, the run's note of it; returns the letter's key. No stack trace is ever kept."""
    failed_at = now or utcnow()
    letter = {
        "symbol": str(symbol),
        "trading_date": trading_date.isoformat(),
        "run_id": run_id,
        "error_type": failure.error_type,
        "error_message": failure.message[:_MAX_MESSAGE],
        "attempts": failure.attempts,
        "failed_at": iso_utc(failed_at),
        "input": {"symbol": str(symbol), "date": trading_date.isoformat(), "run_id": run_id,
                  **{name: value.isoformat() for name, value in (asked or {}).items()}},
    }
    key = paths.dead_letter_key(symbol, trading_date, failed_at)
    s3.put_object(
        Bucket=raw_bucket, Key=key, Body=json.dumps(letter, indent=1).encode(), ContentType="application/json"
    )
    if isinstance(run_id, str) and run_id and "/" not in run_id:  # after the letter: a marker's letter exists
        marker = {"symbol": str(symbol), "dead_letter_key": key, "error_type": failure.error_type,
                  "attempts": failure.attempts}
        s3.put_object(
            Bucket=raw_bucket,
            Key=paths.RunKeys(run_id).failed_marker(symbol),
            Body=json.dumps(marker).encode(),
            ContentType="application/json",
        )
    return key
