"""Planning a run: the execution input it accepts, and the item list it leaves in S3 for the Map."""

import json
import re
from datetime import UTC, date, datetime

import boto3
import pytest

from pricefeed.errors import InvalidInput
from pricefeed.plan import PlanRequest, plan_run

BUCKET = "pricefeed-raw"
DEFAULT_KEY = "config/nse_tickers.csv"
NOW = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)  # already 2026-11-26 01:30 in IST


# --- PlanRequest.parse --------------------------------------------------------------------------
def test_an_explicit_date_and_tickers_key_are_taken_as_given():
    request = PlanRequest.parse(
        {"run_id": "run-1", "input": {"date": "2026-11-20", "tickers_key": "config/small.csv"}}, now=NOW
    )
    assert request == PlanRequest("run-1", date(2026, 11, 20), "config/small.csv")


@pytest.mark.parametrize("given_input", [None, {}, {"date": None}, {"date": ""}])
def test_without_a_date_the_run_is_for_today_in_ist_not_utc(given_input):
    # Given a scheduled run at 20:00 UTC on the 25th, which is 01:30 on the 26th in India
    event = {"run_id": "nightly"} if given_input is None else {"run_id": "nightly", "input": given_input}
    # When the event is parsed
    request = PlanRequest.parse(event, now=NOW)
    # Then the trading date is the IST date
    assert request.trading_date == date(2026, 11, 26)
    assert request.tickers_key is None


def test_just_before_ist_midnight_the_default_date_is_still_the_same_ist_day():
    assert PlanRequest.parse({"run_id": "r"}, now=datetime(2026, 11, 25, 18, 29, 59, tzinfo=UTC)).trading_date == (
        date(2026, 11, 25)
    )


@pytest.mark.parametrize(
    "event",
    [{}, {"run_id": ""}, {"run_id": None}, {"run_id": 42}, {"run_id": "a/b"}, {"input": {"date": "2026-11-25"}}],
)
def test_a_missing_or_unsafe_run_id_is_rejected(event):
    with pytest.raises(InvalidInput, match="run_id"):
        PlanRequest.parse(event, now=NOW)


@pytest.mark.parametrize("event", [None, [], "run-1", 7])
def test_an_event_that_is_not_an_object_is_rejected(event):
    with pytest.raises(InvalidInput, match="plan event must be an object"):
        PlanRequest.parse(event, now=NOW)


@pytest.mark.parametrize("given_input", [["2026-11-25"], "2026-11-25", 5])
def test_execution_input_that_is_not_an_object_is_rejected(given_input):
    with pytest.raises(InvalidInput, match="execution input must be a JSON object"):
        PlanRequest.parse({"run_id": "r", "input": given_input}, now=NOW)


def test_unknown_input_fields_are_rejected_and_named():
    # Given an operator who misspelled "date"
    with pytest.raises(InvalidInput, match="unknown field\\(s\\): day, symbols"):
        PlanRequest.parse({"run_id": "r", "input": {"day": "2026-11-25", "symbols": ["NSE:SBIN-EQ"]}}, now=NOW)


@pytest.mark.parametrize("bad", ["25-11-2026", "2026-13-01", "2026-02-30", "yesterday", 20261125, ["2026-11-25"]])
def test_a_bad_date_is_rejected_naming_the_input_field(bad):
    with pytest.raises(InvalidInput, match="execution input 'date'"):
        PlanRequest.parse({"run_id": "r", "input": {"date": bad}}, now=NOW)


@pytest.mark.parametrize("bad", ["", 5, ["config/x.csv"]])
def test_a_bad_tickers_key_is_rejected(bad):
    with pytest.raises(InvalidInput, match="tickers_key"):
        PlanRequest.parse({"run_id": "r", "input": {"date": "2026-11-25", "tickers_key": bad}}, now=NOW)


# --- plan_run on S3 -----------------------------------------------------------------------------
@pytest.fixture
def s3(mocked_aws):
    client = boto3.client("s3", region_name=mocked_aws)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": mocked_aws})
    return client


def read_json(s3, key: str):
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def plan(s3, request: PlanRequest) -> dict:
    return plan_run(request, s3=s3, raw_bucket=BUCKET, ticker_list_key=DEFAULT_KEY, map_concurrency=7)


