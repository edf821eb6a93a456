"""Start a run of the state machine from the command line and follow it: the input, an ad-hoc ticker list,
and how far the run has got (from the run's own artefacts in the raw bucket, the same on AWS and locally).
"""

from __future__ import annotations

import codecs
import json
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pricefeed.errors import InvalidInput
from pricefeed.ingest.tickers import parse_ticker_csv
from pricefeed.istime import MINUTE_HISTORY_START, days, ist_today, parse_date
from pricefeed.lake.paths import RunKeys
from pricefeed.symbol import Symbol

#: Where a run's own ticker list goes, so the stack's daily list is left alone.
ADHOC_PREFIX = "config/adhoc/"


@dataclass(frozen=True)
class Progress:
    """``planned`` is None until the plan step has written the run's item list. ``failed`` counts planned
    tickers dead-lettered so far; ``unknown`` the symbols the plan dead-lettered as unknown to Fyers."""

    status: str
    planned: int | None
    ingested: int
    failed: int = 0
    unknown: int = 0


def execution_input(*, day: str | None, first: str | None, last: str | None, now: datetime | None = None) -> dict:
    """The state machine input for ``--date`` or ``--from/--to`` (none: an incremental run for IST today), checked
    as the plan would check it (a real date, not after IST today, not before Fyers' minute history), so a bad one
    is refused here, before an execution starts and fails."""
    if day and (first or last):
        raise InvalidInput("give --date or --from/--to, not both")
    if bool(first) != bool(last):
        raise InvalidInput("--from and --to go together")
    today = ist_today(now)
    if day:
        return {"date": _run_date(day, "--date", today).isoformat()}
    if first:
        start, end = _run_date(first, "--from", today), _run_date(last, "--to", today)
        if end < start:
            raise InvalidInput(f"--to {end} is before --from {start}")
        return {"from": start.isoformat(), "to": end.isoformat()}
    return {}


def _run_date(value: str, name: str, today: date) -> date:
    day = parse_date(value.strip(), what=name)
    if day > today:
        raise InvalidInput(f"{name} {day} is in the future (today in IST is {today})")
    if day < MINUTE_HISTORY_START:
        raise InvalidInput(f"{name} {day} is before {MINUTE_HISTORY_START}, where Fyers' minute history starts")
    return day


def check_trading_days(run_input: dict, csv: str | None) -> None:
    """``InvalidInput`` when no date of an explicit run has a session for any of its tickers (the stack's own list:
    NSE's): "2026-11-28 is not an NSE trading day (Saturday)", before a request is spent on it."""
    if "date" in run_input:
        first = last = date.fromisoformat(run_input["date"])
    elif "from" in run_input:
        first, last = date.fromisoformat(run_input["from"]), date.fromisoformat(run_input["to"])
    else:
        return
    from pricefeed.trading_calendar import DEFAULT_CALENDAR

    symbols = parse_ticker_csv(csv).symbols if csv is not None else [Symbol("NSE", "NIFTY50-INDEX")]
    if any(DEFAULT_CALENDAR.is_trading_day(d, s) for d in days(first, last) for s in symbols):
        return
    where = "an NSE trading day" if all(s.exchange in ("NSE", "BSE") for s in symbols) else "a trading day"
    if first == last:
        why = first.strftime("%A") if first.weekday() >= 5 else "an exchange holiday"
        raise InvalidInput(f"{first} is not {where} ({why}): there is nothing to fetch")
    raise InvalidInput(f"{first} .. {last} holds no trading day for these tickers: there is nothing to fetch")


def read_ticker_file(path: Path) -> str:
    """A ticker CSV's text: UTF-8 (with or without a BOM), or UTF-16 with its BOM (Excel's "Unicode Text");
    anything else is refused naming the file, the offending byte and how to save it."""
    if not path.is_file():
        raise InvalidInput(f"ticker list {path} does not exist")
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"ticker list {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}): "
            "save it as \"CSV UTF-8\""
        ) from None


def ticker_csv(*, tickers: Path | None, symbols: str | None) -> str | None:
    """The run's own ticker list as CSV text, checked here so a list without one good row fails before anything
    starts; rows that are not a symbol are left out, each reported by :func:`rejected_rows` (the plan would
    reject them too), and the rest run."""
    if tickers and symbols is not None:
        raise InvalidInput("give --tickers or --symbols, not both")
    if tickers:
        text = read_ticker_file(tickers)
    elif symbols is not None:
        names = [s.strip() for s in symbols.split(",") if s.strip()]
        if not names:
            raise InvalidInput("--symbols is empty: give Fyers symbols such as NSE:SBIN-EQ,NSE:INFY-EQ")
        text = "symbol\n" + "".join(f"{s}\n" for s in names)
    else:
        return None
    parse_ticker_csv(text, source=str(tickers or "--symbols"))
    return text


