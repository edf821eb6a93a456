"""`pricefeed status`: the last runs on a stack, then one run's failed tickers and coverage holes."""

from __future__ import annotations

from datetime import datetime

import typer
from rich.table import Table

from pricefeed.cli.common import PROFILE, REGION, STACK, console, fail, say, target_of
from pricefeed.errors import PricefeedError
from pricefeed.istime import IST


def status(
    execution: str = typer.Option(None, help="A run: its execution ARN or its name (default: the newest run)."),
    last: int = typer.Option(5, min=1, help="How many recent runs to list (at least 1)."),
    stack: str = STACK,
    profile: str = PROFILE,
    region: str = REGION,
) -> None:
    """The last runs, then one run: its failed tickers with the dead-letter reason, and coverage holes."""
    from pricefeed.ops.status import execution_arn, recent_runs, run_status

    target = target_of(stack, profile, region)
    sfn, s3 = target.client("stepfunctions"), target.client("s3")
    try:
        if execution is not None:
            execution = execution_arn(execution, target.output("StateMachineArn"))
        runs = recent_runs(sfn, target.output("StateMachineArn"), last=last)
        if not runs and not execution:
            console.print("No runs yet: start one with `pricefeed run` or `pricefeed backfill`.")
            return
        chosen = run_status(
            sfn, s3, raw_bucket=target.output("RawBucketName"), execution_arn=execution or runs[0]["arn"]
        )
    except PricefeedError as exc:
        fail(exc)
        return
    table = Table("run", "status", "started (UTC)", "stopped (UTC)", title=f"recent runs on stack {target.name}")
    for r in runs:
        table.add_row(r["name"], r["status"], r["started"][:19], (r["stopped"] or "")[:19])
    console.print(table)
    print_run(chosen)
    if chosen["dead_letters"] and chosen["status"] == "SUCCEEDED":
        console.print(f"Re-run only the failed tickers: `pricefeed redrive --execution {execution or runs[0]['arn']}`")


def print_run(chosen: dict) -> None:
    from pricefeed.ops.launch import failure_line

    if chosen["planned"] is None:  # no plan output (yet): say what it was asked for
        given = chosen["input"]
        asked = given.get("date") or (f"{given['from']} .. {given['to']}" if given.get("from") else "incremental")
        ended = " before its plan finished" if chosen["status"] != "RUNNING" else ""
        say(f"{chosen['name']}: {chosen['status']}{ended}; asked for {asked}")
    else:
        say(
            f"{chosen['name']}: {chosen['status']}; dates {chosen['from']} .. {chosen['to']}; "
            f"{chosen['planned']} ticker(s) planned, {len(chosen['unknown'])} unknown to Fyers"
        )
    if chosen["error"]:
        say(f"  {failure_line(chosen['error'], chosen['cause'])}")
    if chosen.get("waiting_for_login_since"):
        since = datetime.fromisoformat(chosen["waiting_for_login_since"]).astimezone(IST).strftime("%Y-%m-%d %H:%M IST")
        console.print(
            f"  [yellow]waiting for today's Fyers login[/] since {since}: log in (`pricefeed login`, or open the "
            "stack's LoginUrl) and the run goes on by itself; nothing is dead-lettered while it waits."
        )
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
