"""`pricefeed query`: SQL over the bars and the coverage ledger of an export or a stack's lake."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from pricefeed.cli.common import LAKE, LIVE, PROFILE, REGION, console, fail, lake_of
from pricefeed.errors import PricefeedError


def query(
    sql: str = typer.Argument(..., help='SQL over the views `bars` and `coverage`, e.g. "select * from bars limit 5".'),
    lake: Path = LAKE,
    csv: bool = typer.Option(False, "--csv", help="CSV on standard output instead of a table."),
    live: bool = LIVE,
    stack: str = typer.Option(None, "--stack", help="A deployed stack's name: query its lake (implies --live)."),
    profile: str = PROFILE,
    region: str = REGION,
) -> None:
    """Query the bars and the coverage ledger with DuckDB (the tables Athena sees): an export, or a stack's lake."""
    import csv as csv_module
    import sys

    from pricefeed.ops.query import run_query

    lake = lake_of(lake, live=live, stack=stack, profile=profile, region=region)
    try:
        columns, rows = run_query(sql, lake)
    except PricefeedError as exc:
        fail(exc)
        return
    if csv:
        writer = csv_module.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows([_cell(v) for v in row] for row in rows)
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    console.print(table)
    console.print(f"{len(rows)} row(s)")


def _cell(value: object) -> str:
    return "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)
