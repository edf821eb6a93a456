"""What the report shows, read from an exported lake (``<lake>/raw/…``, ``<lake>/processed/…``): the coverage
ledger, the dead letters and the bars of the dates asked, and which symbols to chart."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pricefeed.errors import InvalidInput
from pricefeed.ingest.dead_letters import reason
from pricefeed.istime import IST, parse_date
from pricefeed.lake.paths import COVERAGE_ROOT, DEAD_LETTER_ROOT, processed_key
from pricefeed.ops.report.model import (
    DEFAULT_CHARTS,
    Bar,
    CoverageRow,
    FailedDay,
    ReportData,
    date_span,
    symbol_missing,
)
from pricefeed.symbol import Symbol, normalize_symbol


def gather(
    lake: Path, *, day: str | None = None, first: str | None = None, last: str | None = None,
    symbols: str | None = None,
) -> ReportData:
    """Everything the report shows; ``InvalidInput`` naming the problem (no lake, no data, unknown symbol)."""
    _check_lake(lake)
    start, end = _dates(lake, day, first, last)
    coverage = read_coverage(lake, start, end)
    letters = read_dead_letters(lake, start, end, stored={(r.symbol, r.trading_date) for r in coverage})
    if not coverage and not letters:
        span = date_span(start, end)
        raise InvalidInput(f"report: no data in {lake} for {span} (the ledger has {_ledger_span(lake)})")
    timeframe = "5m" if start == end else "1d"
    data = ReportData(
        lake, start, end, coverage,
        failures=[f for f in letters if not f.unknown_symbol], unknown=[f for f in letters if f.unknown_symbol],
        timeframe=timeframe,
    )
    data.charts = {s: read_bars(lake, s, timeframe, start, end) for s in _chart_symbols(data, symbols)}
    return data


def _check_lake(lake: Path) -> None:
    if not lake.is_dir():
        raise InvalidInput(f"report: no lake at {lake}: run `make demo` or `pricefeed local run --export {lake}` first")
    if not _ledger_dates(lake):
        raise InvalidInput(
            f"report: no coverage ledger under {lake / 'processed' / COVERAGE_ROOT}: "
            f"export a finished run there (`pricefeed local run --export {lake}`)"
        )


def _dates(lake: Path, day: str | None, first: str | None, last: str | None) -> tuple[date, date]:
    if day and (first or last):
        raise InvalidInput("report: give either --date or --from/--to, not both")
    if bool(first) != bool(last):
        raise InvalidInput("report: give both --from and --to (or --date for one day)")
    if day:
        one = parse_date(day, what="--date")
        return one, one
    if first:
        start, end = parse_date(first, what="--from"), parse_date(last, what="--to")
        if end < start:
            raise InvalidInput(f"report: --to {end} is before --from {start}")
        return start, end
    newest = max(_ledger_dates(lake))
    return newest, newest


def _ledger_dates(lake: Path) -> set[date]:
    """IST dates that have a coverage partition (from the directory names: no file is read)."""
    root = lake / "processed" / COVERAGE_ROOT
    found = set()
    for folder in root.glob("exchange=*/symbol=*/year=*/month=*/day=*"):
        y, m, d = (folder.parts[i].split("=", 1)[1] for i in (-3, -2, -1))
        try:
            found.add(date(int(y), int(m), int(d)))
        except ValueError:
            continue
    return found


def _ledger_span(lake: Path) -> str:
    dates = sorted(_ledger_dates(lake))
    return date_span(dates[0], dates[-1]) if dates else "no dates"


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _day_glob(day: date) -> str:
    return f"year={day.year:04d}/month={day.month:02d}/day={day.day:02d}"


def read_coverage(lake: Path, start: date, end: date) -> list[CoverageRow]:
    """The ledger rows of ``start .. end`` (only those days' partitions are read)."""
    import pyarrow.parquet as pq

    root = lake / "processed" / COVERAGE_ROOT
    rows = []
    for day in _days(start, end):
        for path in sorted(root.glob(f"exchange=*/symbol=*/{_day_glob(day)}/*.parquet")):
            # exchange and symbol are partition keys: in the path, not in the file
            exchange, name = (path.parts[i].split("=", 1)[1] for i in (-6, -5))
            columns = ["trade_date", "sessions", "expected_minutes", "missing_minutes", "missing_ranges"]
            table = pq.ParquetFile(path).read(columns=columns)
            rows += [_coverage_row(Symbol(exchange, name), r) for r in table.to_pylist()]
    return rows


def _coverage_row(symbol: Symbol, r: dict) -> CoverageRow:
    return CoverageRow(
        symbol=symbol,
        trading_date=r["trade_date"],
        sessions=tuple(r["sessions"] or ()),
        expected_minutes=int(r["expected_minutes"]),
        missing_minutes=int(r["missing_minutes"]),
        missing_ranges=tuple(r["missing_ranges"] or ()),
    )


def read_dead_letters(lake: Path, start: date, end: date, *, stored: set[tuple[Symbol, date]]) -> list[FailedDay]:
    """One :class:`FailedDay` per symbol-day of ``start .. end`` that has dead letters (the newest one wins)."""
    root = lake / "raw" / DEAD_LETTER_ROOT
    by_day: dict[tuple[Symbol, date], list[dict]] = {}
    for day in _days(start, end):
        for path in root.glob(f"symbol=*/{_day_glob(day)}/failed-*.json"):
            letter = json.loads(path.read_text(encoding="utf-8"))
            by_day.setdefault((_letter_symbol(letter, path), day), []).append(letter)
    failures = [_failure(sym, day, letters, (sym, day) in stored) for (sym, day), letters in by_day.items()]
    return sorted(failures, key=lambda f: (f.trading_date, f.symbol))


def _letter_symbol(letter: dict, path: Path) -> Symbol:
    try:
        return Symbol.parse(letter.get("symbol") or path.parts[-5].split("=", 1)[1])
    except InvalidInput as exc:
        raise InvalidInput(f"report: dead letter {path} is unreadable: {exc}") from None


def _failure(symbol: Symbol, day: date, letters: list[dict], stored_later: bool) -> FailedDay:
    newest = max(letters, key=lambda x: str(x.get("failed_at", "")))
    return FailedDay(
        symbol=symbol,
        trading_date=day,
        error_type=str(newest.get("error_type") or "unknown error"),
        reason=reason(newest, 300),
        attempts=newest.get("attempts"),
        failed_at=_ist_stamp(newest.get("failed_at")),
        run_id=str(newest.get("run_id", "")),
        runs=len(letters),
        stored_later=stored_later,
    )


def _ist_stamp(value: object) -> str:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return ""
    return moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(IST).strftime("%Y-%m-%d %H:%M")


def read_bars(lake: Path, symbol: Symbol, timeframe: str, start: date, end: date) -> list[Bar]:
    """The stored bars of ``symbol`` at ``timeframe``, oldest first, bar starts in IST."""
    import pyarrow.parquet as pq

    bars = []
    for day in _days(start, end):
        path = lake / "processed" / processed_key(timeframe, symbol, day)
        if path.is_file():
            table = pq.ParquetFile(path).read(columns=["ts", "open", "high", "low", "close", "volume"])
            bars += [_bar(r) for r in table.to_pylist()]
    return sorted(bars, key=lambda b: b.ist)


def _bar(r: dict) -> Bar:
    ist = r["ts"].astimezone(IST).replace(tzinfo=None)
    return Bar(ist, r["open"], r["high"], r["low"], r["close"], int(r["volume"]))


def _chart_symbols(data: ReportData, wanted: str | None) -> list[Symbol]:
    """``--symbols`` checked against the lake, else the worst-covered symbols that stored anything."""
    known = {r.symbol for r in data.coverage} | {f.symbol for f in data.failures + data.unknown}
    if wanted:
        return [_resolve(s.strip(), known, data) for s in wanted.split(",") if s.strip()]
    totals = symbol_missing(data)
    with_bars = {r.symbol for r in data.coverage if r.expected_minutes > r.missing_minutes}
    return [s for s in sorted(totals, key=lambda s: (-totals[s], s)) if s in with_bars][:DEFAULT_CHARTS]


def _resolve(given: str, known: set[Symbol], data: ReportData) -> Symbol:
    """``NSE:SBIN-EQ`` or ``SBIN-EQ`` (any case) -> the lake's ``NSE:SBIN-EQ``; ``InvalidInput`` naming it if
    absent."""
    wanted = normalize_symbol(given)
    matches = sorted(s for s in known if wanted in (str(s), s.name))
    if not matches:
        some = ", ".join(str(s) for s in sorted(known)[:10]) + (", ..." if len(known) > 10 else "")
        raise InvalidInput(
            f"report: symbol {given!r} has no data in {data.lake} for {date_span(data.first, data.last)} "
            f"(symbols there: {some or 'none'})"
        )
    return matches[0]
