"""A Fyers symbol, ``EXCHANGE:NAME`` (``NSE:SBIN-EQ``): its canonical spelling, its check and its two parts.

The name part is kept verbatim (``M&M-EQ`` stays ``M&M-EQ``) and must be usable in a Hive partition path.
"""

from __future__ import annotations

import re

from pricefeed.errors import InvalidInput

# Printable ASCII without whitespace and without the characters that break a Hive partition path
# ("/" and "=") or the EXCH:SYM split (":"). Exchanges are plain codes (NSE, BSE, MCX, NFO, ...).
_EXCHANGE = re.compile(r"[A-Za-z0-9_]+")
_SYMBOL = re.compile(r"[!-~]+")
_FORBIDDEN_IN_SYMBOL = frozenset("/=:\\")


def split_symbol(symbol: str) -> tuple[str, str]:
    """``"NSE:SBIN-EQ"`` -> ``("NSE", "SBIN-EQ")``; ``InvalidInput`` naming the value if malformed."""
    if not isinstance(symbol, str) or symbol.count(":") != 1:
        raise InvalidInput(f"symbol {symbol!r} is not of the form EXCHANGE:SYMBOL")
    exchange, name = symbol.split(":")
    if not _EXCHANGE.fullmatch(exchange):
        raise InvalidInput(f"symbol {symbol!r} has an invalid exchange {exchange!r}")
    if not _SYMBOL.fullmatch(name) or _FORBIDDEN_IN_SYMBOL.intersection(name):
        raise InvalidInput(f"symbol {symbol!r} has an invalid name {name!r}")
    return exchange, name


def join_symbol(exchange: str, name: str) -> str:
    """The inverse of :func:`split_symbol` (validated the same way)."""
    symbol = f"{exchange}:{name}"
    split_symbol(symbol)
    return symbol


def normalize_symbol(value: str) -> str:
    """The canonical spelling of a ticker: surrounding whitespace dropped, upper case (as Fyers writes them).
    Non-ASCII text is left as it is (some non-ASCII letters upper-case to ASCII ones), so it stays invalid."""
    value = value.strip()
    return value.upper() if value.isascii() else value
