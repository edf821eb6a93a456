"""The ticker list: a CSV with a header row and a ``symbol`` column of Fyers symbols (other columns ignored).

Fyers tickers are upper case, so symbols are trimmed and upper-cased: ``nse:sbin-eq`` and `` NSE:SBIN-EQ``
are the same ticker, and the second one is counted as a duplicate.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from pricefeed.errors import InvalidInput
from pricefeed.symbol import Symbol, normalize_symbol


@dataclass(frozen=True)
class TickerList:
    symbols: list[Symbol]
    rejected: list[dict] = field(default_factory=list)  # {"line": n, "value": ..., "reason": ...}
    duplicates: int = 0


def parse_ticker_csv(text: str, *, source: str = "ticker list") -> TickerList:
    """Valid symbols in file order, duplicates collapsed; bad rows are reported, not fatal."""
    try:
        return _parse(text, source)
    except csv.Error as exc:
        raise InvalidInput(f"{source}: not a readable CSV: {exc}") from None


def _parse(text: str, source: str) -> TickerList:
    # newline="" lets the csv module handle \r (Excel for Mac) and \r\n line ends itself.
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    if not reader.fieldnames or "symbol" not in [f.strip().lower() for f in reader.fieldnames]:
        raise InvalidInput(f"{source}: the header row has no 'symbol' column")
    column = next(f for f in reader.fieldnames if f.strip().lower() == "symbol")
    symbols: list[Symbol] = []
    seen: set[Symbol] = set()
    rejected: list[dict] = []
    duplicates = 0
    for row in reader:
        line = reader.line_num
        value = (row.get(column) or "").strip()
        if not value:
            rejected.append({"line": line, "value": "", "reason": "blank symbol"})
            continue
        try:
            Symbol.parse(value)  # as written, so the reason quotes the row
        except InvalidInput as exc:
            rejected.append({"line": line, "value": value[:64], "reason": str(exc)})
            continue
        symbol = Symbol.parse(normalize_symbol(value))
        if symbol in seen:
            duplicates += 1
            continue
        seen.add(symbol)
        symbols.append(symbol)
    if not symbols:
        first = f"; first: line {rejected[0]['line']}: {rejected[0]['reason']}" if rejected else ""
        raise InvalidInput(f"{source}: no valid symbols ({len(rejected)} rows rejected{first})")
    return TickerList(symbols, rejected, duplicates)
