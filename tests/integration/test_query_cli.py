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


def export_day(root: Path, symbol: str, minutes: int, extra: list | None = None) -> None:
    """Write one symbol-day's bars, ledger row and quarantine the way the job does, under an export's key layout."""
    rows = [[OPEN + 60 * m, 100.0 + m, 101.0 + m, 99.0 + m, 100.5 + m, 10 + m] for m in range(minutes)]
    rows += extra or []
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
    if day.quarantine is not None:
        held = root / "processed" / paths.quarantine_key(day.symbol, DAY)
        held.parent.mkdir(parents=True, exist_ok=True)
        held.write_bytes(lake.parquet_bytes(day.quarantine))


def test_the_quarantine_answers_which_candles_were_left_out_and_why(tmp_path):
    query = ["query", "--lake", str(tmp_path), "--csv",
             "select symbol, rule, volume, raw_object from quarantine order by all"]
    export_day(tmp_path, "NSE:SBIN-EQ", 375)
    empty = CliRunner().invoke(app, query)  # nothing left out yet: the table is there, empty
    assert empty.exit_code == 0 and empty.output.strip() == "symbol,rule,volume,raw_object", empty.output
    sentinel = [OPEN + 60 * 400, 100.0, 101.0, 99.0, 100.5, 429_496_726_000]  # after the close, too
    export_day(tmp_path, "NSE:INFY-EQ", 10, [[OPEN + 60 * 11, 100.0, 99.0, 98.0, 99.5, 5], sentinel])
    held = CliRunner().invoke(app, query)
    assert held.exit_code == 0, held.output
    assert list(csv.DictReader(io.StringIO(held.output))) == [
        {"symbol": "INFY-EQ", "rule": "high_below_open", "volume": "5.0", "raw_object": "s3://raw/k"},
        {"symbol": "INFY-EQ", "rule": "volume_sentinel", "volume": "429496726000.0", "raw_object": "s3://raw/k"},
    ]


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


def test_the_lake_opens_with_any_readers_plain_directory_read_and_the_views_type_keys_as_glue_does(tmp_path):
    export_day(tmp_path, "NSE:SBIN-EQ", 375)
    export_day(tmp_path, "NSE:M&M-EQ", 30)
    import duckdb
    import pandas as pd
    import polars as pl
    import pyarrow.parquet as pq

    bars_dir = tmp_path / "processed" / paths.PROCESSED_ROOT
    five = pd.read_parquet(bars_dir / "timeframe=5m")  # failed while files repeated the path's keys
    assert sorted(five["symbol"].astype(str).unique()) == ["M&M-EQ", "SBIN-EQ"] and len(five) == 75 + 6
    table = pq.read_table(bars_dir)
    assert table.num_rows == (375 + 75 + 25 + 1) + (30 + 6 + 2 + 1)
    assert set(paths.PARTITION_KEYS) <= set(table.column_names)
    ledger = pq.read_table(tmp_path / "processed" / paths.COVERAGE_ROOT)
    assert ledger.num_rows == 2 and {"exchange", "symbol", "missing_minutes"} <= set(ledger.column_names)
    frame = pl.read_parquet(f"{bars_dir}/**/*.parquet", hive_partitioning=True)
    assert frame.filter(pl.col("timeframe") == "1m").group_by("symbol").len().sort("symbol").rows() == [
        ("M&M-EQ", 30), ("SBIN-EQ", 375)
    ]
    raw = duckdb.sql(f"select * from read_parquet('{bars_dir}/**/*.parquet', hive_partitioning = true) limit 1")
    assert dict(zip(raw.columns, raw.types, strict=True))["symbol"] == "VARCHAR"

    runner = CliRunner()
    typed = runner.invoke(
        app,
        ["query", "--lake", str(tmp_path), "--csv",
         "select column_name, data_type from information_schema.columns "
         "where table_name in ('bars', 'coverage') and column_name in ('year', 'month', 'day', 'symbol') "
         "order by table_name, column_name"],
    )
    assert typed.exit_code == 0, typed.output
    assert list(csv.reader(io.StringIO(typed.output)))[1:] == [["day", "VARCHAR"], ["month", "VARCHAR"],
                                                               ["symbol", "VARCHAR"], ["year", "VARCHAR"]] * 2
    # The same SQL as in Athena, where the keys are strings: year = '2025', day = '25'.
    day = runner.invoke(
        app,
        ["query", "--lake", str(tmp_path), "--csv",
         "select symbol, count(*) from bars where timeframe = '1m' and year = '2025' and month = '11' and day = '25' "
         "group by symbol order by symbol"],
    )
    assert day.exit_code == 0, day.output
    assert list(csv.reader(io.StringIO(day.output)))[1:] == [["M&M-EQ", "30"], ["SBIN-EQ", "375"]]
