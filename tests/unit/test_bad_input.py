"""Bad input is refused with a message naming it, and nothing stored is touched.

The real entry points run in-process on moto: the PlanRun handler (the state machine's input and the ticker
list), the Glue entry script (its job arguments) and the OAuth handler (the callback query). Every S3 object,
secret (value and version) and state-table item is snapshotted before and compared after, byte for byte; a
control case with good input shows that the snapshot does see a write.
"""

from __future__ import annotations

import dataclasses
import json
import runpy
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from handlerkit import lambda_context, load_handler, sample_event
from pricefeed.auth.callback import new_state
from pricefeed.auth.store import APP_CONFIG_ENV, AppConfig
from pricefeed.errors import InvalidInput
from pricefeed.fyers.symbol_master import master_key
from pricefeed.istime import ist_today
from pricefeed.lake.envelope import build_envelope

ROOT = Path(__file__).resolve().parents[2]
RAW, PROCESSED = "pricefeed-raw", "pricefeed-processed"
TICKERS = "config/nse_tickers.csv"
APP = AppConfig(
    app_id="XA1234-100", secret_key="s3cr3t-key", redirect_uri="http://127.0.0.1/oauth/callback", pin="1234"
)
APP_SECRET, TOKEN_SECRET, STATE_TABLE = "pricefeed/app", "pricefeed/tokens", "pricefeed-state"
TOKENS = {
    "access_token": "old-access",
    "refresh_token": "old-refresh",
    "access_expires_at": "2026-11-27T00:30:00+00:00",
    "refresh_expires_at": "2026-12-05T00:30:00+00:00",
    "issued_at": "2026-11-20T03:00:00+00:00",
}
#: Nothing listens here: a handler that tried to reach Fyers would fail loudly, not quietly succeed.
NOWHERE = "http://127.0.0.1:9"

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def snapshot(region: str) -> dict:
    """Every S3 object (bytes), secret (value and versions) and DynamoDB item in the region."""
    s3 = boto3.client("s3", region_name=region)
    secrets = boto3.client("secretsmanager", region_name=region)
    dynamodb = boto3.client("dynamodb", region_name=region)
    objects = {}
    for bucket in s3.list_buckets()["Buckets"]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket["Name"], Key=item["Key"])["Body"].read()
                objects[f"s3://{bucket['Name']}/{item['Key']}"] = body
    stored_secrets = {}
    for secret in secrets.list_secrets()["SecretList"]:
        value = secrets.get_secret_value(SecretId=secret["Name"])
        versions = secrets.list_secret_version_ids(SecretId=secret["Name"])["Versions"]
        stored_secrets[secret["Name"]] = (
            value.get("SecretString"),
            value.get("SecretBinary"),
            sorted(v["VersionId"] for v in versions),
        )
    items = {
        table: sorted(json.dumps(item, sort_keys=True) for item in dynamodb.scan(TableName=table)["Items"])
        for table in dynamodb.list_tables()["TableNames"]
    }
    return {"s3": objects, "secrets": stored_secrets, "dynamodb": items}


