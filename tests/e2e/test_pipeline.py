"""The whole workflow from template.yaml on the local stack: what a user sees after a run."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pricefeed.local.run import start_execution, summarize, wait_for
from stackkit import monthly_rows

FIVE = ["NSE:SBIN-EQ", "NSE:RELIANCE-EQ", "NSE:INFY-EQ", "NSE:M&M-EQ", "NSE:DELISTEDXYZ-EQ"]
NAMES = {s.split(":")[1] for s in FIVE}
EXPECTED_ROWS = {"1m": 375, "5m": 75, "15m": 25, "1d": 1}


def _tickers(tmp_path: Path, symbols: list[str]) -> Path:
    path = tmp_path / "tickers.csv"
    path.write_text("symbol,name\n" + "".join(f"{s},company {i}\n" for i, s in enumerate(symbols)))
    return path


def _run(pipeline, day: date, csv: Path) -> tuple[dict, dict]:
    arn = start_execution(pipeline.stack, day, csv)
    described = wait_for(pipeline.stack, arn, timeout_s=300)
    return described, json.loads(described.get("output") or "{}")


def _processed(pipeline, day: date, symbols: list[str] | None = None, root: str = "processed/timeframe=") -> dict:
    """key → {etag, rows} for every bar file (or, with ``root``, other processed object) of ``day`` (of
    ``symbols`` only, when given: the session's other tests may store the same day for other symbols)."""
    names = {s.split(":")[1] for s in symbols} if symbols else None
    s3, bucket = pipeline.stack.client("s3"), pipeline.stack.outputs["ProcessedBucketName"]
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=root):
        for obj in page.get("Contents", []):
            in_day = f"/year={day.year}/month={day.month:02d}/day={day.day:02d}/" in obj["Key"]
            if in_day and (names is None or obj["Key"].split("symbol=")[1].split("/")[0] in names):
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                found[obj["Key"]] = {"etag": obj["ETag"], "table": pq.read_table(io.BytesIO(body))}
    return found


def _dead_letters(pipeline, day: date) -> list[dict]:
    s3, bucket = pipeline.stack.client("s3"), pipeline.stack.outputs["RawBucketName"]
    letters = []
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix="ohlcv/errors/").get("Contents", []):
        if f"/year={day.year}/month={day.month:02d}/day={day.day:02d}/" in obj["Key"]:
            letter = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            letters.append({"key": obj["Key"], **letter})
    return letters


def _monthly_partitions(pipeline, day: date, table: str = "bars_monthly", exchange: str = "NSE") -> list[dict]:
    """The registered partitions of ``day``'s month and ``exchange`` in a compacted table (keys end with ...,
    exchange, year, month): other tests' MCX days of the same month are theirs."""
    glue = pipeline.stack.client("glue")
    parts = glue.get_partitions(DatabaseName=pipeline.stack.outputs["GlueDatabaseName"], TableName=table)["Partitions"]
    return [p for p in parts if p["Values"][-3:] == [exchange, str(day.year), f"{day.month:02d}"]]


def _projected_location(pipeline, table: str, values: list[str]) -> str:
    """Where Athena looks for a partition of a projected table: its storage.location.template, filled in."""
    glue = pipeline.stack.client("glue")
    described = glue.get_table(DatabaseName=pipeline.stack.outputs["GlueDatabaseName"], Name=table)["Table"]
    keys = [k["Name"] for k in described["PartitionKeys"]]
    assert described["Parameters"]["projection.enabled"] == "true"
    location = described["Parameters"]["storage.location.template"]
    for key, value in zip(keys, values, strict=True):
        location = location.replace("${" + key + "}", value)
    return location


