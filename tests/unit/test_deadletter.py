"""Dead letters: what an operator finds in S3 about a symbol-day that failed for good."""

import json
from datetime import UTC, date, datetime

import boto3
import pytest

from pricefeed.errors import InvalidInput
from pricefeed.ingest.dead_letters import Failure, failure_from_catch, record_failure, with_attempt
from pricefeed.lake import paths
from pricefeed.symbol import Symbol

BUCKET = "pricefeed-raw"
FAILED_AT = datetime(2026, 11, 25, 10, 15, 0, 250000, tzinfo=UTC)
STACK = ['  File "/var/task/app.py", line 31, in handler\n', "    raise InvalidSymbol(...)\n"]


def lambda_cause(error_type: str, message: str, **extra) -> str:
    """A Catch's Cause for a Lambda task: the Lambda error payload, as a JSON string."""
    return json.dumps({"errorType": error_type, "errorMessage": message, **extra})


# --- failure_from_catch -------------------------------------------------------------------------------
def test_a_lambda_error_payload_gives_its_type_message_and_attempt_count():
    # Given the Catch output of an ingest that failed on its third attempt
    error = {
        "Error": "InvalidSymbol",
        "Cause": lambda_cause("InvalidSymbol", "attempt 3: Fyers does not know NSE:FOO-EQ", stackTrace=STACK),
    }
    # When it is described / Then the prefix becomes the count and leaves the message
    assert failure_from_catch(error) == Failure("InvalidSymbol", "Fyers does not know NSE:FOO-EQ", 3)


def test_the_payload_error_type_wins_over_the_catch_error_name():
    error = {"Error": "States.TaskFailed", "Cause": lambda_cause("RateLimited", "attempt 12: slow down")}
    assert failure_from_catch(error) == Failure("RateLimited", "slow down", 12)


def test_a_plain_string_cause_is_kept_as_the_message():
    error = {"Error": "States.Timeout", "Cause": "Task timed out after 120.00 seconds"}
    assert failure_from_catch(error) == Failure("States.Timeout", "Task timed out after 120.00 seconds", None)


def test_a_plain_string_cause_with_an_attempt_prefix_is_counted_too():
    assert failure_from_catch({"Error": "X", "Cause": "attempt 2: boom"}) == Failure("X", "boom", 2)


def test_attempt_text_in_the_middle_of_a_message_is_not_an_attempt_count():
    cause = lambda_cause("BadRequest", "range rejected; attempt 4: was the last")
    assert failure_from_catch({"Error": "BadRequest", "Cause": cause}) == Failure(
        "BadRequest",
        "range rejected; attempt 4: was the last",
        None,
    )


def test_cause_json_that_is_not_an_object_is_kept_as_text():
    assert failure_from_catch({"Error": "E", "Cause": "[1, 2]"}) == Failure("E", "[1, 2]", None)


@pytest.mark.parametrize("error", [None, "boom", ["Error"], 3])
def test_missing_error_details_are_described_as_unknown(error):
    assert failure_from_catch(error) == Failure("Unknown", "no error details were passed", None)


def test_an_error_without_name_or_cause_is_unknown_with_an_empty_message():
    assert failure_from_catch({}) == Failure("Unknown", "", None)


def test_very_long_messages_are_cut():
    assert failure_from_catch({"Error": "E", "Cause": lambda_cause("E", "x" * 10_000)}).message == "x" * 2000


def test_the_attempt_the_ingest_puts_in_front_of_its_message_is_read_back_as_data():
    # Given the message an ingest's error leaves its Lambda with on the 5th attempt
    cause = lambda_cause("TransientFyersError", with_attempt("history: HTTP 503", 5))
    # When the Catch output reaches RecordFailure, then the count is data and the message is the error's own
    assert failure_from_catch({"Error": "TransientFyersError", "Cause": cause}) == Failure(
        "TransientFyersError", "history: HTTP 503", 5
    )


# --- record_failure ---------------------------------------------------------------------------------
@pytest.fixture
def s3(mocked_aws):
    client = boto3.client("s3", region_name=mocked_aws)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": mocked_aws})
    return client


def failure_event(**overrides) -> dict:
    """What the state machine's "Record the failure as a dead letter" state sends."""
    event = {
        "symbol": "NSE:M&M-EQ",
        "date": "2026-11-25",
        "run_id": "run-7",
        "error": {
            "Error": "InvalidSymbol",
            "Cause": lambda_cause("InvalidSymbol", "attempt 1: unknown symbol NSE:M&M-EQ", stackTrace=STACK),
        },
        "attempts": 0,
    }
    event.update(overrides)
    return event