@pytest.fixture
def stored(mocked_aws, monkeypatch):
    """A lake, secrets and a state table with something in each; returns the region."""
    region = mocked_aws
    for name in APP_CONFIG_ENV.values():
        monkeypatch.delenv(name, raising=False)
    s3 = boto3.client("s3", region_name=region)
    for bucket in (RAW, PROCESSED):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    today = ist_today()
    master = "".join(
        f"1010000000{i},{t},0,1,0.05,INE0,0915-1530|1815-1915:,2026-10-03,,NSE:{t}-EQ,10,10,{i},{t},{i},-1.0,XX,1,None,None,None\n"
        for i, t in enumerate(["SBIN", "INFY", "TCS"])
    )
    envelope = build_envelope(
        symbol="NSE:SBIN-EQ",
        resolution="1",
        range_from=1_764_042_300,
        range_to=1_764_064_799,
        trading_date=date(2025, 11, 25),
        fetched_at=datetime(2025, 11, 25, 12, tzinfo=UTC),
        http_status=200,
        body=b'{"s":"ok","candles":[[1764042300,100.0,101.0,99.0,100.5,10]]}',
    )
    objects = {
        (RAW, TICKERS): b"symbol,name\nNSE:SBIN-EQ,State Bank\nNSE:INFY-EQ,Infosys\n",
        (RAW, "config/no-symbol-column.csv"): b"ticker,name\nNSE:SBIN-EQ,State Bank\n",
        (RAW, "config/only-bad-rows.csv"): b"symbol\nNSE:\nSBIN EQ\n\n:INFY\n",
        (RAW, "config/latin1.csv"): "symbol,name\nNSE:SBIN-EQ,Soci\u00e9t\u00e9\n".encode("latin-1"),
        (RAW, "config/unterminated.csv"): b'symbol\n"NSE:SBIN-EQ\n' + b"x" * 200_000,
        (RAW, master_key("NSE_CM", today)): master.encode(),
        (RAW, "ohlcv/runs/earlier/items.json"): b'[{"symbol": "NSE:SBIN-EQ"}]',
        (RAW, "ohlcv/raw/symbol=SBIN-EQ/exchange=NSE/year=2025/month=11/day=25/ingest-x.json"): envelope,
        (RAW, "ohlcv/runs/r/symbols.json"): b'{"symbols": ["NSE:SBIN-EQ"], "dates": ["2025-11-25"]}',
        (RAW, "ohlcv/runs/r/aggregate-result.json"): b'{"earlier": true}',
        (RAW, "ohlcv/runs/r/ingested/NSE/SBIN-EQ.json"): b'{"symbol": "NSE:SBIN-EQ", "dates": ["25-11-2025"]}',
        (
            PROCESSED,
            "processed/timeframe=1d/exchange=NSE/symbol=SBIN-EQ/year=2025/month=11/day=25/part-00000.parquet",
        ): (b"PAR1 not really"),
    }
    for (bucket, key), body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    secrets = boto3.client("secretsmanager", region_name=region)
    secrets.create_secret(Name=APP_SECRET, SecretString=json.dumps(dataclasses.asdict(APP)))
    secrets.create_secret(Name=TOKEN_SECRET, SecretString=json.dumps(TOKENS))
    dynamodb = boto3.client("dynamodb", region_name=region)
    dynamodb.create_table(
        TableName=STATE_TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName=STATE_TABLE, Item={"pk": {"S": "oauth-state#usedusedused"}, "expires_at": {"N": "1"}})
    env = {
        "RAW_BUCKET": RAW,
        "PROCESSED_BUCKET": PROCESSED,
        "TICKER_LIST_KEY": TICKERS,
        "FYERS_SYMBOL_MASTER_URL": NOWHERE,
        "FYERS_API_BASE_URL": NOWHERE,
        "APP_CONFIG_SECRET_ID": APP_SECRET,
        "TOKEN_SECRET_ID": TOKEN_SECRET,
        "STATE_TABLE": STATE_TABLE,
        "POWERTOOLS_METRICS_NAMESPACE": "pricefeed",
        "POWERTOOLS_SERVICE_NAME": "test",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return region


# --- the state machine's input and the ticker list (PlanRun) ----------------------------------------------
def day(offset: int) -> str:
    return (ist_today() - timedelta(days=offset)).isoformat()


BAD_PLAN_EVENTS = [
    ({"run_id": "r1", "input": {"tickers_key": "../config/nse_tickers.csv"}}, ["tickers_key", "'..'"]),
    ({"run_id": "r1", "input": {"tickers_key": "/config/nse_tickers.csv"}}, ["tickers_key"]),
    ({"run_id": "r1", "input": {"tickers_key": "config//nse_tickers.csv"}}, ["tickers_key"]),
    ({"run_id": "r1", "input": {"tickers_key": "config/\x00.csv"}}, ["tickers_key"]),
    ({"run_id": "r1", "input": {"tickers_key": 7}}, ["tickers_key"]),
    ({"run_id": "r1", "input": {"from": day(1), "to": day(5)}}, ["'from'", "is after 'to'"]),
    ({"run_id": "r1", "input": {"date": "25-11-2026"}}, ["'date'", "YYYY-MM-DD"]),
    ({"run_id": "r1", "input": {"date": "20261125"}}, ["'date'", "YYYY-MM-DD"]),
    ({"run_id": "r1", "input": {"date": day(-1)}}, ["'date'", "after today"]),
    ({"run_id": "r1", "input": {"from": "2017-07-02"}}, ["'from'", "2017-07-03"]),
    ({"run_id": "r1", "input": {"date": [day(1)]}}, ["'date'"]),
    ({"run_id": "r1", "input": {"date": day(1), "symbols": ["NSE:SBIN-EQ"]}}, ["unknown field(s): symbols"]),
    ({"run_id": "r1", "input": ["2026-11-25"]}, ["execution input must be a JSON object"]),
    ({"run_id": "a/b", "input": {}}, ["run_id"]),
    ({"run_id": "..", "input": {}}, ["run_id"]),
    ({"run_id": "x" * 81, "input": {}}, ["run_id"]),
    ({"input": {"date": day(1)}}, ["run_id"]),
]


@pytest.mark.parametrize(("event", "named"), BAD_PLAN_EVENTS, ids=lambda v: repr(v)[:60] if isinstance(v, dict) else "")
def test_a_bad_state_machine_input_names_the_field_and_stores_nothing(stored, event, named):
    handler = load_handler("plan_run").handler
    before = snapshot(stored)
    with pytest.raises(InvalidInput) as refused:
        handler(event, lambda_context("PlanRunFunction"))
    for part in named:
        assert part in str(refused.value), str(refused.value)
    assert snapshot(stored) == before


BAD_TICKER_LISTS = [
    ("config/no-symbol-column.csv", ["the header row has no 'symbol' column"]),
    ("config/only-bad-rows.csv", ["no valid symbols", "line 2"]),
    ("config/latin1.csv", ["is not UTF-8"]),
    ("config/unterminated.csv", ["not a readable CSV"]),
    ("config/missing.csv", ["does not exist"]),
]


@pytest.mark.parametrize(("key", "named"), BAD_TICKER_LISTS)
def test_a_bad_ticker_list_names_its_s3_path_and_stores_nothing(stored, key, named):
    handler = load_handler("plan_run").handler
    before = snapshot(stored)
    with pytest.raises(InvalidInput) as refused:
        handler({"run_id": "r1", "input": {"date": day(1), "tickers_key": key}}, lambda_context("PlanRunFunction"))
    message = str(refused.value)
    assert f"ticker list s3://{RAW}/{key}" in message, message
    for part in named:
        assert part in message, message
    assert snapshot(stored) == before


def test_control_a_good_plan_input_does_store_the_run(stored):
    # The snapshot sees writes: the same handler with good input writes the run's items.
    handler = load_handler("plan_run").handler
    before = snapshot(stored)
    plan = handler({"run_id": "r1", "input": {"date": day(1)}}, lambda_context("PlanRunFunction"))
    after = snapshot(stored)
    assert plan["count"] == 2
    assert set(after["s3"]) - set(before["s3"]) == {
        f"s3://{RAW}/ohlcv/runs/r1/items.json",
        f"s3://{RAW}/ohlcv/runs/r1/symbols.json",
    }


# --- the Glue job's arguments ------------------------------------------------------------------------------
GLUE_SCRIPT = ROOT / "glue" / "aggregate_bars.py"
GOOD_ARGS = {
    "--raw_bucket": RAW,
    "--processed_bucket": PROCESSED,
    "--symbols_key": "ohlcv/runs/r/symbols.json",
    "--result_key": "ohlcv/runs/r/aggregate-result.json",
}


def run_glue(monkeypatch, args: dict[str, str | None]) -> None:
    argv = [str(GLUE_SCRIPT), "--JOB_NAME", "aggregate-bars", "--JOB_RUN_ID", "jr_1"]
    for name, value in {**GOOD_ARGS, **args}.items():
        if value is not None:
            argv += [name, value]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(GLUE_SCRIPT), run_name="__main__")