def test_a_day_for_five_tickers_stores_bars_dead_letters_the_unknown_and_reruns_cleanly(pipeline, tmp_path):
    day = date(2026, 11, 25)
    csv = _tickers(tmp_path, FIVE)

    described, output = _run(pipeline, day, csv)

    assert described["status"] == "SUCCEEDED", described.get("error")
    # The unknown ticker is caught against the symbol master: reported, dead-lettered, never asked of Fyers.
    assert output["count"] == 4 and output["aggregate"]["state"] == "SUCCEEDED"
    # The plan sized the Glue run: a day of 4 tickers keeps the job as declared (2 G.1X workers, 60 minutes).
    glue = pipeline.stack.client("glue")
    job_run = glue.get_job_run(
        JobName=pipeline.stack.outputs["AggregateJobName"], RunId=output["aggregate"]["job_run_id"]
    )
    assert output["job"] == {"workers": 2, "timeout_min": 60, "symbol_days": 4}
    assert (job_run["JobRun"]["NumberOfWorkers"], job_run["JobRun"]["Timeout"], job_run["JobRun"]["WorkerType"]) == (
        2, 60, "G.1X"
    )
    assert [u["symbol"] for u in output["unknown"]] == ["NSE:DELISTEDXYZ-EQ"] and output["unknown_count"] == 1
    assert "NSE:DELISTEDXYZ-EQ" not in pipeline.sim.stats()["history_requests_by_symbol"]
    letters = _dead_letters(pipeline, day)
    assert [(d["symbol"], d["error_type"]) for d in letters] == [("NSE:DELISTEDXYZ-EQ", "InvalidSymbol")]
    assert letters[0]["key"].startswith("ohlcv/errors/symbol=DELISTEDXYZ-EQ/year=2026/month=11/day=25/failed-")
    assert "symbol master" in letters[0]["error_message"]
    assert letters[0]["input"] == {
        "symbol": "NSE:DELISTEDXYZ-EQ", "date": "2026-11-25", "from": "2026-11-25", "to": "2026-11-25",
        "run_id": output["run_id"],
    }
    assert letters[0]["attempts"] == 0  # no request was spent on it
    # The Map's results are in S3 (ResultWriter), not in the state: one SUCCEEDED entry per ticker's item
    s3, raw = pipeline.stack.client("s3"), pipeline.stack.outputs["RawBucketName"]
    written = output["ingest"]["results"]
    assert written["Bucket"] == raw and written["Key"].startswith(f"ohlcv/runs/{output['run_id']}/map-results/")
    manifest = json.loads(s3.get_object(Bucket=raw, Key=written["Key"])["Body"].read())
    (results,) = manifest["ResultFiles"]["SUCCEEDED"]
    entries = json.loads(s3.get_object(Bucket=raw, Key=results["Key"])["Body"].read())
    assert sorted(json.loads(e["Output"])["symbol"] for e in entries) == sorted(FIVE[:4])
    assert {e["Status"] for e in entries} == {"SUCCEEDED"} and manifest["ResultFiles"]["FAILED"] == []
    # 4 tickers x (375, 75, 25, 1) rows, read back from the Parquet files themselves.
    files = _processed(pipeline, day, FIVE)
    rows = Counter()
    for key, f in files.items():
        tf = key.split("timeframe=")[1].split("/")[0]
        sym = key.split("symbol=")[1].split("/")[0]
        rows[(tf, sym)] += f["table"].num_rows
        assert f["table"].column("ts").to_pylist() == sorted(set(f["table"].column("ts").to_pylist()))
    assert rows == {(tf, s.split(":")[1]): n for tf, n in EXPECTED_ROWS.items() for s in FIVE[:4]}
    first_5m = files["processed/timeframe=5m/exchange=NSE/symbol=SBIN-EQ/year=2026/month=11/day=25/part-00000.parquet"]
    assert first_5m["table"].column("ts")[0].as_py().isoformat() == "2026-11-25T03:45:00+00:00"  # 09:15 IST
    # Athena finds each file where the bars table's projection says (no partition is registered per symbol-day).
    bucket = pipeline.stack.outputs["ProcessedBucketName"]
    for key in files:
        values = [part.split("=", 1)[1] for part in key.split("/")[1:-1]]
        assert _projected_location(pipeline, "bars", values) == f"s3://{bucket}/{key.rsplit('/', 1)[0]}/"
    # The compacted tier holds the same bars, and its month is registered.
    for timeframe, n in EXPECTED_ROWS.items():
        key = f"bars_monthly/timeframe={timeframe}/exchange=NSE/year=2026/month=11/part-00000.parquet"
        monthly = monthly_rows(pipeline, key, NAMES, day)
        assert len(monthly) == 4 * n and {r["symbol"] for r in monthly} == {s.split(":")[1] for s in FIVE[:4]}
    registered = {tuple(p["Values"]): p["StorageDescriptor"]["Location"] for p in _monthly_partitions(pipeline, day)}
    assert registered == {
        (tf, "NSE", "2026", "11"): f"s3://{bucket}/bars_monthly/timeframe={tf}/exchange=NSE/year=2026/month=11/"
        for tf in EXPECTED_ROWS
    }
    # The coverage ledger: one row per ticker-day, complete for the simulator's full session, compacted too.
    ledger = _processed(pipeline, day, FIVE, root="coverage/")
    assert sorted(k.split("symbol=")[1].split("/")[0] for k in ledger) == sorted(s.split(":")[1] for s in FIVE[:4])
    ledger_rows = [row for f in ledger.values() for row in f["table"].to_pylist()]
    assert len(ledger_rows) == 4
    assert all(r["complete"] and r["stored_minutes"] == r["expected_minutes"] == 375 for r in ledger_rows)
    for key in ledger:
        values = [part.split("=", 1)[1] for part in key.split("/")[1:-1]]
        assert _projected_location(pipeline, "coverage", values) == f"s3://{bucket}/{key.rsplit('/', 1)[0]}/"
    ledger_key = "coverage_monthly/exchange=NSE/year=2026/month=11/part-00000.parquet"
    monthly_ledger = monthly_rows(pipeline, ledger_key, NAMES, day)
    assert sorted(r["stored_minutes"] for r in monthly_ledger) == [375] * 4
    assert len(_monthly_partitions(pipeline, day, "coverage_monthly")) == 1
    # The summary a user is shown agrees.
    summary = {r["symbol"]: r for r in summarize(pipeline.stack, day, output)}
    assert summary["NSE:SBIN-EQ"]["bars"] == EXPECTED_ROWS

    # A second run of the same day changes nothing a reader can see.
    described2, output2 = _run(pipeline, day, csv)
    assert described2["status"] == "SUCCEEDED"
    files2 = _processed(pipeline, day, FIVE)
    assert {k: f["etag"] for k, f in files2.items()} == {k: f["etag"] for k, f in files.items()}
    daily_key = "bars_monthly/timeframe=1d/exchange=NSE/year=2026/month=11/part-00000.parquet"
    for key in (daily_key, ledger_key):  # a rerun replaces the day's rows in the compacted files: no duplicates
        assert len(monthly_rows(pipeline, key, NAMES, day)) == 4
    assert output2["partitions"] == {
        "registered": 0,
        "moved": 0,
        "already_registered": len(EXPECTED_ROWS) + 1,  # the run's months: 4 timeframes and the ledger
        "projected": len(files) + len(ledger),
        # The run's coverage, in the execution's output: 4 ticker-days, all complete.
        "coverage": {"symbol_days": 4, "complete": 4, "with_gaps": 0, "holidays": 0, "missing_minutes": 0},
    }


