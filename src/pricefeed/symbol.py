"""A Fyers symbol, ``EXCHANGE:NAME`` (``NSE:SBIN-EQ``), as a value: parsed once where it enters (the ticker
list, the execution input and Map items, the job's documents, S3 keys), then passed around whole.

``str(symbol)`` is Fyers' spelling, what JSON documents, the history request and the state table hold. The
name is kept verbatim (``M&M-EQ`` stays ``M&M-EQ``) and must be usable in a Hive partition path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pricefeed.errors import InvalidInput

# Printable ASCII without whitespace and without the characters that break a Hive partition path
# ("/" and "=") or the EXCH:SYM split (":"). Exchanges are plain codes (NSE, BSE, MCX, NFO, ...).
_EXCHANGE = re.compile(r"[A-Za-z0-9_]+")
_NAME = re.compile(r"[!-~]+")
_FORBIDDEN_IN_NAME = frozenset("/=:\\")


@dataclass(frozen=True, order=True)
class Symbol:
    """One instrument: its exchange code and its name on that exchange (``Symbol("NSE", "SBIN-EQ")``)."""

    exchange: str
    name: str

    def __post_init__(self) -> None:
        text = f"{self.exchange}:{self.name}"
        if not isinstance(self.exchange, str) or not _EXCHANGE.fullmatch(self.exchange):
            raise InvalidInput(f"symbol {text!r} has an invalid exchange {self.exchange!r}")
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name) or _FORBIDDEN_IN_NAME & set(self.name):
            raise InvalidInput(f"symbol {text!r} has an invalid name {self.name!r}")

    def __str__(self) -> str:
        return f"{self.exchange}:{self.name}"

    @classmethod
    def parse(cls, value: object) -> Symbol:
        """``"NSE:SBIN-EQ"`` -> ``Symbol("NSE", "SBIN-EQ")``; ``InvalidInput`` naming the value if malformed."""
        if isinstance(value, Symbol):
            return value
        if not isinstance(value, str) or value.count(":") != 1:
            raise InvalidInput(f"symbol {value!r} is not of the form EXCHANGE:SYMBOL")
        exchange, name = value.split(":")
        return cls(exchange, name)


def normalize_symbol(value: str) -> str:
    """The canonical spelling of a ticker: surrounding whitespace dropped, upper case (as Fyers writes them).
    Non-ASCII text is left as it is (some non-ASCII letters upper-case to ASCII ones), so it stays invalid."""
    value = value.strip()
    return value.upper() if value.isascii() else value
