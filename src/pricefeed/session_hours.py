"""Exchange session hours that need no calendar package: NSE/BSE's regular session, the special sessions known
so far, and which minutes *may* trade on a date whose holidays are not known (:func:`may_trade`: the Lambda side
has no exchange calendar). :mod:`pricefeed.trading_calendar` adds the holidays.

Each instrument's own sessions (currency, commodities) are in :mod:`pricefeed.market_hours`; here they count as
"any weekday minute".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta

from pricefeed.errors import InvalidInput
from pricefeed.istime import IST, ist_midnight_epoch

REGULAR_SESSION = (time(9, 15), time(15, 30))
CALENDAR_EXCHANGES = frozenset({"NSE", "BSE"})

# Muhurat trading (the "normal market" window, not the pre-open), from the NSE/BSE circulars of each year.
# Years whose exact times we could not confirm (2017, 2018, 2026) are left out rather than guessed.
SPECIAL_SESSIONS: Mapping[date, tuple[tuple[time, time], ...]] = {
    date(2019, 10, 27): ((time(18, 15), time(19, 15)),),  # Muhurat, Sunday
    date(2020, 11, 14): ((time(18, 15), time(19, 15)),),  # Muhurat, Saturday
    date(2021, 11, 4): ((time(18, 15), time(19, 15)),),  # Muhurat
    date(2022, 10, 24): ((time(18, 15), time(19, 15)),),  # Muhurat
    date(2023, 11, 12): ((time(18, 15), time(19, 15)),),  # Muhurat, Sunday
    date(2024, 11, 1): ((time(18, 0), time(19, 0)),),  # Muhurat
    date(2025, 2, 1): (REGULAR_SESSION,),  # Union Budget, live session on a Saturday (NSE circular)
    date(2025, 10, 21): ((time(13, 45), time(14, 45)),),  # Muhurat, held in the afternoon that year
}
#: Fyers' history stamps Muhurat sessions up to this late, so a special session may have candles this much longer.
SPECIAL_STAMPED_LATE = timedelta(minutes=15)


def trade_hours_key(symbol) -> str:
    """What :func:`may_trade` takes for ``symbol``: its exchange for NSE/BSE cash and F&O, ``"*"`` (any weekday
    minute) for currency and commodity contracts, whose sessions run past 15:30 (``pricefeed.market_hours``)."""
    from pricefeed.market_hours import Hours

    return symbol.exchange if Hours.of(symbol).segment in ("NSE_CM", "NSE_FO", "BSE_CM", "BSE_FO") else "*"


def may_trade(first: int, last: int, exchange: str) -> tuple[int, int] | None:
    """The part of seconds ``first..last`` from its first to its last minute that may be in a session (whole
    minutes), or ``None`` when no minute of it may be: NSE/BSE weekdays 09:15-15:30 IST and the special sessions
    (holidays unknown, so they may trade); other exchanges any weekday minute."""
    if first > last:
        return None
    if exchange not in CALENDAR_EXCHANGES:
        start, end = _weekday_bounds(first, last)
        return (start, end) if start <= end else None
    spans = list(_session_spans(first, last))
    if not spans:
        return None
    return spans[0][0], spans[-1][1]


def _weekday_bounds(first: int, last: int) -> tuple[int, int]:
    day = _ist_date(first)
    while day.weekday() >= 5:
        day += timedelta(days=1)
        first = max(first, ist_midnight_epoch(day))
    day = _ist_date(last)
    while day.weekday() >= 5:
        last = min(last, ist_midnight_epoch(day) - 1)
        day -= timedelta(days=1)
    return floor_minute(first), floor_minute(last) + 59


def _session_spans(first: int, last: int) -> Iterable[tuple[int, int]]:
    """The minutes that may trade (clipped to ``first..last``) of each IST date in the range, in order."""
    day, end_day = _ist_date(first), _ist_date(last)
    if (end_day - day).days > 3660:
        raise InvalidInput(f"stretch {first}..{last} spans more than ten years")
    while day <= end_day:
        windows = [(o, _later(c, SPECIAL_STAMPED_LATE)) for o, c in SPECIAL_SESSIONS.get(day, ())]
        if day.weekday() < 5:
            windows.append(REGULAR_SESSION)
        for opens, closes in sorted(windows):
            o = int(datetime.combine(day, opens, tzinfo=IST).timestamp())
            c = int(datetime.combine(day, closes, tzinfo=IST).timestamp()) - 1
            lo, hi = max(o, first), min(c, last)
            if lo <= hi:
                yield floor_minute(lo), floor_minute(hi) + 59
        day += timedelta(days=1)


def _later(moment: time, by: timedelta) -> time:
    return (datetime.combine(date(2000, 1, 1), moment) + by).time()


def _ist_date(epoch: int) -> date:
    return date(1970, 1, 1) + timedelta(days=(int(epoch) + 19_800) // 86_400)


def floor_minute(epoch: float) -> int:
    """The start (epoch seconds) of the minute holding ``epoch``."""
    return int(epoch // 60 * 60)
