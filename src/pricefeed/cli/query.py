"""`pricefeed query`: SQL over the bars and the coverage ledger of an export or a stack's lake."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from pricefeed.cli.common import LAKE, LIVE, PROFILE, REGION, console, fail, lake_of, target_of
from pricefeed.errors import InvalidInput, PricefeedError


def query(
    sql: str = typer.Argument(
        ..., help='SQL over `bars`, `bars_monthly`, `coverage`, `coverage_monthly`, e.g. "select * from bars limit 5".'
    ),
    lake: Path = LAKE,
    csv: bool = typer.Option(False, "--csv", help="CSV on standard output instead of a table."),
    live: bool = LIVE,
    athena: bool = typer.Option(
        False, "--athena", help="Run the SQL in the stack's Athena workgroup (the `local up` stack, or --stack NAME)."
    ),
    stack: str = typer.Option(
        None, "--stack", help="A deployed stack's name: run the SQL in its Athena workgroup (with --live: mirror "
        "its lake and query the copy with DuckDB)."
    ),
    profile: str = PROFILE,
    region: str = REGION,
) -> None:
    """Query the bars and the coverage ledger: an export or a mirrored lake with DuckDB, or a stack's Athena.

    The tables are named and typed alike in both (partition keys are strings), so the same SQL runs in each."""
    import csv as csv_module
    import sys

    from pricefeed.ops.query import run_query

    if athena and live:
        fail(InvalidInput("query: --athena runs the SQL in the stack's Athena, --live in DuckDB on a mirror: give one"))
    if athena or (stack and not live):
        columns, rows = _in_athena(sql, stack, profile, region, quiet=csv)
    else:
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


def _in_athena(sql: str, stack: str | None, profile: str | None, region: str | None, *, quiet: bool):
    from pricefeed.ops.athena import run_athena

    target = target_of(stack, profile, region)
    try:
        with console.status(f"Running the query in Athena (stack {target.name})…"):
            answer = run_athena(target, sql)
    except PricefeedError as exc:
        fail(exc)
        raise  # unreachable: fail exits
    if not quiet:
        cost = f"about ${answer.dollars:,.2f}" if answer.dollars >= 0.01 else "under $0.01"
        console.print(
            f"Athena scanned {answer.scanned_bytes:,} bytes ({cost}); query {answer.execution_id}", soft_wrap=True
        )
    return answer.columns, answer.rows


def _cell(value: object) -> str:
    return "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)
