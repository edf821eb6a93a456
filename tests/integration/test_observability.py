"""What a user watches: the alarms that e-mail, the dashboard, and the metrics the handlers really emit.

The template tests read template.yaml as the SAM translator turns it into CloudFormation (as the local stack
does); the behaviour tests run handlers in-process on moto (and the Fyers simulator) and read the Powertools
EMF lines they print, which is what CloudWatch turns into metrics.
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from tokenkit import (
    APP,
    STATE_TABLE,
    TOKEN_SECRET,
    Clock,
    create_resources,
    leaked,
    login,
    start_simulator,
    stored_secret,
)

from handlerkit import lambda_context as context
from handlerkit import load_handler, sample_event
from pricefeed import metric_names
from pricefeed.auth.fyers_oauth import Tokens
from pricefeed.errors import InvalidSymbol, RateLimited
from pricefeed.lake.paths import TIMEFRAMES

ROOT = Path(__file__).resolve().parents[2]
REGION = "ap-south-1"
CONSTANT_OF = {value: name for name, value in vars(metric_names).items() if name.isupper() and isinstance(value, str)}


# ------------------------------------------------------------------------------------------ template


def of_type(cfn: dict, kind: str) -> dict[str, dict]:
    return {k: r for k, r in cfn["Resources"].items() if r["Type"] == kind}


def alarm_metrics(alarm: dict) -> list[dict]:
    """Every metric an alarm watches: ``{"Namespace", "MetricName", "Dimensions"}``, single or in metric math."""
    props = alarm["Properties"]
    if "MetricName" in props:
        return [{k: props.get(k, []) for k in ("Namespace", "MetricName", "Dimensions")}]
    return [q["MetricStat"]["Metric"] for q in props.get("Metrics", []) if "MetricStat" in q]


def alarm_watching(cfn: dict, metric: str) -> dict:
    (alarm,) = [
        a
        for a in of_type(cfn, "AWS::CloudWatch::Alarm").values()
        if metric in {m["MetricName"] for m in alarm_metrics(a)}
    ]
    return alarm["Properties"]


def dashboard_body(cfn: dict) -> dict:
    """The dashboard's JSON, with each ``${...}`` of its Fn::Sub left as a recognisable placeholder."""
    (dashboard,) = of_type(cfn, "AWS::CloudWatch::Dashboard").values()
    template = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    return json.loads(re.sub(r"\$\{([^}]+)\}", r"<\1>", template))


