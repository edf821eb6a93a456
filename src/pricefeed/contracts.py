"""Derivative contracts from their Fyers symbols: which instruments carry open interest, and which have expired.

Fyers' formats (``shared/reference``): futures ``NSE:NIFTY20OCTFUT`` (``<yy><MON>FUT``), monthly options
``NSE:NIFTY20OCT11000CE``, weekly options ``NSE:NIFTY20O0811000CE`` (``<yy><M><dd>``, M = 1-9, O, N, D),
commodities ``MCX:CRUDEOIL20OCTFUT``. ``/data/history`` serves open interest (``oi_flag=1``) for these, and no
history at all for an expired contract: the plan dead-letters one without spending a request.
A monthly contract's name gives its month, not its day: it counts as expired once that month is over (within its
month it is left to the symbol master and Fyers).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

from pricefeed.symbol import Symbol

_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_WEEK_MONTHS = {**{str(i): i for i in range(1, 10)}, "O": 10, "N": 11, "D": 12}
# <underlying><yy><MON>FUT | <underlying><yy><MON><strike>CE/PE | <underlying><yy><M><dd><strike>CE/PE
_STRIKE = r"\d+(?:\.\d+)?"
_MONTHLY = re.compile(rf"^(?P<under>[A-Z&-]+?)(?P<yy>\d{{2}})(?P<mon>[A-Z]{{3}})(?:FUT|{_STRIKE}(?:CE|PE))$")
_WEEKLY = re.compile(rf"^(?P<under>[A-Z&-]+?)(?P<yy>\d{{2}})(?P<m>[1-9OND])(?P<dd>\d{{2}}){_STRIKE}(?:CE|PE)$")


@dataclass(frozen=True)
class Contract:
    """A derivative's expiry as its symbol tells it: ``expiry`` the exact date (weekly) or the month's last day
    (monthly: ``exact`` False)."""

    underlying: str
    expiry: date
    exact: bool

    def describe(self) -> str:
        return self.expiry.isoformat() if self.exact else self.expiry.strftime("%b %Y")


def contract_of(symbol: Symbol) -> Contract | None:
    """The contract ``symbol`` names, or ``None`` for a cash instrument (or a name this module cannot read)."""
    name = symbol.name.upper()
    if (found := _WEEKLY.match(name)) is not None:
        year, month, day = 2000 + int(found["yy"]), _WEEK_MONTHS[found["m"]], int(found["dd"])
        try:
            return Contract(found["under"], date(year, month, day), True)
        except ValueError:
            pass  # not a date: perhaps a monthly option whose strike starts with these digits
    if (found := _MONTHLY.match(name)) is not None and found["mon"] in _MONTHS:
        year, month = 2000 + int(found["yy"]), _MONTHS[found["mon"]]
        return Contract(found["under"], date(year, month, calendar.monthrange(year, month)[1]), False)
    return None


def carries_open_interest(symbol: Symbol) -> bool:
    """Whether Fyers answers open interest for ``symbol`` (futures and options, every MCX instrument)."""
    return symbol.exchange.upper() == "MCX" or contract_of(symbol) is not None


def expired(symbol: Symbol, today: date) -> str | None:
    """Why Fyers serves no history for ``symbol`` (an expired contract) on the IST date ``today``, or ``None``."""
    contract = contract_of(symbol)
    if contract is None or contract.expiry >= today:
        return None
    when = f"on {contract.describe()}" if contract.exact else f"in {contract.describe()}"
    return f"is a contract that expired {when}: Fyers serves no history for expired contracts (take it off the list)"
