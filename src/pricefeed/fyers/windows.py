"""Split a range into the request windows Fyers accepts for minute history.

Fyers takes at most 100 days per minute-resolution request and has no minute data before
2017-07-03. :func:`request_windows` works on epoch seconds (what the ingest asks for).
"""

from __future__ import annotations

from datetime import date, timedelta

from pricefeed.errors import InvalidInput
from pricefeed.istime import MINUTE_HISTORY_START, ist_midnight_epoch

#: 00:00 IST of :data:`MINUTE_HISTORY_START`: nothing earlier is ever asked.
MINUTE_HISTORY_START_EPOCH = ist_midnight_epoch(MINUTE_HISTORY_START)
#: Fyers rejects minute-resolution requests spanning more than this many days ("Invalid input").
MAX_MINUTE_RANGE_DAYS = 100

_DAY_S = 86_400


def request_windows(range_from: int, range_to: int, *, max_days: int = MAX_MINUTE_RANGE_DAYS) -> list[tuple[int, int]]:
    """The fewest inclusive epoch-second windows ``(first, last)`` covering ``[range_from, range_to]``.

    Windows tile the range exactly (no gap, no overlap); each spans at most ``max_days`` IST calendar
    dates, so ``last - first < max_days * 86400``; every window after the first starts at 00:00 IST.
    The range is clamped to start no earlier than 2017-07-03 00:00 IST, so a range ending before that
    gives ``[]``. ``InvalidInput`` if ``range_from > range_to`` or ``max_days < 1``.
    """
    if range_from > range_to:
        raise InvalidInput(f"range_from {range_from} is after range_to {range_to}")
    if max_days < 1:
        raise InvalidInput(f"max_days must be at least 1, got {max_days}")
    start = max(int(range_from), MINUTE_HISTORY_START_EPOCH)
    range_to = int(range_to)
    windows: list[tuple[int, int]] = []
    while start <= range_to:
        # The window ends just before 00:00 IST of the date max_days after its first IST date.
        last = min(_ist_midnight_at_or_before(start) + max_days * _DAY_S - 1, range_to)
        windows.append((start, last))
        start = last + 1
    return windows


def ist_date_of(epoch: int) -> date:
    """The IST calendar date of an epoch second (IST is UTC+05:30 all year: plain arithmetic)."""
    return date(1970, 1, 1) + timedelta(days=(int(epoch) + 19_800) // _DAY_S)


def _ist_midnight_at_or_before(epoch: int) -> int:
    return ist_midnight_epoch(ist_date_of(epoch))
