"""`pricefeed run|backfill|redrive|heal`: start a run on a stack and follow it to its outcome.

They talk to the stack of `pricefeed local up` (its endpoint and outputs in `.pricefeed/local.json`), or to a
deployed stack named by ``--stack`` (``PRICEFEED_STACK``) with the usual AWS profile and region.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from pricefeed.cli.common import PROFILE, REGION, STACK, console, fail, say, target_of
from pricefeed.cli.status import print_run
from pricefeed.errors import PricefeedError
from pricefeed.ops.target import Target

FINISHED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")

def _budget_reader(target: Target):
    """A callable giving the account's budget use now, or None when it can't be read (never fatal)."""
    from pricefeed.auth.store import load_app_config
    from pricefeed.fyers.ratelimit import read_budget_use

    try:
        table = target.output("StateTableName")
        account = load_app_config(target.client("secretsmanager"), target.output("AppConfigSecretArn")).app_id
    except Exception:  # noqa: BLE001 - no rights to the secret, an older stack: the progress goes on without it
        return lambda: None
    dynamodb = target.client("dynamodb")

    def read():
        try:
            return read_budget_use(dynamodb, table=table, account=account)
        except Exception:  # noqa: BLE001 - a missed reading only leaves the figure stale
            return None

    return read


class _RunProgress(Progress):
    """The tickers' progress bar with a line under it about the Fyers budget."""

    note = ""

    def get_renderables(self):
        yield self.make_tasks_table(self.tasks)
        if self.note:
            yield Text(self.note)


def _budget_text(budget, used_at_start: int | None) -> str:
    if budget is None:
        return ""
    this_run = budget.used_today - (used_at_start or 0)
    day_cap = f" of {budget.per_day:,}" if budget.per_day else ""
    pace = f", budget {budget.per_minute}/min" if budget.per_minute else ""
    paused = " - paused after a 429" if budget.paused else ""
    return f"Fyers requests: {this_run:,} this run, {budget.used_today:,}{day_cap} today{pace}{paused}"


def _start_and_follow(target: Target, run_input: dict, csv: str | None, timeout_s: float) -> None:
    from pricefeed.ops.launch import progress, start_run
    from pricefeed.ops.status import run_status, waiting_for_login

    sfn, s3, raw = target.client("stepfunctions"), target.client("s3"), target.output("RawBucketName")
    budget = _budget_reader(target)
    at_start = budget()
    arn = start_run(
        sfn, s3, state_machine_arn=target.output("StateMachineArn"), raw_bucket=raw, run_input=run_input, csv=csv
    )
    console.print(f"started {arn.rsplit(':', 1)[-1]} on stack {target.name} with input {json.dumps(run_input)}")
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[red]{task.fields[failed]}[/]"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    deadline = time.monotonic() + timeout_s
    try:
        with _RunProgress(*columns, console=console, transient=False) as bar:
            task = bar.add_task("planning", total=None, failed="")
            seen: dict = {}
            while True:
                now = progress(sfn, s3, raw_bucket=raw, execution_arn=arn, seen=seen)
                if now.planned is not None:
                    failed = (now.failed and f"{now.failed} failed", now.unknown and f"{now.unknown} unknown")
                    bar.update(
                        task,
                        description="tickers done",
                        total=now.planned,
                        completed=now.ingested + now.failed,
                        failed=", ".join(t for t in failed if t),
                    )
                bar.note = _budget_text(budget(), at_start.used_today if at_start else None)
                if now.status == "RUNNING" and waiting_for_login(sfn, arn):
                    bar.update(task, description="waiting for today's Fyers login (run `pricefeed login`)")
                elif now.planned is None:
                    bar.update(task, description="planning")
                if now.status in FINISHED:
                    bar.refresh()
                    break
                if time.monotonic() > deadline:
                    fail(
                        PricefeedError(
                            f"the run is still {now.status} after {timeout_s:.0f} s; "
                            f"follow it with `pricefeed status --execution {arn}`"
                        )
                    )
                time.sleep(1.0 if target.local else 3.0)
    except KeyboardInterrupt:
        console.print(
            f"[yellow]Stopped following; the run goes on on the stack.[/] Follow it with "
            f"`pricefeed status --execution {arn}`; stop it with `aws stepfunctions stop-execution`."
        )
        raise typer.Exit(130) from None
    print_run(run_status(sfn, s3, raw_bucket=raw, execution_arn=arn))
    if now.status != "SUCCEEDED":
        raise typer.Exit(1)


def run(
    date_: str = typer.Option(
        None, "--date", help="One IST trading date YYYY-MM-DD (default: incremental, up to now)."
    ),
    tickers: Path = typer.Option(None, help="A ticker CSV for this run only (default: the stack's list)."),
    symbols: str = typer.Option(None, help="Comma-separated Fyers symbols for this run only, e.g. NSE:SBIN-EQ."),
    timeout: float = typer.Option(3600, help="Seconds to follow the run before handing over to `status`."),
    stack: str = STACK,
    profile: str = PROFILE,
    region: str = REGION,
) -> None:
    """Start a run on the stack and follow it: tickers done and failed, Fyers requests used, then the outcome."""
    run_input, csv = _checked(day=date_, first=None, last=None, tickers=tickers, symbols=symbols)
    _start_and_follow(target_of(stack, profile, region), run_input, csv, timeout)