BAD_GLUE_ARGS = [
    ({"--from": "2025-11-26", "--to": "2025-11-20"}, ["--to (2025-11-20) is before --from (2025-11-26)"]),
    ({"--from": "26-11-2025", "--to": "2025-11-27"}, ["--from", "'26-11-2025'"]),
    ({"--from": "2025-11-26"}, ["--from and --to go together"]),
    ({"--from": "2025-11-26", "--to": "2062-11-27"}, ["--to has 2062-11-27, outside the minute history"]),
    ({"--dates": "2017-06-30"}, ["--dates has 2017-06-30, outside the minute history"]),
    ({"--dates": "2025-11-25,2025-13-01"}, ["--dates", "'2025-13-01'"]),
    ({"--dates": "2025-11-25", "--to": "2025-11-26"}, ["--dates and --from/--to exclude each other"]),
    ({"--raw_bucket": " "}, ["--raw_bucket is missing or empty"]),
    ({"--raw_bucket": None}, ["--raw_bucket is missing or empty"]),
    ({"--raw_bucket": "not a bucket!"}, ["--raw_bucket", "not an S3 bucket name"]),
    ({"--raw_bucket": "no-such-bucket"}, ["--symbols_key s3://no-such-bucket/", "bucket does not exist"]),
    ({"--symbols_key": "ohlcv/runs/nope.json"}, [f"--symbols_key s3://{RAW}/ohlcv/runs/nope.json does not exist"]),
    ({"--symbols_key": "ohlcv/runs/r/aggregate-result.json"}, ["--symbols_key", '{"symbols"']),
    ({"--ingested_prefix": "/ohlcv/runs/r/ingested"}, ["--ingested_prefix"]),
    (
        {"--ingested_prefix": "ohlcv/runs/r/ingested/"},
        [f"s3://{RAW}/ohlcv/runs/r/ingested/NSE/SBIN-EQ.json", "25-11-2025"],
    ),
    ({"--executor": "gpu"}, ["--executor"]),
    ({"--dates": "--from"}, ["--dates"]),
]


