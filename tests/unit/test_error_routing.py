"""Each named error of the ingest Lambda takes the route the ASL file promises, run by moto's interpreter.

The child workflow of the real "Ingest every symbol" Distributed Map (what one ticker runs) is taken from
statemachine/ingest_pipeline.asl.json as it is, its two Lambdas scripted: transient errors are retried
(1 + MaxAttempts invocations) before the dead letter; permanent ones go to the dead letter at once; the
ticker's child execution ends FAILED with the error's name, which is what the console's Map graph shows.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from aslkit import REGION, Script, account_id, create_function, make_role, wait_for

from pricefeed import errors
from pricefeed.local import motopatch

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "ingest_pipeline.asl.json"
ITEM = {
    "symbol": "NSE:SBIN-EQ",
    "from": "2026-11-25",
    "to": "2026-11-25",
    "incremental": False,
    "ingested_prefix": "ohlcv/runs/r1/ingested/",
    "run_id": "r1",
}


def child_workflow(ingest_arn: str, record_arn: str) -> str:
    """The Map's item processor from the ASL file, as a state machine of its own."""
    definition = json.loads(ASL.read_text())
    processor = definition["States"]["Ingest every symbol"]["ItemProcessor"]
    text = json.dumps({"StartAt": processor["StartAt"], "States": processor["States"]})
    text = text.replace("${IngestSymbolFunctionArn}", ingest_arn).replace("${RecordFailureFunctionArn}", record_arn)
    return motopatch.create_executable_state_machine(
        account=account_id(), region=REGION, name="ticker", definition=text, role_arn=make_role()
    )


def transient_retry_attempts() -> int:
    processor = json.loads(ASL.read_text())["States"]["Ingest every symbol"]["ItemProcessor"]
    task = processor["States"][processor["StartAt"]]
    (rule,) = [r for r in task["Retry"] if "TransientFyersError" in r["ErrorEquals"]]
    return rule["MaxAttempts"]


def run_ticker(ingest: Script) -> tuple[dict, Script]:
    record = Script()
    machine = child_workflow(create_function("ingest", ingest), create_function("record", record))
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps(ITEM))["executionArn"]
    return wait_for(sfn, arn), record


@pytest.mark.parametrize("error", ["TransientFyersError", "RateLimited", "TransientStorageError"])
def test_a_transient_error_is_retried_then_dead_lettered(aws, error):
    attempts = 1 + transient_retry_attempts()
    ingest = Script(*[error] * attempts)

    outcome, record = run_ticker(ingest)

    assert len(ingest.events) == attempts
    assert [e["attempt"] for e in ingest.events] == list(range(attempts))  # $$.State.RetryCount reaches the Lambda
    assert outcome["status"] == "FAILED" and outcome["error"] == error
    (letter_event,) = record.events
    assert letter_event["error"]["Error"] == error
    assert {k: letter_event[k] for k in ("symbol", "from", "to", "run_id")} == {
        k: ITEM[k] for k in ("symbol", "from", "to", "run_id")
    }


@pytest.mark.parametrize(
    "error",
    [
        "InvalidSymbol",
        "BadRequest",
        "FyersPermissionDenied",
        "TokenExpired",
        "NotLoggedIn",
        "RateBudgetExhausted",
        "InvalidInput",
        "StorageError",
    ],
)
def test_a_permanent_error_goes_to_the_dead_letter_without_a_retry(aws, error):
    assert issubclass(getattr(errors, error), errors.PricefeedError)
    ingest = Script(error)

    outcome, record = run_ticker(ingest)

    assert len(ingest.events) == 1
    assert outcome["status"] == "FAILED" and outcome["error"] == error
    assert [e["error"]["Error"] for e in record.events] == [error]


def test_a_lambda_platform_error_is_retried_and_the_ticker_then_succeeds(aws):
    ingest = Script("Lambda.ServiceException", "Lambda.TooManyRequestsException")

    outcome, record = run_ticker(ingest)

    assert len(ingest.events) == 3 and record.events == []
    assert outcome["status"] == "SUCCEEDED"


def test_a_transient_error_that_clears_succeeds_without_a_dead_letter(aws):
    ingest = Script("TransientFyersError", "RateLimited")

    outcome, record = run_ticker(ingest)

    assert len(ingest.events) == 3 and record.events == []
    assert outcome["status"] == "SUCCEEDED"
    assert json.loads(outcome["output"])["echo"]["symbol"] == "NSE:SBIN-EQ"


def test_aws_failures_are_named_by_whether_a_retry_can_help():
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    def client_error(code: str, status: int) -> ClientError:
        answer = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return ClientError(answer, "PutObject")

    assert type(errors.storage_error(client_error("InternalError", 500))) is errors.TransientStorageError
    assert type(errors.storage_error(client_error("SlowDown", 503))) is errors.TransientStorageError
    assert type(errors.storage_error(client_error("ProvisionedThroughputExceededException", 400))) is (
        errors.TransientStorageError
    )
    assert type(errors.storage_error(client_error("AccessDenied", 403))) is errors.StorageError
    assert type(errors.storage_error(EndpointConnectionError(endpoint_url="http://x"))) is errors.TransientStorageError
    assert type(errors.storage_error(NoCredentialsError())) is errors.StorageError
    assert str(errors.storage_error(client_error("SlowDown", 503))) == "PutObject failed: SlowDown (HTTP 503)"
