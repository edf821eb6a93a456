"""Each instrument's own trading sessions: the Fyers symbol master's session column, and the rules that turn it
into the sessions of one IST date (pure; no I/O, no calendar package).

Column 6 of every master row names the instrument's sessions: ``0915-1530|1815-1915:`` (NSE cash and F&O),
``0900-1700|1815-1915:`` (currency), ``0900-2330|1815-1915:`` (MCX and NSE commodities), ``0915-1540:`` (seen on
BSE options). Read here as (:func:`parse_sessions`):

- the ranges before the first ``|`` are the instrument's regular sessions, every trading day (several ranges
  separated by ``,`` or ``;`` are several sessions: a segment with a break);
- what follows ``|`` is not a daily session. Every segment's rows carry the same ``1815-1915``, an evening NSE
  cash never trades; it matches the Muhurat slot of 2019-2023, so it is read as the special-session slot, and
  the special sessions themselves come from the dated table (``pricefeed.session_hours.SPECIAL_SESSIONS``);
- ``HHMM`` or ``HH:MM``, spaces anywhere, a trailing ``:`` or none; an empty, unreadable or backwards range
  (the column moved, or a format not seen yet) means the segment's default (:data:`SEGMENT_HOURS`), never a
  guess from a wrong column.

Which dates a session is held (:func:`day_windows`) depends on the segment: NSE/BSE cash, F&O and currency trade
on the NSE trading days (``pricefeed.trading_calendar``). The commodity segments (MCX, NSE commodities) trade
Monday to Friday: their evening session (from 17:00) goes on through most NSE holidays, with the morning closed,
and they are closed all day on the national holidays and Christmas (:data:`COMMODITY_CLOSED`) and on Good Friday.
Their close follows US daylight saving time: 23:30 while it is in force, 23:55 otherwise. The master shows the
close of the day it was published; a date of the other season gets the other close (:data:`SEASONAL_CLOSES`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pricefeed.symbol import Symbol

Window = tuple[int, int]  # (open, close) minutes after 00:00 IST, close exclusive


def _hhmm(text: str) -> tuple[Window, ...]:
    return tuple((int(a[:2]) * 60 + int(a[2:]), int(b[:2]) * 60 + int(b[2:])) for a, b in
                 (part.split("-") for part in text.split(",")))


#: Each segment's regular sessions when its master row gives none that can be read.
SEGMENT_HOURS: dict[str, tuple[Window, ...]] = {
    "NSE_CM": _hhmm("0915-1530"),
    "NSE_FO": _hhmm("0915-1530"),
    "BSE_CM": _hhmm("0915-1530"),
    "BSE_FO": _hhmm("0915-1530"),
    "NSE_CD": _hhmm("0900-1700"),
    "NSE_COM": _hhmm("0900-2330"),
    "MCX_COM": _hhmm("0900-2330"),
}
COMMODITY_SEGMENTS = frozenset({"MCX_COM", "NSE_COM"})
#: (month, day) a commodity segment is closed all day, evening included; Good Friday too (computed).
COMMODITY_CLOSED = frozenset({(1, 26), (8, 15), (10, 2), (12, 25)})
#: On a weekday the NSE is closed, a commodity segment holds only its sessions from this minute (17:00 IST) on.
EVENING_FROM = 17 * 60
#: A commodity close at either of these minutes is seasonal: 23:30 during US daylight saving time, 23:55 outside it.
SEASONAL_CLOSES = (23 * 60 + 30, 23 * 60 + 55)
_NEW_YORK = ZoneInfo("America/New_York")
#: Every segment file Fyers publishes, in the order plans list them.
SEGMENTS = ("NSE_CM", "NSE_FO", "NSE_CD", "NSE_COM", "BSE_CM", "BSE_FO", "MCX_COM")
_RANGE = re.compile(r"^(\d{1,2}):?(\d{2})-(\d{1,2}):?(\d{2})$")
# Futures end in <yy><MON>FUT; options in <strike>CE/PE (monthly NIFTY20OCT11000CE, weekly NIFTY20O0811000CE).
_DERIVATIVE = re.compile(r"(?:\d{2}[A-Z]{3}FUT|\d(?:CE|PE))$")
_CURRENCY_PAIR = re.compile(r"(?:USD|EUR|GBP|JPY|AUD|CAD|CHF|CNH|SGD|AED)(?:INR|USD|JPY)\d")


def parse_sessions(text: object) -> tuple[Window, ...] | None:
    """The regular sessions a master's session cell names (module docstring), sorted; ``None`` if it names none."""
    if not isinstance(text, str):
        return None
    head = re.sub(r"\s+", "", text).split("|", 1)[0].rstrip(":")
    windows = []
    for part in filter(None, re.split(r"[,;]", head)):
        found = _RANGE.match(part)
        if found is None:
            return None
        oh, om, ch, cm = map(int, found.groups())
        opens, closes = oh * 60 + om, ch * 60 + cm
        if om > 59 or cm > 59 or not 0 <= opens < closes <= 24 * 60:
            return None  # backwards, past midnight or not a time: not a session this project can place on a date
        windows.append((opens, closes))
    return tuple(sorted(windows)) or None


