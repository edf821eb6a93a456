"""Exchange sessions of an IST trading date: which minutes a market was open, from a maintained calendar.

NSE and BSE share their holidays and their 09:15-15:30 IST session; the holidays come from the
``exchange-calendars`` package (calendar ``XBOM``, BSE), which is maintained with each year's exchange
circulars. Sessions the package does not know (Diwali Muhurat trading, a live session on a weekend
budget day) come from :data:`SPECIAL_SESSIONS`, a small table kept in :mod:`pricefeed.session_hours`; pass
your own mapping to :class:`TradingCalendar` to add or correct one. A special session is added to the day's regular
sessions (on a holiday or weekend it is the only one).

Each instrument trades its own sessions (``pricefeed.market_hours``): the symbol master's session column read
into :class:`~pricefeed.market_hours.Hours` (given per ticker to :meth:`TradingCalendar.with_hours`), else its
segment's usual hours (currency 09:00-17:00, MCX 09:00-23:30/23:55 on its own holiday rules). Pass a
:class:`~pricefeed.symbol.Symbol` to get an instrument's sessions; an exchange code alone means that exchange's cash
hours, and an exchange Fyers publishes no master for keeps 09:15-15:30 on every date, as before the calendar.
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
from pricefeed.istime import IST, ist_midnight_epoch
from pricefeed.market_hours import Hours, day_windows
from pricefeed.session_hours import CALENDAR_EXCHANGES, REGULAR_SESSION, SPECIAL_SESSIONS
from pricefeed.symbol import Symbol

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
        self._cache: dict[tuple[Hours | str, date], tuple[tuple[int, int], ...]] = {}
        self._minutes: dict[tuple[tuple[int, int], ...], np.ndarray] = {}
        self._hours: Mapping[str, Hours] = {}

    def with_hours(self, hours: Mapping[str, Hours]) -> TradingCalendar:
        """A calendar with the same special sessions (and holidays) whose instruments in ``hours`` (ticker ->
        :class:`~pricefeed.market_hours.Hours`, from the symbol master) trade those sessions."""
        other = TradingCalendar(self._special)
        other._known, other._hours = self._package_sessions(), dict(hours)  # the package is read once a process
        return other

    def hours(self, symbol: Symbol) -> Hours:
        """``symbol``'s sessions: as the symbol master gave them, else its segment's usual hours."""
        return self._hours.get(str(symbol)) or Hours.of(symbol)

    def session_minutes(
        self, trading_date: date, instrument: str | Symbol = "NSE", *, hours: Hours | None = None
    ) -> tuple[tuple[int, int], ...]:
        """The day's sessions of ``instrument`` (a Symbol, or an exchange code for its cash hours) as ``(open, close)``
        UTC epoch seconds, close exclusive, sorted; empty if closed. ``hours`` overrides the instrument's."""
        if not isinstance(trading_date, date) or isinstance(trading_date, datetime):
            raise InvalidInput(f"trading_date {trading_date!r} must be a datetime.date")
        if hours is not None or isinstance(instrument, Symbol):
            kind: Hours | str = hours or self.hours(instrument)
        else:
            kind = instrument if instrument in CALENDAR_EXCHANGES or instrument == "MCX" else "*"
        key = (kind, trading_date)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._sessions(kind, trading_date)
        return found

    def special_sessions(self, trading_date: date, instrument: str | Symbol = "NSE") -> tuple[tuple[int, int], ...]:
        """The day's special sessions other than a regular one (Muhurat trading), as :meth:`session_minutes` gives
        sessions; empty on most days and for exchanges the calendar does not model."""
        exchange = instrument.exchange if isinstance(instrument, Symbol) else instrument
        if exchange not in CALENDAR_EXCHANGES and exchange != "MCX":
            return ()
        return tuple(_epochs(trading_date, w) for w in self._special.get(trading_date, ()) if w != REGULAR_SESSION)

    def is_trading_day(self, trading_date: date, instrument: str | Symbol = "NSE") -> bool:
        """True when the instrument (or exchange) had at least one session on ``trading_date`` (IST)."""
        return bool(self.session_minutes(trading_date, instrument))

    def minute_starts(
        self, trading_date: date, instrument: str | Symbol = "NSE", *, hours: Hours | None = None
    ) -> np.ndarray:
        """Every session minute's start (int64 UTC epoch seconds, ascending, read-only): what a full day stores."""
        sessions = self.session_minutes(trading_date, instrument, hours=hours)
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

    def _sessions(self, kind: Hours | str, day: date) -> tuple[tuple[int, int], ...]:
        if kind == "*":
            return (_epochs(day, REGULAR_SESSION),)
        if not isinstance(kind, Hours):
            kind = Hours.of(Symbol(kind, "CASH-EQ" if kind != "MCX" else "CASH"))  # the exchange's cash hours
        special = tuple((o.hour * 60 + o.minute, c.hour * 60 + c.minute) for o, c in self._special.get(day, ()))
        midnight = ist_midnight_epoch(day)
        windows = day_windows(kind, day, exchange_open=self._regular_day(day), special=special)
        return tuple((midnight + o * 60, midnight + c * 60) for o, c in windows)

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