def test_a_failure_is_written_as_a_dead_letter_at_the_errors_path(s3):
    # Given an ingest that failed for good
    # When its failure is recorded
    result = record_failure(failure_event(), s3=s3, raw_bucket=BUCKET, now=FAILED_AT)
    # Then the dead letter lies where the operator looks for it
    key = paths.dead_letter_key(Symbol.parse("NSE:M&M-EQ"), date(2026, 11, 25), FAILED_AT)
    assert result == {"dead_letter_key": key}
    obj = s3.get_object(Bucket=BUCKET, Key=key)
    assert obj["ContentType"] == "application/json"
    # And it says what failed, when, how and how often
    letter = json.loads(obj["Body"].read())
    assert letter == {
        "symbol": "NSE:M&M-EQ",
        "trading_date": "2026-11-25",
        "run_id": "run-7",
        "error_type": "InvalidSymbol",
        "error_message": "unknown symbol NSE:M&M-EQ",
        "attempts": 1,
        "failed_at": "2026-11-25T10:15:00.250000Z",
        "input": {"symbol": "NSE:M&M-EQ", "date": "2026-11-25", "run_id": "run-7"},
    }


def test_the_stack_trace_never_reaches_the_dead_letter(s3):
    # Given a Cause whose payload carries a stack trace (Lambda sends one)
    result = record_failure(failure_event(), s3=s3, raw_bucket=BUCKET, now=FAILED_AT)
    body = s3.get_object(Bucket=BUCKET, Key=result["dead_letter_key"])["Body"].read().decode()
    # Then neither the key nor any line of the trace is stored
    assert "stackTrace" not in body
    assert "/var/task/app.py" not in body
    assert "raise InvalidSymbol" not in body


def test_two_failures_of_the_same_symbol_day_keep_both_letters(s3):
    first = record_failure(failure_event(), s3=s3, raw_bucket=BUCKET, now=FAILED_AT)
    later = FAILED_AT.replace(microsecond=250001)
    second = record_failure(failure_event(run_id="run-8"), s3=s3, raw_bucket=BUCKET, now=later)
    assert first != second
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="ohlcv/errors/symbol=M&M-EQ/")["Contents"]
    assert len(listed) == 2


def test_an_event_without_run_id_or_error_still_leaves_a_letter(s3):
    event = {"symbol": "NSE:SBIN-EQ", "date": "2026-11-25"}
    result = record_failure(event, s3=s3, raw_bucket=BUCKET, now=FAILED_AT)
    letter = json.loads(s3.get_object(Bucket=BUCKET, Key=result["dead_letter_key"])["Body"].read())
    assert letter["run_id"] == ""
    assert (letter["error_type"], letter["attempts"]) == ("Unknown", None)


@pytest.mark.parametrize(
    ("event", "named"),
    [
        (None, "'symbol' string"),
        ([], "'symbol' string"),
        ({"date": "2026-11-25"}, "'symbol' string"),
        ({"symbol": 5, "date": "2026-11-25"}, "'symbol' string"),
        ({"symbol": "SBIN-EQ", "date": "2026-11-25"}, "'SBIN-EQ'"),
        ({"symbol": "NSE:SBIN-EQ"}, "failure event 'date'"),
        ({"symbol": "NSE:SBIN-EQ", "date": "25/11/2026"}, "failure event 'date'"),
    ],
)
def test_a_bad_failure_event_is_an_invalid_input_and_writes_nothing(s3, event, named):
    with pytest.raises(InvalidInput, match=named):
        record_failure(event, s3=s3, raw_bucket=BUCKET, now=FAILED_AT)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def test_the_run_notes_which_of_its_tickers_failed_next_to_its_manifests(s3):
    # Given a failure of run-7
    result = record_failure(failure_event(), s3=s3, raw_bucket=BUCKET, now=FAILED_AT)
    # Then the run's folder says so, pointing at the dead letter (what progress and `pricefeed redrive` read)
    marker = json.loads(s3.get_object(Bucket=BUCKET, Key="ohlcv/runs/run-7/failed/NSE/M&M-EQ.json")["Body"].read())
    assert marker == {
        "symbol": "NSE:M&M-EQ",
        "dead_letter_key": result["dead_letter_key"],
        "error_type": "InvalidSymbol",
        "attempts": 1,
    }


@pytest.mark.parametrize("run_id", ["", None, 7, "a/b"])
def test_a_failure_without_a_usable_run_id_still_gets_its_dead_letter_and_no_marker(s3, run_id):
    result = record_failure(failure_event(run_id=run_id), s3=s3, raw_bucket=BUCKET, now=FAILED_AT)
    assert s3.get_object(Bucket=BUCKET, Key=result["dead_letter_key"])
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="ohlcv/runs/")
