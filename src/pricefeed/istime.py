"""IST time rules: everything is computed in Asia/Kolkata from UTC epochs; the host TZ never matters."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pricefeed.errors import InvalidInput

IST = ZoneInfo("Asia/Kolkata")
# Fyers keeps no minute history before this IST date.
MINUTE_HISTORY_START = date(2017, 7, 3)
# A YYYY-MM-DD date in ASCII digits (``\d`` also takes other scripts' digits).
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def utcnow() -> datetime:
    return datetime.now(UTC)


def ist_today(now: datetime | None = None) -> date:
    """The IST calendar date at ``now`` (a scheduled run's "today" is IST, not UTC)."""
    return (now or utcnow()).astimezone(IST).date()


def ist_midnight_epoch(day: date) -> int:
    return int(datetime.combine(day, time(0, 0), tzinfo=IST).timestamp())


def ist_day_range(day: date) -> tuple[int, int]:
    """Epoch seconds of the first and last second of an IST calendar day."""
    start = ist_midnight_epoch(day)
    return start, start + 86_400 - 1


def parse_date(value: object, *, what: str = "date") -> date:
    """A ``YYYY-MM-DD`` string → date; anything else is an InvalidInput naming ``what``."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a YYYY-MM-DD string, got {type(value).__name__}")
    if not ISO_DATE.fullmatch(value):
        raise InvalidInput(f"{what} must be a YYYY-MM-DD string, got {value[:40]!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:  # 2026-02-30: the form is right, the day does not exist
        raise InvalidInput(f"{what} {value} is not a date on the calendar ({exc})") from None


def last_closed_minute_epoch(now: datetime) -> int:
    """The last second of the last fully ended minute: a ``range_to`` that never includes a forming candle."""
    return int(now.timestamp()) // 60 * 60 - 1


def days(start: date, end: date) -> list[date]:
    if end < start:
        raise InvalidInput(f"date range ends ({end}) before it starts ({start})")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


SESSION_CLOSE = time(15, 30)


def last_closed_session(now: datetime | None = None) -> date:
    """The latest weekday whose 15:30 IST close has passed (exchange holidays are not known here)."""
    local = (now or utcnow()).astimezone(IST)
    day = local.date() if local.time() >= SESSION_CLOSE else local.date() - timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day