def _checked(*, day, first, last, tickers: Path | None, symbols: str | None) -> tuple[dict, str | None]:
    """The run's input and ticker list, checked before anything starts (exit 2 naming the input); the rows of the
    list that are not symbols are reported and left out, the rest run."""
    from pricefeed.ops.launch import check_trading_days, execution_input, rejected_rows, ticker_csv

    try:
        run_input = execution_input(day=day, first=first, last=last)
        csv = ticker_csv(tickers=tickers, symbols=symbols)
        check_trading_days(run_input, csv)
    except PricefeedError as exc:
        fail(exc)
        raise  # unreachable: fail exits
    for line in rejected_rows(csv, str(tickers or "--symbols")) if csv is not None else []:
        say(f"skipped: {line}")
    return run_input, csv


def backfill(
    from_: str = typer.Option(..., "--from", help="First IST date YYYY-MM-DD (minute history starts 2017-07-03)."),
    to: str = typer.Option(..., "--to", help="Last IST date YYYY-MM-DD."),
    tickers: Path = typer.Option(None, help="A ticker CSV for this backfill (default: the stack's list)."),
    symbols: str = typer.Option(None, help="Comma-separated Fyers symbols for this backfill."),
    timeout: float = typer.Option(6 * 3600, help="Seconds to follow the run before handing over to `status`."),
    stack: str = STACK,
    profile: str = PROFILE,
    region: str = REGION,
) -> None:
    """Backfill a date range in the fewest requests (<= 100 days each) and follow it."""
    run_input, csv = _checked(day=None, first=from_, last=to, tickers=tickers, symbols=symbols)
    _start_and_follow(target_of(stack, profile, region), run_input, csv, timeout)


def redrive(
    execution: str = typer.Option(
        None, help="The run to redrive: its execution ARN or name (default: the newest run)."
    ),
    include_unknown: bool = typer.Option(
        False, "--include-unknown", help="Also retry symbols the plan found unknown to Fyers."
    ),
    timeout: float = typer.Option(6 * 3600, help="Seconds to follow the run before handing over to `status`."),
    stack: str = STACK,
    profile: str = PROFILE,
    region: str = REGION,
) -> None:
    """Re-run only the tickers that failed in a run, over the same dates, and follow it.

    A run that failed as a whole (say, the aggregation job) is redriven with all its tickers. Bars are
    rebuilt from the newest answers: nothing already stored is duplicated."""
    from pricefeed.ops.launch import redrive_input
    from pricefeed.ops.status import execution_arn, recent_runs, run_status

    target = target_of(stack, profile, region)
    sfn, s3 = target.client("stepfunctions"), target.client("s3")
    try:
        if execution is not None:
            execution = execution_arn(execution, target.output("StateMachineArn"))
        else:
            runs = recent_runs(sfn, target.output("StateMachineArn"), last=1)
            if not runs:
                raise PricefeedError("no runs yet on this stack: nothing to redrive")
            execution = runs[0]["arn"]
        before = run_status(sfn, s3, raw_bucket=target.output("RawBucketName"), execution_arn=execution)
        run_input, csv, what = redrive_input(before, include_unknown=include_unknown)
    except PricefeedError as exc:
        fail(exc)
        return
    console.print(what)
    _start_and_follow(target, run_input, csv, timeout)


def heal(
    from_: str = typer.Option(None, "--from", help="Only symbols with something open on or after this IST date."),
    to: str = typer.Option(None, "--to", help="Only symbols with something open on or before this IST date."),
    yes: bool = typer.Option(False, "--yes", help="Start the run without asking."),
    timeout: float = typer.Option(6 * 3600, help="Seconds to follow the run before handing over to `status`."),
    stack: str = STACK,
    profile: str = PROFILE,
    region: str = REGION,
) -> None:
    """Ask Fyers again for what is not settled: days a run jumped over and answers' empty tails awaiting their
    second ask. Lists the symbols and the requests it will spend, then starts a scheduled run for them."""
    from pricefeed.ingest.symbol_range import MAX_CATCH_UP_REQUESTS
    from pricefeed.istime import parse_date
    from pricefeed.ops.heal import find_open, heal_csv

    target = target_of(stack, profile, region)
    try:
        first = parse_date(from_, what="--from") if from_ else None
        last = parse_date(to, what="--to") if to else None
        found = find_open(target.client("dynamodb"), target.output("StateTableName"), first=first, last=last)
    except PricefeedError as exc:
        fail(exc)
        return
    if not found:
        console.print("Nothing is open: every symbol is settled up to its last run.")
        return
    for item in found:
        days = f"{item.first_day}" + (f"..{item.last_day}" if item.last_day != item.first_day else "")
        opened = f"{len(item.stretches)} open ({item.holes} never asked)"
        console.print(f"{item.symbol}: {opened} on {days}; {item.requests} request(s)")
    requests, most = sum(item.requests for item in found), max(item.requests for item in found)
    runs = -(-most // MAX_CATCH_UP_REQUESTS)  # a scheduled run asks at most that many for a symbol
    spread = "in one scheduled run" if runs == 1 else f"over {runs} scheduled runs: this starts the first"
    console.print(f"{len(found)} symbol(s), {requests} Fyers request(s) {spread}.")
    if not yes and not typer.confirm("Start it?", default=True):
        raise typer.Exit(1)
    _start_and_follow(target, {}, heal_csv(found), timeout)
