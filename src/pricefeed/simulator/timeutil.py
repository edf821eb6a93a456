"""IST (UTC+05:30, no DST) arithmetic on UTC epoch seconds; the host's TZ never matters."""

from __future__ import annotations

import datetime as dt

IST_OFFSET = 19_800  # seconds east of UTC
DAY = 86_400
SESSION_OPEN_MIN = 9 * 60 + 15  # 09:15 IST, minutes after IST midnight
SESSION_MINUTES = 375  # 09:15 … 15:29 IST
HISTORY_START = dt.date(2017, 7, 3)  # first date Fyers has minute history for

_EPOCH_DATE = dt.date(1970, 1, 1)


def ist_date(epoch: float) -> dt.date:
    """The IST calendar date of an instant."""
    return _EPOCH_DATE + dt.timedelta(days=int((epoch + IST_OFFSET) // DAY))


def ist_midnight(day: dt.date) -> int:
    """Epoch seconds of 00:00 IST on ``day``."""
    return (day - _EPOCH_DATE).days * DAY - IST_OFFSET


def utc_midnight(day: dt.date) -> int:
    """Epoch seconds of 00:00 UTC on ``day`` (how Fyers stamps daily candles)."""
    return (day - _EPOCH_DATE).days * DAY


def session_open(day: dt.date) -> int:
    """Epoch seconds of 09:15 IST on ``day``."""
    return ist_midnight(day) + SESSION_OPEN_MIN * 60


def next_ist_time(epoch: float, hour: int) -> int:
    """The first ``hour``:00 IST strictly after ``epoch``."""
    day = ist_date(epoch)
    at = ist_midnight(day) + hour * 3600
    return at if at > epoch else at + DAY