def test_plan_writes_the_map_items_and_the_symbols_of_the_day(s3):
    # Given a ticker list with a duplicate and a malformed row
    s3.put_object(
        Bucket=BUCKET,
        Key=DEFAULT_KEY,
        Body=b"symbol,name\nNSE:SBIN-EQ,SBI\nNSE:M&M-EQ,M&M\nNSE:SBIN-EQ,again\nSBIN,bad\n",
    )
    # When a run is planned
    result = plan(s3, PlanRequest("run-42", date(2026, 11, 25)))
    # Then the Map's item list and the day's symbol list are in the run's folder
    assert read_json(s3, "ohlcv/runs/run-42/items.json") == [{"symbol": "NSE:SBIN-EQ"}, {"symbol": "NSE:M&M-EQ"}]
    assert read_json(s3, "ohlcv/runs/run-42/symbols.json") == {
        "date": "2026-11-25",
        "symbols": ["NSE:SBIN-EQ", "NSE:M&M-EQ"],
    }
    # And the result tells the state machine where they are and the operator what was dropped
    assert result["items_key"] == "ohlcv/runs/run-42/items.json"
    assert result["symbols_key"] == "ohlcv/runs/run-42/symbols.json"
    assert result["result_key"].startswith("ohlcv/runs/run-42/")
    assert result["run_id"] == "run-42"
    assert result["date"] == "2026-11-25"
    assert result["tickers_key"] == DEFAULT_KEY
    assert result["count"] == 2
    assert result["duplicates"] == 1
    assert result["rejected_count"] == 1
    assert [(r["line"], r["value"]) for r in result["rejected"]] == [(5, "SBIN")]
    assert result["max_concurrency"] == 7
    assert result["tolerated_failure_percentage"] == 100
    json.dumps(result)  # the Lambda returns it as JSON


def test_the_reported_rejections_are_capped_but_counted_in_full(s3):
    body = "symbol\nNSE:SBIN-EQ\n" + "bad\n" * 250
    s3.put_object(Bucket=BUCKET, Key=DEFAULT_KEY, Body=body.encode())
    result = plan(s3, PlanRequest("r", date(2026, 11, 25)))
    assert len(result["rejected"]) == 100
    assert result["rejected_count"] == 250


def test_a_tickers_key_in_the_input_overrides_the_configured_list(s3):
    s3.put_object(Bucket=BUCKET, Key=DEFAULT_KEY, Body=b"symbol\nNSE:SBIN-EQ\n")
    s3.put_object(Bucket=BUCKET, Key="config/one-off.csv", Body=b"symbol\nNSE:INFY-EQ\n")
    result = plan(s3, PlanRequest("r", date(2026, 11, 25), "config/one-off.csv"))
    assert result["tickers_key"] == "config/one-off.csv"
    assert read_json(s3, result["items_key"]) == [{"symbol": "NSE:INFY-EQ"}]


def test_a_missing_ticker_list_is_an_invalid_input_naming_its_s3_url(s3):
    with pytest.raises(InvalidInput, match=re.escape(f"s3://{BUCKET}/{DEFAULT_KEY} does not exist")):
        plan(s3, PlanRequest("r", date(2026, 11, 25)))
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="ohlcv/runs/")


def test_a_ticker_list_that_is_not_utf8_is_an_invalid_input(s3):
    # Given a list saved in Latin-1 by a spreadsheet
    s3.put_object(Bucket=BUCKET, Key=DEFAULT_KEY, Body="symbol,name\nNSE:SBIN-EQ,Société\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match=re.escape(f"s3://{BUCKET}/{DEFAULT_KEY} is not UTF-8")):
        plan(s3, PlanRequest("r", date(2026, 11, 25)))


def test_a_list_without_valid_symbols_fails_naming_the_s3_url_and_writes_nothing(s3):
    s3.put_object(Bucket=BUCKET, Key=DEFAULT_KEY, Body=b"ticker\nNSE:SBIN-EQ\n")
    named = re.escape(f"ticker list s3://{BUCKET}/{DEFAULT_KEY}: ") + ".*'symbol' column"
    with pytest.raises(InvalidInput, match=named):
        plan(s3, PlanRequest("r", date(2026, 11, 25)))
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="ohlcv/runs/")
