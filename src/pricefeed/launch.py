"""Start a run of the state machine from the command line and follow it: the input, an ad-hoc ticker list,
and how far the run has got (from the run's own artefacts in the raw bucket, the same on AWS and locally).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pricefeed.errors import InvalidInput
from pricefeed.istime import parse_date
from pricefeed.plan import run_prefix
from pricefeed.tickers import parse_ticker_csv

#: Where a run's own ticker list goes, so the stack's daily list is left alone.
ADHOC_PREFIX = "config/adhoc/"


@dataclass(frozen=True)
class Progress:
    """``planned`` is None until the plan step has written the run's item list."""

    status: str
    planned: int | None
    ingested: int


def execution_input(*, day: str | None, first: str | None, last: str | None) -> dict:
    """The state machine input for ``--date`` or ``--from/--to`` (none: an incremental run for IST today)."""
    if day and (first or last):
        raise InvalidInput("give --date or --from/--to, not both")
    if bool(first) != bool(last):
        raise InvalidInput("--from and --to go together")
    if day:
        return {"date": parse_date(day, what="--date").isoformat()}
    if first:
        start, end = parse_date(first, what="--from"), parse_date(last, what="--to")
        if end < start:
            raise InvalidInput(f"--to {end} is before --from {start}")
        return {"from": start.isoformat(), "to": end.isoformat()}
    return {}


def ticker_csv(*, tickers: Path | None, symbols: str | None) -> str | None:
    """The run's own ticker list as CSV text (checked here, so a bad list fails before anything starts)."""
    if tickers and symbols:
        raise InvalidInput("give --tickers or --symbols, not both")
    if tickers:
        if not tickers.is_file():
            raise InvalidInput(f"ticker list {tickers} does not exist")
        text = tickers.read_text(encoding="utf-8")
    elif symbols:
        text = "symbol\n" + "".join(f"{s.strip()}\n" for s in symbols.split(",") if s.strip())
    else:
        return None
    source = str(tickers or "--symbols")
    checked = parse_ticker_csv(text, source=source)
    if checked.rejected:  # at the keyboard a typo is better refused than silently left out
        bad = "; ".join(f"line {r['line']}: {r['reason']}" for r in checked.rejected[:5])
        raise InvalidInput(f"{source}: {len(checked.rejected)} row(s) rejected: {bad}")
    return text


def start_run(sfn: Any, s3: Any, *, state_machine_arn: str, raw_bucket: str, run_input: dict, csv: str | None) -> str:
    """Start an execution (its name is the run id); an ad-hoc ticker list is uploaded first. Returns its ARN."""
    name = f"cli-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"
    if csv is not None:
        key = f"{ADHOC_PREFIX}{name}.csv"
        s3.put_object(Bucket=raw_bucket, Key=key, Body=csv.encode(), ContentType="text/csv")
        run_input = {**run_input, "tickers_key": key}
    answer = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(run_input))
    return answer["executionArn"]


def progress(sfn: Any, s3: Any, *, raw_bucket: str, execution_arn: str) -> Progress:
    """Where a run is: its status, how many tickers it planned, how many have been ingested so far."""
    described = sfn.describe_execution(executionArn=execution_arn)
    prefix = run_prefix(described["name"])
    try:
        items = json.loads(s3.get_object(Bucket=raw_bucket, Key=prefix + "items.json")["Body"].read())
        planned: int | None = len(items)
    except s3.exceptions.NoSuchKey:
        planned = None
    ingested = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=raw_bucket, Prefix=prefix + "ingested/"):
        ingested += len(page.get("Contents", []))
    return Progress(described["status"], planned, ingested)
