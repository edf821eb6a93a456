"""`pricefeed query`: SQL over an exported lake, as a user runs it after `make demo`."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
from typer.testing import CliRunner

from pricefeed.aggregate.bars import build_bars
from pricefeed.aggregate.candles import parse_envelope
from pricefeed.aggregate.ledger import day_coverage
from pricefeed.cli.main import app
from pricefeed.lake import paths
from pricefeed.lake import storage as lake
from pricefeed.lake.envelope import build_envelope
from pricefeed.symbol import Symbol

IST = ZoneInfo("Asia/Kolkata")
DAY = date(2025, 11, 25)
OPEN = int(datetime.combine(DAY, time(9, 15), tzinfo=IST).timestamp())


def export_day(root: Path, symbol: str, minutes: int) -> None:
    """Write one symbol-day's bars and ledger row the way the job does, under an export's key layout."""
    rows = [[OPEN + 60 * m, 100.0 + m, 101.0 + m, 99.0 + m, 100.5 + m, 10 + m] for m in range(minutes)]
    raw = build_envelope(
        symbol=symbol,
        resolution="1",
        range_from=OPEN,
        range_to=OPEN + 22499,
        trading_date=DAY,
        fetched_at=datetime(2025, 11, 25, 12, tzinfo=UTC),
        http_status=200,
        body=orjson.dumps({"s": "ok", "candles": rows}),
    )
    day = build_bars(Symbol.parse(symbol), DAY, [parse_envelope(raw, source="s3://raw/k")])
    for timeframe, table in day.tables.items():
        target = root / "processed" / paths.processed_key(timeframe, day.symbol, DAY)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(lake.parquet_bytes(table))
    ledger = root / "processed" / paths.coverage_key(day.symbol, DAY)
    ledger.parent.mkdir(parents=True, exist_ok=True)
    ledger.write_bytes(lake.parquet_bytes(day_coverage(day).table()))


def test_query_prints_bars_and_coverage_of_an_export(tmp_path):
    export_day(tmp_path, "NSE:SBIN-EQ", 375)
    export_day(tmp_path, "NSE:INFY-EQ", 165)  # stopped at 12:00 IST: a gap the ledger shows
    runner = CliRunner()

    counted = runner.invoke(
        app,
        [
            "query",
            "--lake",
            str(tmp_path),
            "--csv",
            "select symbol, timeframe, count(*) n from bars group by all order by all",
        ],
    )
    holes = runner.invoke(
        app,
        ["query", "--lake", str(tmp_path), "--csv", "select symbol, missing_minutes from coverage where not complete"],
    )

    assert counted.exit_code == 0, counted.output
    table = list(csv.DictReader(io.StringIO(counted.output)))
    assert {(r["symbol"], r["timeframe"]): int(r["n"]) for r in table} == {
        ("INFY-EQ", "15m"): 11,
        ("INFY-EQ", "1d"): 1,
        ("INFY-EQ", "1m"): 165,
        ("INFY-EQ", "5m"): 33,
        ("SBIN-EQ", "15m"): 25,
        ("SBIN-EQ", "1d"): 1,
        ("SBIN-EQ", "1m"): 375,
        ("SBIN-EQ", "5m"): 75,
    }
    assert holes.exit_code == 0, holes.output
    assert list(csv.DictReader(io.StringIO(holes.output))) == [{"symbol": "INFY-EQ", "missing_minutes": "210"}]


def test_query_names_what_to_do_when_there_is_no_lake_or_the_sql_is_wrong(tmp_path):
    runner = CliRunner()
    empty = runner.invoke(app, ["query", "--lake", str(tmp_path), "select 1"])
    assert empty.exit_code == 2 and "make demo" in empty.output
    export_day(tmp_path, "NSE:SBIN-EQ", 10)
    wrong = runner.invoke(app, ["query", "--lake", str(tmp_path), "select nope from bars"])
    assert wrong.exit_code == 2 and "nope" in wrong.output