def failure_line(error: str | None, cause: str | None) -> str:
    """A failed run's reason as one readable line: the error name and the message inside a Lambda's or Glue's JSON
    cause (its ``errorMessage``), without the request id, stack trace or JSON around it."""
    message = (cause or "").strip()
    try:
        parsed = json.loads(message) if message.startswith("{") else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        found = next((parsed[k] for k in ("errorMessage", "ErrorMessage", "message", "Message") if k in parsed), None)
        message = str(found) if found is not None else ""
    message = " ".join(message.split())
    message = message if len(message) <= 300 else message[:299] + "…"
    name = error or "failed"
    return f"{name}: {message}" if message and message != name else name


def rejected_rows(csv: str, source: str) -> list[str]:
    """One line per row of ``csv`` that is not a symbol: "nse_tickers.csv line 4: ..." (empty when all are)."""
    return [f"{source} line {r['line']}: {r['reason']}" for r in parse_ticker_csv(csv, source=source).rejected]


def start_run(sfn: Any, s3: Any, *, state_machine_arn: str, raw_bucket: str, run_input: dict, csv: str | None) -> str:
    """Start an execution (its name is the run id); an ad-hoc ticker list is uploaded first. Returns its ARN."""
    name = f"cli-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"
    if csv is not None:
        key = f"{ADHOC_PREFIX}{name}.csv"
        s3.put_object(Bucket=raw_bucket, Key=key, Body=csv.encode(), ContentType="text/csv")
        run_input = {**run_input, "tickers_key": key}
    answer = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(run_input))
    return answer["executionArn"]


def progress(sfn: Any, s3: Any, *, raw_bucket: str, execution_arn: str, seen: dict | None = None) -> Progress:
    """Where a run is: its status, tickers planned, ingested and failed so far. Pass the same ``seen`` dict
    on every poll of one run, so each failure note is read once."""
    described = sfn.describe_execution(executionArn=execution_arn)
    keys = RunKeys(described["name"])
    try:
        items = json.loads(s3.get_object(Bucket=raw_bucket, Key=keys.items)["Body"].read())
        planned: int | None = len(items)
    except s3.exceptions.NoSuchKey:
        planned = None
    seen = {} if seen is None else seen
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=raw_bucket, Prefix=keys.failed_prefix):
        for obj in page.get("Contents", []):
            if obj["Key"] not in seen:  # attempts 0: the plan found the symbol unknown (never a Map item)
                note = json.loads(s3.get_object(Bucket=raw_bucket, Key=obj["Key"])["Body"].read())
                seen[obj["Key"]] = note.get("attempts") == 0
    unknown = sum(seen.values())
    return Progress(
        described["status"], planned, _count(s3, raw_bucket, keys.ingested_prefix), len(seen) - unknown, unknown
    )


def _count(s3: Any, bucket: str, prefix: str) -> int:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sum(len(page.get("Contents", [])) for page in pages)


def redrive_input(run: dict, *, include_unknown: bool = False) -> tuple[dict, str | None, str]:
    """What `pricefeed redrive` starts for ``run`` (a :func:`pricefeed.ops.status.run_status` result):
    (execution input, ticker CSV or None, a sentence saying what and why).

    A run that finished: its failed tickers only, over the run's dates, or as a scheduled run when it was one
    (symbols the plan found unknown to Fyers only with ``include_unknown``: they fail again until the list is
    fixed). A run that failed as a whole (e.g. the aggregation job): every ticker of its list, over its dates
    (again: as a scheduled run when it was one). ``InvalidInput`` when there
    is nothing to redrive or the run is still going."""
    name, state = run["name"], run["status"]
    if state == "RUNNING":
        raise InvalidInput(f"run {name} is still running: redrive it once it has finished")
    first, last = run.get("from"), run.get("to")
    dates = ({"date": first} if first == last else {"from": first, "to": last}) if first and last else None
    if run.get("incremental") and dates is not None:
        # a scheduled run again, not its one date: each ticker asks everything it has not settled (the days a
        # lapse left behind included), where `{"date": <today>}` would ask that day only
        dates = {}
    if state != "SUCCEEDED":
        if dates is None:  # it stopped before the plan: the same input again
            return (
                dict(run["input"]),
                None,
                f"run {name} {state} before planning: starting it again with the same input",
            )
        tickers_key = run.get("tickers_key")
        again = {**dates, **({"tickers_key": tickers_key} if tickers_key else {})}
        return again, None, f"run {name} {state} ({run.get('error') or 'no error given'}): redriving all its tickers"
    letters = [d for d in run["dead_letters"] if include_unknown or d.get("attempts") != 0]
    symbols = sorted({d["symbol"] for d in letters if d.get("symbol")})
    if not symbols:
        skipped = len(run["dead_letters"]) - len(letters)
        hint = f" ({skipped} unknown to Fyers: fix the list, or --include-unknown)" if skipped else ""
        raise InvalidInput(f"run {name} has no failed tickers to redrive{hint}")
    csv = "symbol\n" + "".join(f"{s}\n" for s in symbols)
    return dates or {}, csv, f"redriving {len(symbols)} failed ticker(s) of run {name}: {', '.join(symbols[:10])}"
