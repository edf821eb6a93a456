"""What a user asks after a run: how did the last runs go, which tickers failed and why, where are the holes.

Read-only over a deployed (or local) stack: Step Functions for the executions, the raw bucket for the
run's plan, dead letters and the aggregation result. Works the same against AWS and the local stack.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from typing import Any

from pricefeed.errors import InvalidInput, shown
from pricefeed.ingest.dead_letters import reason
from pricefeed.lake.paths import DEAD_LETTER_ROOT, RunKeys

#: The state a run without a Fyers login waits in (statemachine/ingest_pipeline.asl.json).
WAIT_STATE = "Wait for today's Fyers login"
#: Dead letters of one run are read from the run's date folders only (a run names its from/to dates).
MAX_DAYS_SCANNED = 400


_EXECUTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:([A-Za-z0-9_-]{1,80}):[A-Za-z0-9_-]{1,80}$"
)
_RUN_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def execution_arn(value: str, state_machine_arn: str) -> str:
    """``--execution`` as an execution ARN of this stack's state machine: an ARN is checked, a run's name (what
    `pricefeed run` prints, ``cli-20261125T101500-ab12cd``) is made one. ``InvalidInput`` naming the value else."""
    value = value.strip()
    machine = state_machine_arn.split(":")  # arn:aws:states:<region>:<account>:stateMachine:<name>
    found = _EXECUTION_ARN.match(value)
    if found is not None:
        if found.group(1) != machine[-1]:
            raise InvalidInput(f"--execution {value} is a run of state machine {found.group(1)}, not of this "
                               f"stack's {machine[-1]}")
        return value
    if _RUN_NAME.match(value):
        return ":".join([*machine[:5], "execution", machine[-1], value])
    raise InvalidInput(
        f"--execution {shown(value)} is neither an execution ARN (arn:aws:states:…:execution:…) nor a run name "
        "(such as cli-20261125T101500-ab12cd): `pricefeed status` lists the runs"
    )


def recent_runs(sfn: Any, state_machine_arn: str, *, last: int = 5) -> list[dict]:
    """The newest ``last`` executions: name, status, start and stop (ISO), newest first."""
    answer = sfn.list_executions(stateMachineArn=state_machine_arn, maxResults=max(1, min(last, 100)))
    runs = sorted(answer.get("executions", []), key=lambda e: e["startDate"], reverse=True)[:last]
    return [
        {
            "name": e["name"],
            "arn": e["executionArn"],
            "status": e["status"],
            "started": e["startDate"].isoformat(),
            "stopped": e["stopDate"].isoformat() if e.get("stopDate") else None,
        }
        for e in runs
    ]


def run_status(sfn: Any, s3: Any, *, raw_bucket: str, execution_arn: str) -> dict:
    """One run in brief: status, the plan's counts, every dead letter of the run (ticker, error, reason,
    attempts), and the coverage holes the aggregation reported. ``InvalidInput`` for an unknown execution."""
    try:
        described = sfn.describe_execution(executionArn=execution_arn)
    except sfn.exceptions.ExecutionDoesNotExist:
        name = execution_arn.rsplit(":", 1)[-1]
        raise InvalidInput(f"no run {name} on this stack (execution {execution_arn} does not exist)") from None
    except sfn.exceptions.InvalidArn:
        raise InvalidInput(f"execution {shown(execution_arn)} is not an execution ARN") from None
    output = json.loads(described.get("output") or "{}")
    run_input = json.loads(described.get("input") or "{}")
    status: dict[str, Any] = {
        "name": described["name"],
        "status": described["status"],
        "error": described.get("error"),
        "cause": (described.get("cause") or "")[:500] or None,
        "input": run_input,
        "planned": output.get("count"),
        "unknown": [u.get("symbol") for u in output.get("unknown", [])],
        "from": output.get("from"),
        "to": output.get("to"),
        "incremental": output.get("incremental"),
        "partitions": output.get("partitions"),
        "tickers_key": output.get("tickers_key") or run_input.get("tickers_key"),
    }
    running = described["status"] == "RUNNING"
    status["waiting_for_login_since"] = waiting_for_login(sfn, execution_arn) if running else None
    status["dead_letters"] = _dead_letters(s3, raw_bucket, described["name"], output)
    status["coverage"] = _coverage(s3, raw_bucket, output.get("result_key"))
    return status


def waiting_for_login(sfn: Any, execution_arn: str) -> str | None:
    """When the run waits in "Wait for today's Fyers login" now: since when (ISO); else ``None``."""
    events = sfn.get_execution_history(executionArn=execution_arn, reverseOrder=True, maxResults=20)["events"]
    for event in events:  # newest first: the last state entered or left decides
        if "stateExitedEventDetails" in event:
            return None
        if "stateEnteredEventDetails" in event:
            return event["timestamp"].isoformat() if event["stateEnteredEventDetails"]["name"] == WAIT_STATE else None
    return None


def _dead_letters(s3: Any, bucket: str, run_id: str, output: dict) -> list[dict]:
    """The run's dead letters: through its failure notes (``ohlcv/runs/<run>/failed/``), else (runs made
    before those notes existed) by scanning the dead letters of the run's dates."""
    noted = [
        json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())["dead_letter_key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=RunKeys(run_id).failed_prefix)
        for obj in page.get("Contents", [])
    ]
    if noted:
        return sorted((_letter(s3, bucket, key)[1] for key in noted), key=lambda d: (d["symbol"] or "", d["key"]))
    if not output.get("from") or not output.get("to"):
        return []
    first, last = date.fromisoformat(output["from"]), date.fromisoformat(output["to"])
    if (last - first).days > MAX_DAYS_SCANNED:
        first = last - timedelta(days=MAX_DAYS_SCANNED)
    wanted = {(first + timedelta(days=i)).strftime("year=%Y/month=%m/day=%d/") for i in range((last - first).days + 1)}
    letters = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=DEAD_LETTER_ROOT):
        for obj in page.get("Contents", []):
            day_folder = "/".join(obj["Key"].split("/")[3:6]) + "/"
            if day_folder not in wanted:
                continue
            letter_run, letter = _letter(s3, bucket, obj["Key"])
            if letter_run == run_id:
                letters.append(letter)
    return sorted(letters, key=lambda d: (d["symbol"] or "", d["key"]))


def _letter(s3: Any, bucket: str, key: str) -> tuple[str | None, dict]:
    """(the letter's run id, what status shows of it)."""
    letter = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return letter.get("run_id"), {
        "symbol": letter.get("symbol"),
        "error_type": letter.get("error_type"),
        "reason": reason(letter, 200),
        "attempts": letter.get("attempts"),
        "key": key,
    }


def _coverage(s3: Any, bucket: str, result_key: str | None) -> dict | None:
    if not result_key:
        return None
    try:
        result = json.loads(s3.get_object(Bucket=bucket, Key=result_key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None  # the run stopped before the aggregation wrote its result
    return result.get("coverage")
