"""Split a date range into the request windows Fyers accepts for minute history."""

from __future__ import annotations

from datetime import date, timedelta

from pricefeed.errors import InvalidInput

#: The first date Fyers serves minute candles for.
MINUTE_HISTORY_START = date(2017, 7, 3)
#: Fyers rejects minute-resolution requests spanning more than this many days ("Invalid input").
MAX_MINUTE_RANGE_DAYS = 100


def minute_chunks(
    range_from: date, range_to: date, *, max_days: int = MAX_MINUTE_RANGE_DAYS
) -> list[tuple[date, date]]:
    """The fewest inclusive ``(first, last)`` windows of at most ``max_days`` days covering the range.

    The range is clamped to start no earlier than 2017-07-03 (Fyers has no older minute data), so a
    range ending before that date gives ``[]``. Raises ``InvalidInput`` if ``range_from > range_to``
    or ``max_days < 1``.
    """
    if range_from > range_to:
        raise InvalidInput(f"range_from {range_from} is after range_to {range_to}")
    if max_days < 1:
        raise InvalidInput(f"max_days must be at least 1, got {max_days}")
    if range_to < MINUTE_HISTORY_START:
        return []
    start = max(range_from, MINUTE_HISTORY_START)
    step = timedelta(days=max_days)
    chunks: list[tuple[date, date]] = []
    while start <= range_to:
        last = min(start + step - timedelta(days=1), range_to)
        chunks.append((start, last))
        start = last + timedelta(days=1)
    return chunks