def test_a_transient_fyers_outage_is_retried_by_the_state_machine_and_succeeds(pipeline, tmp_path):
    day = date(2026, 11, 20)  # a trading day (2026-11-24, Guru Nanak Jayanti, is an NSE holiday)
    pipeline.sim.reset_stats()
    # 3 answers of 5xx exhaust the client's 3 attempts: the first Lambda invocation fails with
    # TransientFyersError, the ASL Retry invokes it again, and that one gets through.
    pipeline.sim.set_faults(fail_next_5xx=3)

    described, _ = _run(pipeline, day, _tickers(tmp_path, ["NSE:TCS-EQ"]))

    assert described["status"] == "SUCCEEDED", described.get("error")
    assert pipeline.sim.stats()["history_requests_by_symbol"]["NSE:TCS-EQ"] == 4
    assert _dead_letters(pipeline, day) == []
    assert sum(f["table"].num_rows for k, f in _processed(pipeline, day).items() if "timeframe=1m" in k) == 375


def test_a_failing_glue_job_fails_the_execution(pipeline, tmp_path):
    day = date(2026, 11, 23)
    s3, raw = pipeline.stack.client("s3"), pipeline.stack.outputs["RawBucketName"]
    # A raw object that is not an envelope makes the aggregation job fail (and name it).
    s3.put_object(
        Bucket=raw,
        Key="ohlcv/raw/symbol=WIPRO-EQ/exchange=NSE/year=2026/month=11/day=23/ingest-20261123T000000000000Z.json",
        Body=b'{"not": "an envelope"',
    )

    described, _ = _run(pipeline, day, _tickers(tmp_path, ["NSE:WIPRO-EQ"]))

    assert described["status"] == "FAILED"
    history = pipeline.stack.client("stepfunctions").get_execution_history(
        executionArn=described["executionArn"], maxResults=1000
    )["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert "Aggregate what was ingested into Parquet bars" in entered
    assert "Register the partitions the job wrote" not in entered
    key = "bars_monthly/timeframe=1m/exchange=NSE/year=2026/month=11/part-00000.parquet"
    assert monthly_rows(pipeline, key, {"WIPRO-EQ"}, day) == []  # the malformed day reached no tier


def test_a_list_of_only_unknown_tickers_succeeds_without_ingesting_or_starting_the_job(pipeline, tmp_path):
    day = date(2026, 11, 11)
    unknown = ["NSE:NOSUCHONE-EQ", "NSE:NOSUCHTWO-EQ"]
    glue, job = pipeline.stack.client("glue"), pipeline.stack.outputs["AggregateJobName"]
    runs_before = len(glue.get_job_runs(JobName=job)["JobRuns"])

    described, output = _run(pipeline, day, _tickers(tmp_path, unknown))

    assert described["status"] == "SUCCEEDED", described.get("error")
    assert (output["count"], output["unknown_count"]) == (0, 2)
    history = pipeline.stack.client("stepfunctions").get_execution_history(
        executionArn=described["executionArn"], maxResults=1000
    )["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered == ["Plan the run from the ticker list", "Is there anything to ingest", "Nothing to ingest"]
    assert len(glue.get_job_runs(JobName=job)["JobRuns"]) == runs_before
    letters = _dead_letters(pipeline, day)
    assert sorted((d["symbol"], d["error_type"]) for d in letters) == [(s, "InvalidSymbol") for s in unknown]


@pytest.mark.parametrize("bad_date", ["2026-13-01", "yesterday"])
def test_bad_execution_input_fails_the_run_with_a_named_error(pipeline, tmp_path, bad_date):
    pipeline.stack.client("s3").upload_file(
        str(_tickers(tmp_path, ["NSE:SBIN-EQ"])), pipeline.stack.outputs["RawBucketName"], "config/nse_tickers.csv"
    )
    sfn = pipeline.stack.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=pipeline.stack.outputs["StateMachineArn"], input=json.dumps({"date": bad_date})
    )["executionArn"]
    described = wait_for(pipeline.stack, arn, timeout_s=60)
    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidInput"
    assert "execution input 'date'" in described["cause"]


def test_an_outage_longer_than_the_retry_policy_dead_letters_the_symbol_with_its_attempts(pipeline, tmp_path):
    day = date(2026, 11, 19)
    pipeline.sim.reset_stats()
    # Far more failures than 5 invocations x 3 client attempts can absorb; the other ticker still lands.
    pipeline.sim.set_faults(fail_next_5xx=15)

    described, _ = _run(pipeline, day, _tickers(tmp_path, ["NSE:HDFCBANK-EQ"]))
    pipeline.sim.set_faults(fail_next_5xx=0)

    assert described["status"] == "SUCCEEDED"  # a dead-lettered ticker does not fail the run
    letters = _dead_letters(pipeline, day)
    assert [(d["symbol"], d["error_type"], d["attempts"]) for d in letters] == [
        ("NSE:HDFCBANK-EQ", "TransientFyersError", 5)  # 1 + MaxAttempts 4 of the ASL Retry
    ]
    assert pipeline.sim.stats()["history_requests_by_symbol"]["NSE:HDFCBANK-EQ"] == 15


def test_each_function_runs_with_its_declared_timeout_and_one_past_it_fails_as_on_aws(pipeline, tmp_path):
    from pricefeed.local.template import load_template

    # The local Lambdas run with the template's Timeout and MemorySize (Globals, or the function's own)
    template = load_template()
    declared = {**template["Globals"]["Function"], **template["Resources"]["IngestSymbolFunction"]["Properties"]}
    ingest = pipeline.stack.sandboxes["IngestSymbolFunction"]
    assert (ingest.timeout_s, ingest.memory_mb) == (declared["Timeout"], declared["MemorySize"]) == (900, 512)

    # An ingest that runs past its function's Timeout is Lambda's timeout error: caught, dead-lettered, not stored
    day, symbol = date(2026, 11, 10), "NSE:SIM2800-EQ"
    declared_timeout = ingest.timeout_s
    ingest.timeout_s = 1.0  # as if declared so; the simulator answers in 1.5 s
    pipeline.sim.set_faults(latency_ms=1500)
    try:
        described, _ = _run(pipeline, day, _tickers(tmp_path, [symbol]))
    finally:
        ingest.timeout_s = declared_timeout
        pipeline.sim.set_faults(latency_ms=0)

    assert described["status"] == "SUCCEEDED", described.get("error")
    (letter,) = [d for d in _dead_letters(pipeline, day) if d["symbol"] == symbol]
    assert letter["error_type"] == "Sandbox.Timedout" and "Task timed out after 1.00 seconds" in letter["error_message"]
    assert _processed(pipeline, day, [symbol]) == {}
