"""A Standard execution fails at 25,000 history events, as on AWS; moto alone lets the history grow for ever.

The loops here are the pattern that reaches the limit in real workflows (a state machine that pages or polls in
a loop). Each run takes about two seconds: the limit is the real one, not a smaller stand-in.
"""

from __future__ import annotations

import json

import boto3
import pytest
from aslkit import REGION, account_id, make_role, wait_for

from pricefeed.local import motopatch
from pricefeed.local.motopatch.history import HISTORY_EVENT_LIMIT

DEADLINE_S = 120.0


def loop(body: dict, *, iterations: int) -> dict:
    """``body`` (one state named "Step", whose Next is "More?") runs ``iterations`` times."""
    return {
        "StartAt": "Start",
        "States": {
            "Start": {"Type": "Pass", "Result": {"n": 0}, "Next": "Step"},
            "Step": body,
            "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "More?"},
            "More?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.n", "NumericLessThan": iterations, "Next": "Step"}],
                "Default": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }


def run(definition: dict) -> tuple[dict, dict]:
    """The execution's outcome (with its ARN) and its last history event (whose id is the number of events)."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = motopatch.create_executable_state_machine(
        account=account_id(), region=REGION, name="looping", definition=json.dumps(definition), role_arn=make_role()
    )
    execution = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    outcome = wait_for(sfn, execution, deadline_s=DEADLINE_S) | {"arn": execution}
    (last,) = sfn.get_execution_history(executionArn=execution, reverseOrder=True, maxResults=1)["events"]
    return outcome, last


def test_an_execution_that_reaches_25000_events_fails_with_aws_cause(aws):
    # Pass + Pass + Choice: 6 events an iteration, so 5,000 iterations would need 30,000.
    definition = loop({"Type": "Pass", "Next": "Count"}, iterations=5_000)

    outcome, last = run(definition)

    assert outcome["status"] == "FAILED"
    assert outcome["error"] == "States.Runtime"
    assert outcome["cause"] == "The execution reached the maximum number of history events (25000)."
    assert last["type"] == "ExecutionFailed"
    assert last["executionFailedEventDetails"]["error"] == "States.Runtime"
    assert HISTORY_EVENT_LIMIT < last["id"] <= HISTORY_EVENT_LIMIT + 8  # it stopped where it reached the limit


def test_catch_all_does_not_swallow_the_full_history(aws):
    """A Parallel whose Catch takes States.ALL still fails: States.ALL does not match States.Runtime, and the
    branch (an inner frame of the same execution) shares its history."""
    branch = loop({"Type": "Pass", "Next": "Count"}, iterations=5_000)
    definition = {
        "StartAt": "Pages",
        "States": {
            "Pages": {
                "Type": "Parallel",
                "Branches": [branch],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Succeed"},
        },
    }

    outcome, last = run(definition)

    assert (outcome["status"], outcome["error"]) == ("FAILED", "States.Runtime")
    assert outcome["cause"] == "The execution reached the maximum number of history events (25000)."
    assert last["type"] == "ExecutionFailed"  # not the Catch's Succeed


def test_history_pages_as_on_aws(aws):
    """moto answered every event in one page whatever was asked; a reader that forgets to page must see it."""
    outcome, _ = run(loop({"Type": "Pass", "Next": "Count"}, iterations=60))  # 6 events an iteration
    sfn, arn = boto3.client("stepfunctions", region_name=REGION), outcome["arn"]

    first = sfn.get_execution_history(executionArn=arn)
    paginator = sfn.get_paginator("get_execution_history")
    pages = list(paginator.paginate(executionArn=arn, PaginationConfig={"PageSize": 70}))
    newest = sfn.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=3)["events"]

    assert len(first["events"]) == 100 and "nextToken" in first
    ids = [e["id"] for page in pages for e in page["events"]]
    assert ids == list(range(1, len(ids) + 1)) and len(ids) > 360
    assert [len(p["events"]) for p in pages][:-1] == [70] * (len(pages) - 1)
    assert [e["id"] for e in newest] == [len(ids), len(ids) - 1, len(ids) - 2]
    assert newest[0]["type"] == "ExecutionSucceeded"
    with pytest.raises(sfn.exceptions.InvalidToken):
        sfn.get_execution_history(executionArn=arn, nextToken="not-a-token")