@pytest.mark.parametrize(("args", "named"), BAD_GLUE_ARGS, ids=lambda v: repr(v)[:60] if isinstance(v, dict) else "")
def test_bad_glue_job_arguments_name_the_argument_and_store_nothing(stored, monkeypatch, args, named):
    before = snapshot(stored)
    with pytest.raises(InvalidInput) as refused:
        run_glue(monkeypatch, args)
    for part in named:
        assert part in str(refused.value), str(refused.value)
    assert snapshot(stored) == before


def test_control_good_glue_job_arguments_do_store_the_result(stored, monkeypatch):
    before = snapshot(stored)
    run_glue(monkeypatch, {"--dates": "2025-11-25", "--executor": "threads"})
    after = snapshot(stored)
    result_key = f"s3://{RAW}/ohlcv/runs/r/aggregate-result.json"
    assert after["s3"][result_key] != before["s3"][result_key]


# --- the OAuth callback query --------------------------------------------------------------------------------
def callback_event(query: dict | None) -> dict:
    event = sample_event("oauth_callback")
    event["queryStringParameters"] = query
    event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in (query or {}).items())
    return event


def good_state() -> str:
    return new_state(APP)


BAD_CALLBACKS = [
    (lambda: None, "login state is missing or malformed"),
    (lambda: {"s": "ok", "code": "200", "auth_code": "abc.def.ghi"}, "login state is missing or malformed"),
    (lambda: {"s": "ok", "auth_code": "abc", "state": good_state()[:-1] + "x"}, "login state does not match"),
    (lambda: {"s": "ok", "auth_code": "abc", "state": good_state()[:-2] + "\u00efg"}, "login state does not match"),
    (
        lambda: {"s": "ok", "auth_code": "abc", "state": "\u00b2\u00b3.nonce-nonce.sig"},
        "login state is missing or malformed",
    ),
    (lambda: {"s": "ok", "auth_code": "abc", "state": "9" * 5000 + ".nonce-nonce.sig"}, "login state is missing"),
    (lambda: {"s": "ok", "auth_code": "abc", "state": new_state(APP, now=1_000_000_000)}, "login state has expired"),
    (lambda: {"s": "ok", "auth_code": "abc", "state": f"{good_state()},{good_state()}"}, "login state"),
    (lambda: {"s": "error", "code": "-437", "state": good_state()}, "parameter 's' is 'error', not 'ok' (code -437)"),
    (lambda: {"s": "ok,ok", "auth_code": "abc", "state": good_state()}, "parameter 's'"),
    (lambda: {"s": "ok", "state": good_state()}, "parameter 'auth_code' is missing"),
    (lambda: {"s": "ok", "auth_code": "a b", "state": good_state()}, "parameter 'auth_code' is malformed"),
    (lambda: {"s": "ok", "auth_code": "x" * 10_000, "state": good_state()}, "parameter 'auth_code' is malformed"),
]


@pytest.mark.parametrize(("query", "named"), BAD_CALLBACKS)
def test_a_bad_callback_is_a_400_naming_the_parameter_and_stores_nothing(stored, query, named):
    handler = load_handler("oauth").handler
    before = snapshot(stored)
    answer = handler(callback_event(query()), lambda_context("OAuthFunction"))
    assert answer["statusCode"] == 400, answer
    assert named in answer["body"].replace("&#x27;", "'"), answer["body"]
    assert snapshot(stored) == before


def test_control_a_well_formed_callback_does_use_up_its_state(stored):
    # Fyers is unreachable, so no token is stored, but the single-use state is recorded: the snapshot sees it.
    handler = load_handler("oauth").handler
    before = snapshot(stored)
    event = callback_event({"s": "ok", "auth_code": "abc", "state": good_state()})
    answer = handler(event, lambda_context("OAuthFunction"))
    assert answer["statusCode"] == 502, answer
    after = snapshot(stored)
    assert after["secrets"] == before["secrets"] and after["dynamodb"] != before["dynamodb"]
