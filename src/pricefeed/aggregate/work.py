"""What an aggregation job builds: the symbol-days of its run's ingest manifests and of the pending markers
(``paths.PENDING_ROOT``: ingests whose job did not finish, days whose raw changed mid-build), by symbol."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pricefeed.errors import InvalidInput
from pricefeed.symbol import Symbol


@dataclass(frozen=True)
class IngestManifest:
    """What one symbol's ingest stored in a run (only what the job needs of it)."""

    symbol: Symbol
    dates: tuple[date, ...]  # IST dates with at least one ended candle


def work_from_manifests(manifests: list[IngestManifest], run_dates: list[date]) -> list[tuple[str, date]]:
    """(symbol, date) pairs, a symbol's dates together and sorted; ``run_dates`` for a manifest without dates."""
    by_symbol: dict[str, set[date]] = {}
    for m in manifests:
        by_symbol.setdefault(m.symbol, set()).update(m.dates)
    return [(s, d) for s, days in by_symbol.items() for d in sorted(days or run_dates)]


def unique_symbols(symbols: list[Symbol] | list[str]) -> list[Symbol]:
    """The run's symbols, parsed (``EXCHANGE:SYMBOL`` text or :class:`Symbol`), each once, in order."""
    if isinstance(symbols, str) or not isinstance(symbols, list | tuple) or not symbols:
        raise InvalidInput(f"symbols {symbols!r} must be a non-empty list of EXCHANGE:SYMBOL strings")
    return list(dict.fromkeys(Symbol.parse(s) for s in symbols))


def unique_dates(dates: list[date]) -> list[date]:
    if not dates or any(type(d) is not date for d in dates):  # a datetime would hide a TZ bug
        raise InvalidInput(f"dates {dates!r} must be a non-empty list of datetime.date")
    return sorted(set(dates))