def segments_of(symbol: Symbol) -> tuple[str, ...]:
    """The master file(s) that would list ``symbol``; ``()`` for an exchange Fyers has no master for."""
    exchange, name = symbol.exchange.upper(), symbol.name.upper()
    derivative = bool(_DERIVATIVE.search(name))
    if exchange == "NSE":
        if not derivative:
            return ("NSE_CM",)
        return ("NSE_FO", "NSE_CD") if _CURRENCY_PAIR.match(name) else ("NSE_FO", "NSE_COM")
    if exchange == "BSE":
        return ("BSE_FO",) if derivative else ("BSE_CM",)
    if exchange == "MCX":
        return ("MCX_COM",)
    return ()


def segments_for(symbols: Iterable[Symbol]) -> list[str]:
    """Every master file a ticker list needs, in :data:`SEGMENTS` order (each once)."""
    needed = {segment for symbol in symbols for segment in segments_of(symbol)}
    return [segment for segment in SEGMENTS if segment in needed]


def segment_guess(symbol: Symbol) -> str | None:
    """The master segment ``symbol`` most likely belongs to, from its name alone (``None``: no master lists it):
    the currency file for a currency pair, else the first file that may list it."""
    found = segments_of(symbol)
    return found[-1] if "NSE_CD" in found else (found[0] if found else None)


@dataclass(frozen=True)
class Hours:
    """An instrument's regular sessions and the segment whose holiday rules apply to them."""

    segment: str | None
    windows: tuple[Window, ...]
    source: str = "default"  # "master": read from the symbol master; "default": the segment's usual hours

    @classmethod
    def of(cls, symbol: Symbol, segment: str | None = None, column: object = None) -> Hours:
        """From a master row (its ``segment`` file and session ``column``), or the segment's defaults."""
        segment = segment if segment in SEGMENT_HOURS else segment_guess(symbol)
        windows = parse_sessions(column)
        if windows is not None:
            return cls(segment, windows, "master")
        return cls(segment, SEGMENT_HOURS.get(segment or "", SEGMENT_HOURS["NSE_CM"]))

    @property
    def commodity(self) -> bool:
        return self.segment in COMMODITY_SEGMENTS

    def encode(self) -> str:
        """``"MCX_COM 0900-2330 master"``: one short string for JSON documents and Spark closures."""
        spans = ",".join(f"{o // 60:02d}{o % 60:02d}-{c // 60:02d}{c % 60:02d}" for o, c in self.windows)
        return f"{self.segment or '-'} {spans} {self.source}"

    @classmethod
    def decode(cls, text: str) -> Hours:
        segment, spans, source = text.split(" ")
        windows = parse_sessions(spans)
        if windows is None:
            raise ValueError(f"hours {text!r} name no session")
        return cls(None if segment == "-" else segment, windows, source)


def day_windows(
    hours: Hours, day: date, *, exchange_open: bool, special: tuple[Window, ...] = ()
) -> tuple[Window, ...]:
    """The sessions ``hours`` trade on IST ``day`` (sorted, merged where they overlap).

    ``exchange_open``: the NSE/BSE calendar has its regular session that day; ``special``: that day's special
    sessions (Muhurat, a budget Saturday). A live session on a holiday is held by cash and F&O only; commodity
    segments follow their own rules (module docstring), and on a Muhurat day hold only the special session.
    """
    muhurat = [w for w in special if w not in SEGMENT_HOURS["NSE_CM"]]
    if not hours.commodity:
        windows = list(hours.windows) if exchange_open else []
        # a live session on a holiday (the budget Saturday) is the equity segments'; Muhurat trading is every one's
        return _merged(windows + (muhurat if hours.segment == "NSE_CD" else list(special)))
    if muhurat:
        return _merged(muhurat)
    if day.weekday() >= 5 or (day.month, day.day) in COMMODITY_CLOSED or day == good_friday(day.year):
        return ()
    close = SEASONAL_CLOSES[0] if us_daylight_saving(day) else SEASONAL_CLOSES[1]
    windows = [(o, close if c in SEASONAL_CLOSES else c) for o, c in hours.windows]
    if not exchange_open:
        windows = [(max(o, EVENING_FROM), c) for o, c in windows if c > EVENING_FROM]
    return _merged(windows)


def _merged(windows: list[Window]) -> tuple[Window, ...]:
    out: list[Window] = []
    for o, c in sorted(windows):
        if out and o <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], c))
        else:
            out.append((o, c))
    return tuple(out)


def us_daylight_saving(day: date) -> bool:
    """Whether US daylight saving time is in force on ``day`` (at noon IST, when MCX opens its session)."""
    return bool(datetime.combine(day, time(6, 30)).replace(tzinfo=ZoneInfo("UTC")).astimezone(_NEW_YORK).dst())


def good_friday(year: int) -> date:
    """Good Friday of ``year`` (Gregorian Easter, the anonymous algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1) - timedelta(days=2)
