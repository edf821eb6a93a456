"""A Fyers symbol, ``EXCHANGE:NAME`` (``NSE:SBIN-EQ``), as a value: parsed once where it enters (the ticker
list, the execution input and Map items, the job's documents, S3 keys), then passed around whole.

``str(symbol)`` is Fyers' spelling, what JSON documents, the history request and the state table hold. The
name is kept verbatim (``M&M-EQ`` stays ``M&M-EQ``) and must be usable in a Hive partition path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pricefeed.errors import InvalidInput, shown

# Printable ASCII without whitespace and without the characters that break a Hive partition path
# ("/" and "=") or the EXCH:SYM split (":"). Exchanges are plain codes (NSE, BSE, MCX, NFO, ...).
_EXCHANGE = re.compile(r"[A-Za-z0-9_]+")
_NAME = re.compile(r"[!-~]+")
_FORBIDDEN_IN_NAME = frozenset("/=:\\")
#: Longer than any Fyers symbol (options run to ~30 characters), short enough that every S3 key built from a
#: symbol stays far inside S3's 1,024 bytes (a 1,100-character ticker once failed a whole plan).
MAX_EXCHANGE, MAX_NAME = 16, 64


@dataclass(frozen=True, order=True)
class Symbol:
    """One instrument: its exchange code and its name on that exchange (``Symbol("NSE", "SBIN-EQ")``)."""

    exchange: str
    name: str

    def __post_init__(self) -> None:
        text = shown(f"{self.exchange}:{self.name}")
        if not isinstance(self.exchange, str) or not _EXCHANGE.fullmatch(self.exchange):
            raise InvalidInput(f"symbol {text} has an invalid exchange {shown(self.exchange)}")
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name) or _FORBIDDEN_IN_NAME & set(self.name):
            raise InvalidInput(f"symbol {text} has an invalid name {shown(self.name)}")
        if len(self.exchange) > MAX_EXCHANGE or len(self.name) > MAX_NAME:
            raise InvalidInput(
                f"symbol {text} is too long ({len(self.exchange)}:{len(self.name)} characters; "
                f"at most {MAX_EXCHANGE}:{MAX_NAME})"
            )

    def __str__(self) -> str:
        return f"{self.exchange}:{self.name}"

    @classmethod
    def parse(cls, value: object) -> Symbol:
        """``"NSE:SBIN-EQ"`` -> ``Symbol("NSE", "SBIN-EQ")``; ``InvalidInput`` naming the value if malformed."""
        if isinstance(value, Symbol):
            return value
        if not isinstance(value, str) or value.count(":") != 1:
            raise InvalidInput(f"symbol {shown(value)} is not of the form EXCHANGE:SYMBOL")
        exchange, name = value.split(":")
        return cls(exchange, name)


def normalize_symbol(value: str) -> str:
    """The canonical spelling of a ticker: surrounding whitespace dropped, upper case (as Fyers writes them).
    Non-ASCII text is left as it is (some non-ASCII letters upper-case to ASCII ones), so it stays invalid."""
    value = value.strip()
    return value.upper() if value.isascii() else value
