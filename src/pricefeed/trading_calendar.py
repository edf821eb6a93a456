"""Exchange sessions of an IST trading date: which minutes a market was open, from a maintained calendar.

NSE and BSE share their holidays and their 09:15-15:30 IST session; the holidays come from the
``exchange-calendars`` package (calendar ``XBOM``, BSE), which is maintained with each year's exchange
circulars. Sessions the package does not know (Diwali Muhurat trading, a live session on a weekend
budget day) come from :data:`SPECIAL_SESSIONS`, a small table kept in :mod:`pricefeed.session_hours`; pass
your own mapping to :class:`TradingCalendar` to add or correct one. A special session is added to the day's regular
sessions (on a holiday or weekend it is the only one).

Other exchanges (MCX, NCDEX, ...) have different hours that this project does not model: they keep
the regular 09:15-15:30 session on every date, weekends and holidays included, as before the calendar.
Dates outside the package's range (it ships holidays about a year ahead) fall back to Monday-Friday
with the regular session; upgrade the package to learn a new year's holidays.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from datetime import date, datetime, time

import numpy as np

from pricefeed.errors import InvalidInput
from pricefeed.istime import IST
from pricefeed.session_hours import CALENDAR_EXCHANGES, REGULAR_SESSION, SPECIAL_SESSIONS

_PACKAGE_CALENDAR = "XBOM"


class TradingCalendar:
    """Sessions per (exchange, IST date); thread-safe, results cached per date.

    ``special_sessions`` replaces :data:`SPECIAL_SESSIONS` (pass ``{**SPECIAL_SESSIONS, d: ...}`` to extend it).
    """

    def __init__(self, special_sessions: Mapping[date, tuple[tuple[time, time], ...]] | None = None):
        self._special = dict(SPECIAL_SESSIONS if special_sessions is None else special_sessions)
        for day, windows in self._special.items():
            if any(not (isinstance(o, time) and isinstance(c, time) and o < c) for o, c in windows):
                raise InvalidInput(f"special session of {day}: {windows!r} must be (open, close) times, open first")
        self._lock = threading.Lock()
        self._known: tuple[date, date, frozenset[date]] | None = None
        self._cache: dict[tuple[str, date], tuple[tuple[int, int], ...]] = {}
        self._minutes: dict[tuple[tuple[int, int], ...], np.ndarray] = {}

    def session_minutes(self, trading_date: date, exchange: str = "NSE") -> tuple[tuple[int, int], ...]:
        """The day's sessions as ``(open, close)`` UTC epoch seconds, close exclusive, sorted; empty if closed."""
        if not isinstance(trading_date, date) or isinstance(trading_date, datetime):
            raise InvalidInput(f"trading_date {trading_date!r} must be a datetime.date")
        key = (exchange if exchange in CALENDAR_EXCHANGES else "*", trading_date)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._sessions(*key)
        return found

    def special_sessions(self, trading_date: date, exchange: str = "NSE") -> tuple[tuple[int, int], ...]:
        """The day's special sessions other than a regular one (Muhurat trading), as :meth:`session_minutes` gives
        sessions; empty on most days and for exchanges the calendar does not model."""
        if exchange not in CALENDAR_EXCHANGES:
            return ()
        return tuple(_epochs(trading_date, w) for w in self._special.get(trading_date, ()) if w != REGULAR_SESSION)

    def is_trading_day(self, trading_date: date, exchange: str = "NSE") -> bool:
        """True when the exchange had at least one session on ``trading_date`` (IST)."""
        return bool(self.session_minutes(trading_date, exchange))

    def minute_starts(self, trading_date: date, exchange: str = "NSE") -> np.ndarray:
        """Every session minute's start (int64 UTC epoch seconds, ascending, read-only): what a full day stores."""
        sessions = self.session_minutes(trading_date, exchange)
        found = self._minutes.get(sessions)
        if found is None:  # the job asks once per symbol-day, for a handful of distinct days
            spans = [np.arange(o, c, 60, dtype=np.int64) for o, c in sessions]
            found = np.unique(np.concatenate(spans)) if spans else np.empty(0, dtype=np.int64)
            found.flags.writeable = False
            self._minutes[sessions] = found
        return found

    def load(self) -> TradingCalendar:
        """Read the package's calendar now (~0.7 s, once per process) rather than at the first look-up;
        for a server that must not stall a request on it. Returns ``self``."""
        self._package_sessions()
        return self

    def _sessions(self, kind: str, day: date) -> tuple[tuple[int, int], ...]:
        if kind == "*":
            return (_epochs(day, REGULAR_SESSION),)
        windows = list(self._special.get(day, ()))
        if self._regular_day(day):
            windows.append(REGULAR_SESSION)
        return tuple(sorted({_epochs(day, w) for w in windows}))

    def _regular_day(self, day: date) -> bool:
        first, last, sessions = self._package_sessions()
        if not first <= day <= last:
            return day.weekday() < 5  # beyond the package's holiday list: see the module docstring
        return day in sessions

    def _package_sessions(self) -> tuple[date, date, frozenset[date]]:
        """The package's session dates, read once: later look-ups are set membership, no pandas."""
        with self._lock:
            if self._known is None:
                import exchange_calendars  # imported late: pandas costs ~0.5 s and only the job needs it

                with warnings.catch_warnings():  # pandas deprecation noise from inside the package
                    warnings.simplefilter("ignore")
                    days = [d.date() for d in exchange_calendars.get_calendar(_PACKAGE_CALENDAR).sessions]
                self._known = (days[0], days[-1], frozenset(days))
            return self._known


def _epochs(day: date, window: tuple[time, time]) -> tuple[int, int]:
    opens, closes = window
    return (
        int(datetime.combine(day, opens, tzinfo=IST).timestamp()),
        int(datetime.combine(day, closes, tzinfo=IST).timestamp()),
    )


DEFAULT_CALENDAR = TradingCalendar()


def session_minutes(trading_date: date, exchange: str = "NSE") -> tuple[tuple[int, int], ...]:
    """:meth:`TradingCalendar.session_minutes` of the default calendar."""
    return DEFAULT_CALENDAR.session_minutes(trading_date, exchange)


def is_trading_day(trading_date: date, exchange: str = "NSE") -> bool:
    """:meth:`TradingCalendar.is_trading_day` of the default calendar."""
    return DEFAULT_CALENDAR.is_trading_day(trading_date, exchange)


def last_closed_trading_day(now: datetime | None = None) -> date:
    """The latest NSE trading date whose regular session has closed (weekends and holidays skipped)."""
    from datetime import timedelta

    from pricefeed.istime import last_closed_session

    day = last_closed_session(now)
    while not is_trading_day(day):
        day -= timedelta(days=1)
    return day
