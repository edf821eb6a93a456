"""`pricefeed run|backfill|status|query`: start and follow runs on a stack, look at the outcome, query the bars.

They talk to the stack of `pricefeed local up` (its endpoint and outputs in `.pricefeed/local.json`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from pricefeed.cli import STATE_FILE, _fail, app, console
from pricefeed.errors import PricefeedError

FINISHED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


def _stack() -> tuple[dict, object, object]:
    """The local stack's state, and Step Functions and S3 clients for it."""
    import boto3

    if not STATE_FILE.exists():
        _fail(PricefeedError("no stack: start one with `pricefeed local up` (in another terminal) first"))
    state = json.loads(STATE_FILE.read_text())
    kw = {
        "endpoint_url": state["endpoint"],
        "region_name": "ap-south-1",
        "aws_access_key_id": "local",
        "aws_secret_access_key": "local",
    }
    return state, boto3.client("stepfunctions", **kw), boto3.client("s3", **kw)


def _start_and_follow(run_input: dict, csv: str | None, timeout_s: float) -> None:
    from pricefeed.launch import progress, start_run
    from pricefeed.status import run_status

    state, sfn, s3 = _stack()
    arn = start_run(
        sfn,
        s3,
        state_machine_arn=state["StateMachineArn"],
        raw_bucket=state["RawBucketName"],
        run_input=run_input,
        csv=csv,
    )
    console.print(f"started {arn.rsplit(':', 1)[-1]} with input {json.dumps(run_input)}")
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    deadline = time.monotonic() + timeout_s
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("planning", total=None)
        while True:
            now = progress(sfn, s3, raw_bucket=state["RawBucketName"], execution_arn=arn)
            if now.planned is not None:
                bar.update(task, description="tickers ingested", total=now.planned, completed=now.ingested)
            if now.status in FINISHED:
                break
            if time.monotonic() > deadline:
                _fail(
                    PricefeedError(
                        f"the run is still {now.status} after {timeout_s:.0f} s; follow it with `pricefeed status`"
                    )
                )
            time.sleep(0.5)
    _print_run(run_status(sfn, s3, raw_bucket=state["RawBucketName"], execution_arn=arn))
    if now.status != "SUCCEEDED":
        raise typer.Exit(1)


@app.command("run")
def run(
    date_: str = typer.Option(
        None, "--date", help="One IST trading date YYYY-MM-DD (default: incremental, up to now)."
    ),
    tickers: Path = typer.Option(None, help="A ticker CSV for this run only (default: the stack's list)."),
    symbols: str = typer.Option(None, help="Comma-separated Fyers symbols for this run only, e.g. NSE:SBIN-EQ."),
    timeout: float = typer.Option(3600, help="Seconds to follow the run before handing over to `status`."),
) -> None:
    """Start a run on the stack and follow it: tickers ingested of those planned, then the outcome."""
    from pricefeed.launch import execution_input, ticker_csv

    try:
        run_input, csv = execution_input(day=date_, first=None, last=None), ticker_csv(tickers=tickers, symbols=symbols)
    except PricefeedError as exc:
        _fail(exc)
        return
    _start_and_follow(run_input, csv, timeout)


@app.command("backfill")
def backfill(
    from_: str = typer.Option(..., "--from", help="First IST date YYYY-MM-DD (minute history starts 2017-07-03)."),
    to: str = typer.Option(..., "--to", help="Last IST date YYYY-MM-DD."),
    tickers: Path = typer.Option(None, help="A ticker CSV for this backfill (default: the stack's list)."),
    symbols: str = typer.Option(None, help="Comma-separated Fyers symbols for this backfill."),
    timeout: float = typer.Option(6 * 3600, help="Seconds to follow the run before handing over to `status`."),
) -> None:
    """Backfill a date range in the fewest requests (<= 100 days each) and follow it."""
    from pricefeed.launch import execution_input, ticker_csv

    try:
        run_input = execution_input(day=None, first=from_, last=to)
        csv = ticker_csv(tickers=tickers, symbols=symbols)
    except PricefeedError as exc:
        _fail(exc)
        return
    _start_and_follow(run_input, csv, timeout)


@app.command("status")
def status(
    execution: str = typer.Option(None, help="An execution ARN (default: the newest run)."),
    last: int = typer.Option(5, help="How many recent runs to list."),
) -> None:
    """The last runs, then one run: its failed tickers with the dead-letter reason, and coverage holes.

    Talks to the stack started by `pricefeed local up` from this directory."""
    from pricefeed.status import recent_runs, run_status

    state, sfn, s3 = _stack()
    try:
        runs = recent_runs(sfn, state["StateMachineArn"], last=last)
        if not runs and not execution:
            console.print("No runs yet: start one with `pricefeed local run` or the Step Functions API.")
            return
        chosen = run_status(sfn, s3, raw_bucket=state["RawBucketName"], execution_arn=execution or runs[0]["arn"])
    except PricefeedError as exc:
        _fail(exc)
        return
    table = Table("run", "status", "started (UTC)", "stopped (UTC)", title="recent runs")
    for r in runs:
        table.add_row(r["name"], r["status"], r["started"][:19], (r["stopped"] or "")[:19])
    console.print(table)
    _print_run(chosen)


def _print_run(chosen: dict) -> None:
    console.print(
        f"[bold]{chosen['name']}[/]: {chosen['status']}; dates {chosen['from']} .. {chosen['to']}; "
        f"{chosen['planned']} ticker(s) planned, {len(chosen['unknown'])} unknown to Fyers"
    )
    if chosen["error"]:
        console.print(f"  [red]{chosen['error']}[/]: {chosen['cause']}")
    letters = Table("ticker", "error", "attempts", "reason", title=f"{len(chosen['dead_letters'])} dead letter(s)")
    for d in chosen["dead_letters"]:
        letters.add_row(d["symbol"], d["error_type"], str(d["attempts"]), d["reason"])
    console.print(letters)
    coverage = chosen["coverage"]
    if coverage:
        console.print(
            f"coverage: {coverage['complete']} complete, {coverage['with_gaps']} with gaps "
            f"({coverage['missing_minutes']} minutes missing)"
        )
        for w in coverage.get("worst", [])[:10]:
            ranges = ", ".join(w["missing_ranges"]) or "the whole session"
            console.print(
                f"  {w['symbol']} {w['date']}: {w['missing_minutes']} of {w['expected_minutes']} min missing ({ranges})"
            )


@app.command("query")
def query(
    sql: str = typer.Argument(..., help='SQL over the views `bars` and `coverage`, e.g. "select * from bars limit 5".'),
    lake: Path = typer.Option(Path("lake"), help="An exported lake (`make demo`, `pricefeed local run --export`)."),
    csv: bool = typer.Option(False, "--csv", help="CSV on standard output instead of a table."),
) -> None:
    """Query the bars and the coverage ledger of an exported lake with DuckDB (the tables Athena sees)."""
    import csv as csv_module
    import sys

    from pricefeed.query import run_query

    try:
        columns, rows = run_query(sql, lake)
    except PricefeedError as exc:
        _fail(exc)
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
