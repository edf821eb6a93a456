"""What every command module shares: the console, errors as plain text, the stack and lake options.

Command modules import this, never the app: ``pricefeed.cli.main`` assembles the app from them.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from pricefeed.errors import PricefeedError
from pricefeed.istime import parse_date
from pricefeed.ops.target import STATE_FILE, Target, resolve

# ":secret:" in an ARN must stay text. On a terminal, its width; redirected (a file, a pipe, a script), no width to
# wrap at: an ARN or a suggested command is copied whole from a log, never split at column 80.
console = Console(emoji=False, width=None if sys.stdout.isatty() else 100_000)

STACK = typer.Option(
    None,
    "--stack",
    envvar="PRICEFEED_STACK",
    help="A deployed stack's name (default: the local stack of `pricefeed local up` in this directory).",
)
PROFILE = typer.Option(None, "--profile", help="AWS profile of the deployed stack's account (else the usual chain).")
REGION = typer.Option(None, "--region", help="AWS region of the deployed stack (else AWS_REGION / the profile's).")
LIVE = typer.Option(
    False, "--live", help="Read the stack's buckets (the `local up` stack, or --stack NAME) instead of an export."
)
LAKE = typer.Option(Path("lake"), help="An exported lake (`make demo`, `pricefeed local run --export`).")


def fail(exc: Exception) -> None:
    """Print the error as plain text (brackets in it are not markup; an ARN or URL is never split) and exit 2."""
    console.print(Text.assemble(("error: ", "bold red"), str(exc)), highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def say(message: str) -> None:
    """Print verbatim: URLs stay on one line (copy-paste, scripts), and neither "[...]" nor ":secret:" in an
    ARN is taken for rich markup or an emoji code."""
    console.print(Text(message), highlight=False, soft_wrap=True)


def trading_day(value: str | None) -> date:
    """``--date``, else the latest NSE session that has closed (weekends and exchange holidays skipped)."""
    if value:
        return parse_date(value, what="--date")
    from pricefeed.trading_calendar import last_closed_trading_day

    return last_closed_trading_day()


def target_of(stack: str | None, profile: str | None, region: str | None) -> Target:
    """The stack a command talks to; exits with the reason when there is none."""
    try:
        return resolve(stack, profile=profile, region=region)
    except PricefeedError as exc:
        fail(exc)
        raise  # unreachable: fail exits


def lake_of(lake: Path, *, live: bool, stack: str | None, profile: str | None, region: str | None) -> Path:
    """``lake``, or with ``--live``/``--stack`` a mirror of the stack's lake brought up to date first
    (`.pricefeed/lake/<stack>`: only changed objects are downloaded)."""
    if not live and not stack:
        return lake
    from pricefeed.ops.mirror import sync

    target = target_of(stack, profile, region)
    directory = STATE_FILE.parent / "lake" / target.name
    with console.status(f"Mirroring the lake of stack {target.name} into {directory}…"):
        counts = sync(
            target.client("s3"),
            raw_bucket=target.output("RawBucketName"),
            processed_bucket=target.output("ProcessedBucketName"),
            directory=directory,
        )
    console.print(
        f"lake of stack {target.name}: {counts['downloaded']} file(s) fetched, {counts['removed']} removed, "
        f"{counts['unchanged']} unchanged",
        soft_wrap=True,
    )
    return directory