def plotted(body: dict) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric, dimensions) of every line of every metric widget."""
    lines = []
    for widget in body["widgets"]:
        for row in widget["properties"].get("metrics", []):
            names = [x for x in row if isinstance(x, str)]
            namespace, metric, dims = names[0], names[1], names[2:]
            lines.append((namespace, metric, dict(zip(dims[::2], dims[1::2], strict=True))))
    return lines


def test_failed_runs_dead_letters_and_an_expiring_login_each_alarm_to_the_alert_topic(translated):
    failed = alarm_watching(translated, "ExecutionsFailed")
    assert failed["Namespace"] == "AWS/States" and failed["ComparisonOperator"] == "GreaterThanThreshold"
    assert failed["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": "IngestPipeline"}}]

    dead = alarm_watching(translated, metric_names.DEAD_LETTERS)
    watched = {
        (m["Namespace"], m["MetricName"], m["Dimensions"][0]["Value"]) for m in alarm_metrics({"Properties": dead})
    }
    # Symbols that failed for good and symbols the plan found unknown to Fyers: both are dead letters.
    assert watched == {("pricefeed", "DeadLetters", "record_failure"), ("pricefeed", "DeadLetters", "plan_run")}
    assert dead["Threshold"] == {"Ref": "DeadLetterAlarmThreshold"}
    assert translated["Parameters"]["DeadLetterAlarmThreshold"]["Type"] == "Number"

    expiry = alarm_watching(translated, metric_names.REFRESH_TOKEN_DAYS_LEFT)
    assert expiry["Threshold"] == 2 and expiry["ComparisonOperator"] == "LessThanOrEqualToThreshold"

    for alarm in (failed, dead, expiry):
        assert alarm["AlarmActions"] == [{"Ref": "TokenAlertTopic"}]
        assert alarm["TreatMissingData"] == "notBreaching"  # a quiet day is not an alarm
    (subscription,) = of_type(translated, "AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["TopicArn"] == {"Ref": "TokenAlertTopic"}


def test_every_pricefeed_metric_an_alarm_watches_is_one_a_handler_emits(translated):
    for alarm in of_type(translated, "AWS::CloudWatch::Alarm").values():
        for metric in alarm_metrics(alarm):
            if metric["Namespace"] == metric_names.NAMESPACE:
                assert metric["MetricName"] in metric_names.EMITTED
                (service,) = [d["Value"] for d in metric["Dimensions"] if d["Name"] == "service"]
                assert (ROOT / "functions" / service / "app.py").is_file()


def test_the_dashboard_plots_runs_fyers_traffic_bars_dead_letters_and_the_login(translated):
    lines = plotted(dashboard_body(translated))
    states = {m for ns, m, dims in lines if ns == "AWS/States" and dims == {"StateMachineArn": "<IngestPipeline>"}}
    assert {"ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed"} <= states
    ours = {(m, dims["service"]) for ns, m, dims in lines if ns == metric_names.NAMESPACE}
    assert {
        ("FyersRequests", "ingest_symbol"),
        ("RateLimited", "ingest_symbol"),
        ("BarsStored", "repair_partitions"),
        ("DeadLetters", "record_failure"),
        ("RefreshTokenDaysLeft", "refresh_tokens"),
    } <= ours
    bars = {dims["timeframe"] for ns, m, dims in lines if m == metric_names.BARS_STORED}
    assert bars == set(TIMEFRAMES)


def test_every_metric_the_dashboard_plots_is_emitted_by_that_services_handler(translated):
    for namespace, metric, dims in plotted(dashboard_body(translated)):
        if namespace != metric_names.NAMESPACE:
            continue
        assert metric in metric_names.EMITTED, metric
        handler = ROOT / "functions" / dims["service"] / "app.py"
        source = handler.read_text()
        if metric == metric_names.REFRESH_TOKEN_DAYS_LEFT:  # added by pricefeed.auth.renewal.scheduled_refresh
            assert "scheduled_refresh(" in source and "metrics=metrics" in source
            continue
        assert re.search(rf"(add_metric|single_metric)\(\s*name={CONSTANT_OF[metric]}\b", source), (metric, handler)
        extra = set(dims) - {"service"}
        assert extra <= ({"timeframe"} if metric == metric_names.BARS_STORED else set()), (metric, dims)


def test_the_state_machine_logs_its_errors_without_execution_data(translated):
    (machine,) = of_type(translated, "AWS::StepFunctions::StateMachine").values()
    logging = machine["Properties"]["LoggingConfiguration"]
    assert logging["Level"] == "ERROR" and logging["IncludeExecutionData"] is False
    (destination,) = logging["Destinations"]
    group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert translated["Resources"][group]["Type"] == "AWS::Logs::LogGroup"
    assert translated["Resources"][group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


# ------------------------------------------------------------------------------------------ handlers


def emitted(out: str) -> dict[tuple[str, tuple], list]:
    """(metric, dimensions) → values, from the EMF lines Powertools printed (namespace pricefeed only)."""
    found: dict[tuple[str, tuple], list] = {}
    for line in out.splitlines():
        if "CloudWatchMetrics" not in line:
            continue
        emf = json.loads(line)
        for directive in emf["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == metric_names.NAMESPACE
            (dims,) = directive["Dimensions"]
            for metric in directive["Metrics"]:
                key = (metric["Name"], tuple(sorted((d, emf[d]) for d in dims)))
                value = emf[metric["Name"]]
                found.setdefault(key, []).extend(value if isinstance(value, list) else [value])
    return found


@pytest.fixture
def raw_bucket(mocked_aws) -> str:
    boto3.client("s3", region_name=mocked_aws).create_bucket(
        Bucket="raw", CreateBucketConfiguration={"LocationConstraint": mocked_aws}
    )
    return "raw"


def test_a_dead_letter_counts_one_on_the_dead_letters_metric(raw_bucket, monkeypatch, capsys):
    app = load_handler("record_failure", monkeypatch, {"RAW_BUCKET": raw_bucket})
    event = sample_event("record_failure")

    result = app.handler(event, context("RecordFailureFunction"))

    assert boto3.client("s3").head_object(Bucket=raw_bucket, Key=result["dead_letter_key"])
    metrics = emitted(capsys.readouterr().out)
    assert metrics == {("DeadLetters", (("service", "record_failure"),)): [1.0]}


def test_the_plan_counts_unknown_symbols_as_dead_letters(monkeypatch, capsys):
    app = load_handler("plan_run", monkeypatch, {})
    plan = {"count": 2, "rejected_count": 0, "unknown_count": 1, "symbol_master": {}}
    monkeypatch.setattr(app, "plan_run", lambda request, **kw: plan)
    monkeypatch.setattr(app.Settings, "require", lambda self, *names: self)
    monkeypatch.setattr(app.boto3, "client", lambda name: None)

    app.handler(sample_event("plan_run"), context("PlanRunFunction"))

    assert emitted(capsys.readouterr().out) == {("DeadLetters", (("service", "plan_run"),)): [1.0]}


def test_registering_the_runs_partitions_reports_bars_per_timeframe_and_coverage(raw_bucket, monkeypatch, capsys):
    glue = boto3.client("glue")
    glue.create_database(DatabaseInput={"Name": "db"})
    key = "ohlcv/runs/run-1/aggregate-result.json"
    result = {
        "partition_lists": {"bars_monthly": "ohlcv/runs/run-1/aggregate-result.bars_monthly.jsonl"},
        "bars": {"1m": 750, "5m": 150, "15m": 50, "1d": 2},
        "coverage": {"symbol_days": 2, "complete": 1, "with_gaps": 1, "missing_minutes": 15, "worst": []},
    }
    boto3.client("s3").put_object(Bucket=raw_bucket, Key=result["partition_lists"]["bars_monthly"], Body=b"")
    boto3.client("s3").put_object(Bucket=raw_bucket, Key=key, Body=json.dumps(result).encode())
    env = {"RAW_BUCKET": raw_bucket, "GLUE_DATABASE": "db", "GLUE_TABLE": "bars", "GLUE_COVERAGE_TABLE": "coverage",
           "GLUE_BARS_MONTHLY_TABLE": "bars_monthly", "GLUE_COVERAGE_MONTHLY_TABLE": "coverage_monthly"}
    app = load_handler("repair_partitions", monkeypatch, env)

    app.handler({"result_key": key}, context("RepairPartitionsFunction"))

    service = ("service", "repair_partitions")
    assert emitted(capsys.readouterr().out) == {
        **{("BarsStored", (service, ("timeframe", tf))): [float(n)] for tf, n in result["bars"].items()},
        ("MissingMinutes", (service,)): [15.0],
        ("SymbolDaysWithGaps", (service,)): [1.0],
    }


@pytest.fixture
def ingest(mocked_aws, raw_bucket, monkeypatch):
    """The IngestSymbol function logged in to the simulator (real clock); yields (module, sim, tokens)."""
    clock = Clock(datetime.now(UTC))
    sim = start_simulator(clock, unknown_symbols=frozenset({"NSE:DELISTEDXYZ-EQ"}))
    secrets, dynamodb = create_resources(mocked_aws)
    login(sim, clock, secrets, dynamodb)
    secrets.create_secret(Name="pricefeed/app", SecretString=json.dumps(dataclasses.asdict(APP)))
    env = {
        "RAW_BUCKET": raw_bucket,
        "APP_CONFIG_SECRET_ID": "pricefeed/app",
        "TOKEN_SECRET_ID": TOKEN_SECRET,
        "STATE_TABLE": STATE_TABLE,
        "FYERS_API_BASE_URL": sim.url,
    }
    app = load_handler("ingest_symbol", monkeypatch, env)
    yield app, sim, Tokens.from_json(stored_secret(secrets))
    sim.stop()


def test_an_ingest_reports_its_fyers_requests_and_candles_and_no_secret(ingest, capsys):
    app, sim, tokens = ingest
    event = sample_event("ingest_symbol")

    summary = app.handler(event, context("IngestSymbolFunction"))

    out = capsys.readouterr().out
    service = (("service", "ingest_symbol"),)
    assert summary["requests"] >= 1 and summary["candles"] > 0
    assert emitted(out) == {
        ("FyersRequests", service): [float(summary["requests"])],
        ("CandlesFetched", service): [float(summary["candles"])],
    }
    assert sim.stats()["requests"]["/data/history"] == summary["requests"]
    assert not leaked(out, tokens.access_token, tokens.refresh_token, APP.pin, APP.secret_key)


def test_an_ingest_refused_as_unknown_counts_a_failure_not_a_429(ingest, capsys):
    app, _, _ = ingest
    event = {**sample_event("ingest_symbol"), "symbol": "NSE:DELISTEDXYZ-EQ"}

    with pytest.raises(InvalidSymbol):
        app.handler(event, context("IngestSymbolFunction"))

    assert emitted(capsys.readouterr().out) == {("IngestFailures", (("service", "ingest_symbol"),)): [1.0]}


def test_an_ingest_that_hits_fyers_429_counts_one_rate_limited(ingest, monkeypatch, capsys):
    app, _, _ = ingest

    def answered_429(request):
        raise RateLimited("history: HTTP 429", http_status=429)

    monkeypatch.setattr(app.IngestWorker, "ingest", lambda self, request: answered_429(request))
    event = sample_event("ingest_symbol")

    with pytest.raises(RateLimited, match="attempt 1"):
        app.handler(event, context("IngestSymbolFunction"))

    assert emitted(capsys.readouterr().out) == {("RateLimited", (("service", "ingest_symbol"),)): [1.0]}
