"""make bench-scale: the workflow at the NSE universe's size, from one real slice and a model of AWS.

1. The slice: the real workflow (template.yaml + the ASL on the local stack; every handler, the Glue script and
   the state machine's own calls in this process; the Fyers simulator in its own process at real limits)
   backfills BENCH_SYMBOLS x BENCH_DAYS trading days (default 20 x 60). Every AWS call made in this process is
   counted per step (the Lambda that made it, the Glue job, or the state machine itself), with its bytes.
2. The model: each step's calls are split into what grows with symbol-days, with symbols (Map items) and what a
   run makes once; scaled to the universe (BENCH_UNIVERSE symbols, default 2,600, x every NSE trading day since
   2017-07-03); each call costs its latency from LATENCY_MS below (a documented assumption, not a measurement of
   AWS), spread over the step's parallelism. Printed per step: modeled duration, calls, payload, against the hard
   limit that applies (Lambda Timeout from template.yaml, Glue job Timeout, 256 KiB state payload, 25,000 history
   events, catalog partitions, S3 key length), and the modeled AWS cost of the backfill and of a daily run.
3. Queries: three questions a quant asks, on the slice's lake, in DuckDB, per-day tables against the compacted
   tier: files opened and wall time (best of 3).

Not a test. The last line is ``scale: worst step <p>% of its limit at <S> symbols x <D> days; compacted queries
<k>x faster, <m>x fewer files`` (k and m for "every symbol's daily bars for the span": the slice's span stands
in for the year). About 6-8 minutes at the defaults on a 2-core machine, most of it the local Glue job (the emulated S3
serves its ~18 calls a symbol-day from one Python process). BENCH_LATENCY=1 runs the slice with the latency model
injected into every AWS call (``pricefeed.local.latency``): it succeeds the same, only slower.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import botocore.endpoint
from bench_soak import _sim_stats, _start_simulator, _trading_days

from pricefeed.aggregate.compact import READERS
from pricefeed.ingest.job_size import size_job
from pricefeed.local import lambda_runtime
from pricefeed.local.latency import LAMBDA_COLD_START_MS, LATENCY_MS, injected, latency_ms
from pricefeed.local.run import app_config, export, free_port, fyers_parameters, login, wait_for
from pricefeed.local.stack import LocalStack
from pricefeed.ops.launch import start_run
from pricefeed.trading_calendar import TradingCalendar, last_closed_trading_day

FIRST_DAY = date(2017, 7, 3)  # Fyers' 1-minute history starts here
DAYS_PER_REQUEST = 100  # Fyers' longest 1-minute range a request
FYERS_PER_MINUTE, FYERS_PER_DAY = 200, 100_000
#: Per-call latency: the model the local stack injects (pricefeed.local.latency), documented there.
#: AWS list prices (USD), the same as the README's cost section: Step Functions ap-south-1, the rest us-east-1.
PRICE = {
    "s3_put_per_1k": 0.005, "s3_get_per_1k": 0.0004, "dynamodb_write_per_1m": 0.625, "dynamodb_read_per_1m": 0.125,
    "lambda_gb_s": 0.0000166667, "lambda_per_1m": 0.20, "sfn_per_1k_transitions": 0.0285, "glue_dpu_hour": 0.44,
    "athena_per_tb": 5.0,
}
ATHENA_MINIMUM_BYTES = 10 * 1024**2  # Athena bills at least 10 MB a query
#: Hard limits (AWS quotas) the model checks besides each function's Timeout.
STATE_PAYLOAD_BYTES, HISTORY_EVENTS, S3_KEY_BYTES, PARTITIONS_PER_TABLE = 262_144, 25_000, 1_024, 10_000_000
G1X_MEMORY_BYTES = 16 * 10**9


# --- counting every AWS call made in this process, per step ---------------------------------------------------
class Calls:
    """(step, service:operation) -> [calls, request bytes, response bytes], counted from botocore."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        self.lock = threading.Lock()
        self.bench_thread = threading.get_ident()
        self.active = True  # off once the run is over: exporting the lake is not the workflow's

    functions: tuple[str, ...] = ()  # the template's function logical ids

    def step(self) -> str:
        function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")  # the local Lambda runtime's per-invocation env
        if function:
            return next((f for f in self.functions if f in function), function)
        # Worker threads do not inherit the invocation's context: their names say whose they are.
        thread = threading.current_thread().name
        if thread.startswith("compact"):
            return "Compaction"  # the job's driver merging the months (pricefeed.aggregate.compact)
        if lambda_runtime._ARGV.get() is not None or thread.startswith(("glue-", "aggregate")):
            return "AggregateJob"
        return next((step for prefix, step in self.THREADS.items() if thread.startswith(prefix)), "StateMachine")

    THREADS = {"raw-ref": "IngestSymbolFunction", "plan": "PlanRunFunction"}

    def install(self) -> None:
        original = botocore.endpoint.Endpoint.make_request

        def make_request(endpoint, operation_model, request_dict):
            answer = original(endpoint, operation_model, request_dict)
            if self.active and threading.get_ident() != self.bench_thread:  # the bench's polling is not counted
                body = request_dict.get("body") or b""
                sent = len(body) if isinstance(body, (bytes, str)) else 0
                # the header, not the body: reading a streamed body (S3 GetObject) here would consume it
                received = int(answer[0].headers.get("content-length") or 0) if answer and answer[0] is not None else 0
                name = f"{operation_model.service_model.endpoint_prefix}:{operation_model.name}"
                with self.lock:
                    entry = self.counts[(self.step(), name)]
                    entry[0], entry[1], entry[2] = entry[0] + 1, entry[1] + sent, entry[2] + received
            return answer

        botocore.endpoint.Endpoint.make_request = make_request

    def by_step(self) -> dict[str, Counter]:
        steps: dict[str, Counter] = defaultdict(Counter)
        for (step, name), (n, _, _) in self.counts.items():
            steps[step][name] += n
        return steps


def call_time_s(calls: Counter) -> float:
    return sum(n * latency_ms(name) for name, n in calls.items()) / 1000


# --- the slice ---------------------------------------------------------------------------------------------------
def run_slice(symbols: int, days: list[date], workdir: Path, calls: Calls) -> dict:
    csv = "symbol\n" + "".join(f"NSE:SIM{i:04d}-EQ\n" for i in range(1, symbols + 1))
    api_port = free_port()
    config = app_config(f"http://127.0.0.1:{api_port}/oauth/callback", environ={})
    sim, sim_url = _start_simulator(config, workdir)
    try:
        parameters = {**fyers_parameters(sim_url), "MapConcurrency": os.environ.get("BENCH_CONCURRENCY", "10")}
        with LocalStack.start(parameters=parameters, api_port=api_port, workdir=workdir) as stack:
            stack.client("secretsmanager").put_secret_value(
                SecretId=stack.outputs["AppConfigSecretArn"], SecretString=json.dumps(config)
            )
            login(stack)
            calls.counts.clear()
            sfn, s3 = stack.client("stepfunctions"), stack.client("s3")
            cpu0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
            with injected(float(os.environ.get("BENCH_LATENCY", "0"))) as latency:
                arn = start_run(sfn, s3, state_machine_arn=stack.outputs["StateMachineArn"],
                                raw_bucket=stack.outputs["RawBucketName"], csv=csv,
                                run_input={"from": days[0].isoformat(), "to": days[-1].isoformat()})
                described = wait_for(stack, arn, timeout_s=4 * 3600)
                injected_s = latency["injected_s"]
            wall = time.monotonic() - t0
            calls.active = False
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            history = list(_history(sfn, arn))
            job = sorted(stack.client("glue").get_job_runs(JobName=stack.outputs["AggregateJobName"])["JobRuns"],
                         key=lambda r: r["StartedOn"])[-1]
            output = json.loads(described.get("output") or "{}")
            result = json.loads(s3.get_object(Bucket=stack.outputs["RawBucketName"], Key=output["result_key"])
                                ["Body"].read())
            keys, lists = _longest_key(s3, stack.outputs)
            lake = workdir / "lake"
            export(stack, lake)
        stats = _sim_stats(sim_url)
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    return {
        "status": described["status"], "error": described.get("error"), "wall_s": wall,
        "cpu_s": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime), "injected_s": injected_s,
        "history": history, "job_s": (job["CompletedOn"] - job["StartedOn"]).total_seconds(),
        "output": output, "result": result, "longest_key": keys, "partition_list_bytes": lists, "lake": lake,
        "sim": stats,
    }


def _history(sfn, arn: str):
    token = None
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {}))
        yield from page["events"]
        token = page.get("nextToken")
        if not token:
            return


def _longest_key(s3, outputs: dict) -> tuple[int, int]:
    """(the longest key in bytes, the bytes of the job's partition lists: the driver holds them while writing)."""
    longest = lists = 0
    for bucket in (outputs["RawBucketName"], outputs["ProcessedBucketName"]):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                longest = max(longest, len(obj["Key"].encode()))
                lists += obj["Size"] if obj["Key"].startswith("ohlcv/runs/") and obj["Key"].endswith(".jsonl") else 0
    return longest, lists


def _payload_bytes(history: list[dict]) -> int:
    sizes = [0]
    for event in history:
        for details in ("stateEnteredEventDetails", "stateExitedEventDetails"):
            for field in ("input", "output"):
                value = (event.get(details) or {}).get(field)
                if isinstance(value, str):
                    sizes.append(len(value.encode()))
    return max(sizes)


def job_cpu_s(lake: Path, symbols: int, days: list[date]) -> float:
    """The job's own CPU for the slice: the same aggregation over the exported raw, on local files (no emulator in
    the way), with one worker thread, so CPU time is what Glue's cores would spend."""
    from bench_aggregate import DirectoryS3

    from pricefeed.aggregate.job import run_aggregation

    names = [f"NSE:SIM{i:04d}-EQ" for i in range(1, symbols + 1)]
    started = time.process_time()
    run_aggregation(s3=DirectoryS3(lake), raw_bucket="raw", processed_bucket="cpu-check", symbols=names, dates=days,
                    max_workers=1)
    return time.process_time() - started


def trading_days_since(first: date) -> list[date]:
    calendar, last = TradingCalendar(), last_closed_trading_day()
    return [d for d in (date.fromordinal(o) for o in range(first.toordinal(), last.toordinal() + 1))
            if calendar.is_trading_day(d)]


# --- the model ---------------------------------------------------------------------------------------------------
def model(slice_: dict, calls: Calls, symbols: int, days: list[date], universe: int, template: dict) -> list[dict]:
    """One row per step: modeled figure, its limit, and the share."""
    all_days = trading_days_since(FIRST_DAY)
    d_u = len(all_days)
    symbol_days, symbol_days_u = symbols * len(days), universe * d_u
    span_calendar_u = (all_days[-1] - FIRST_DAY).days + 1
    requests_u = math.ceil(span_calendar_u / DAYS_PER_REQUEST)  # per symbol
    concurrency = int(os.environ.get("BENCH_UNIVERSE_CONCURRENCY", template["map_concurrency"]))
    steps = calls.by_step()
    rows = []

    ingest = steps.get("IngestSymbolFunction", Counter())
    per_item = Counter({k: v / symbols for k, v in ingest.items()})
    day_factor = d_u / len(days)  # raw references and manifests grow with days; budget calls with requests
    req_slice = max(1, math.ceil(((days[-1] - days[0]).days + 1) / DAYS_PER_REQUEST))
    per_item_u = Counter({k: v * (requests_u / req_slice if k.startswith("dynamodb") else day_factor)
                          for k, v in per_item.items()})
    fyers_wait_s = requests_u * concurrency / FYERS_PER_MINUTE * 60  # each item's share of the account's rate
    item_s = fyers_wait_s + call_time_s(per_item_u) + LAMBDA_COLD_START_MS / 1000
    rows.append(_row("Ingest (one Map item, slowest)", item_s, template["timeouts"]["IngestSymbolFunction"], "s",
                     f"{requests_u} Fyers requests at Map concurrency {concurrency}"))
    rows.append(_row("Fyers requests (whole backfill, one day's cap)", universe * requests_u, FYERS_PER_DAY,
                     "requests", "not an AWS limit: the account's daily budget", aws=False))

    plan = steps.get("PlanRunFunction", Counter())
    plan_s = call_time_s(plan) + LAMBDA_COLD_START_MS / 1000 + slice_["plan_cpu_per_symbol_s"] * universe
    rows.append(_row("Plan the run", plan_s, template["timeouts"]["PlanRunFunction"], "s", ""))

    job = steps.get("AggregateJob", Counter())
    # The run as the plan sizes it (pricefeed.ingest.job_size), at the template's MaxGlueWorkers.
    sized = size_job(symbol_days_u, max_workers=template["max_glue_workers"])
    workers, timeout_s = sized["workers"], sized["timeout_min"] * 60
    cores, threads = 4 * max(1, workers - 1), 8  # G.1X: 4 vCPU; one worker is the driver
    cpu_per_sd = slice_["job_cpu_s"] / symbol_days
    latency_per_sd = call_time_s(job) / symbol_days
    job_s = symbol_days_u * max(cpu_per_sd / cores, latency_per_sd / (cores * threads))

    slice_["model_item_s"] = item_s
    # The compaction runs after the symbol-days, one Spark task a month on the same cores, each reading its
    # per-day files on compact.READERS threads: its calls grow with symbol-days too.
    compaction = steps.get("Compaction", Counter())
    compact_s = symbol_days_u * call_time_s(compaction) / symbol_days / (cores * READERS)
    slice_["model_job_s"] = job_s = job_s + compact_s
    slice_["model_workers"] = workers
    daily_cores = 4 * (template["glue_workers"] - 1)  # a daily run keeps the job as declared
    slice_["model_daily_job_s"] = universe * (
        max(cpu_per_sd / daily_cores, latency_per_sd / (daily_cores * threads))
        + call_time_s(compaction) / symbol_days / (daily_cores * READERS)
    )
    # As declared (2 workers, 60 min) one run fits this many symbol-days; everything scales with executor cores.
    slice_["job_capacity"] = (template["glue_timeout_min"] * 60 / (job_s / symbol_days_u)
                              * (template["glue_workers"] - 1) / (workers - 1))
    rows.append(_row("Aggregate (Glue job, sized by the plan)", job_s, timeout_s, "s",
                     f"{symbol_days_u:,} symbol-days on {workers} G.1X workers, timeout {sized['timeout_min']} min; "
                     f"CPU {cpu_per_sd * 1000:.1f} ms and "
                     f"{sum(job.values()) / symbol_days:.1f} AWS calls a symbol-day on the executors, then "
                     f"{sum(compaction.values()) / symbol_days:.1f} a symbol-day compacting "
                     f"({compact_s / max(job_s, 1e-9):.0%} of the time)"))

    repair = steps.get("RepairPartitionsFunction", Counter())
    months_u = len({(d.year, d.month) for d in all_days})
    # What grows is the batches: ceil(partitions / 100) BatchGet + BatchCreate per monthly table; the rest (the
    # result, the lists, GetTable) is a few calls whatever the size.
    batches = math.ceil(months_u * 4 / 100) + math.ceil(months_u / 100)
    repair_u = Counter({k: v for k, v in repair.items() if not k.startswith("glue:Batch")})
    repair_u.update({"glue:BatchGetPartition": batches, "glue:BatchCreatePartition": batches})
    rows.append(_row("Register partitions", call_time_s(repair_u) + LAMBDA_COLD_START_MS / 1000,
                     template["timeouts"]["RepairPartitionsFunction"], "s",
                     f"{months_u * 5} monthly partitions in {2 * batches} batch calls"))
    rows.append(_row("Registered partitions (largest table)", months_u * 4, PARTITIONS_PER_TABLE, "partitions",
                     "bars_monthly; the per-day tables are projected"))
    rows.append(_row("State payload (largest)", _payload_bytes(slice_["history"]), STATE_PAYLOAD_BYTES, "bytes",
                     "Map results go to S3 (ResultWriter): does not grow with symbols"))
    rows.append(_row("History events (parent execution)", len(slice_["history"]), HISTORY_EVENTS, "events",
                     "a Distributed Map's items run as child executions with their own histories"))
    rows.append(_row("S3 key length (longest)", slice_["longest_key"], S3_KEY_BYTES, "bytes", ""))
    # The job's driver collects every symbol-day's result, then lists the built days by month for the compaction.
    gap_share = slice_["result"]["coverage"]["with_gaps"] / max(1, slice_["result"]["coverage"]["symbol_days"])
    per_day = driver_bytes_per_day(gap_share)
    rows.append(_row("Glue driver memory (its symbol-day results)", per_day * symbol_days_u, G1X_MEMORY_BYTES,
                     "bytes", f"{per_day:,.0f} bytes a symbol-day, measured; G.1X has 16 GB"))
    return rows


def driver_bytes_per_day(gap_share: float, n: int = 20_000) -> float:
    """What the driver holds a symbol-day, measured with tracemalloc: DayResults as Spark's collect hands them
    over (pickled a batch at a time, unpickled), plus the built days grouped by month for the compaction."""
    import gc
    import pickle
    import tracemalloc

    from pricefeed.aggregate.compact import months_of
    from pricefeed.aggregate.ledger import DayCoverage
    from pricefeed.aggregate.outcomes import DayResult, SymbolDayOutcome, keep_worst
    from pricefeed.aggregate.spark import DEFAULT_BATCH
    from pricefeed.symbol import Symbol

    days = trading_days_since(FIRST_DAY)[:250]
    every = max(1, round(1 / gap_share)) if gap_share else 0

    def outcome(i: int) -> SymbolDayOutcome:
        symbol, day = Symbol("NSE", f"SIM{i // len(days):04d}-EQ"), days[i % len(days)]
        missing = 5 if every and i % every == 0 else 0
        coverage = DayCoverage("NSE", symbol.name, day, ("09:15-15:30",), 375, 375 - missing,
                               ("10:00-10:05",) if missing else (), missing, {"outside_session": 0}, 1)
        return SymbolDayOutcome(symbol, day, envelopes=1, rows={"1m": 375 - missing, "5m": 75, "15m": 25, "1d": 1},
                                excluded={"outside_session": 0}, coverage=coverage)

    batches = [pickle.dumps(keep_worst([DayResult.of(outcome(i)) for i in range(b, min(n, b + DEFAULT_BATCH))]))
               for b in range(0, n, DEFAULT_BATCH)]
    gc.collect()
    tracemalloc.start()
    try:
        results = [r for blob in batches for r in pickle.loads(blob)]  # noqa: S301 - bytes pickled just above
        parsed: dict[str, Symbol] = {}
        touched = months_of([(parsed.setdefault(r.symbol, Symbol.parse(r.symbol)), r.trading_date) for r in results])
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del touched
    return held / n


def _row(name: str, value: float, limit: float, unit: str, note: str, aws: bool = True) -> dict:
    return {"step": name, "value": value, "limit": limit, "unit": unit, "share": value / limit, "note": note,
            "aws": aws}


def costs(calls: Calls, slice_: dict, symbols: int, days: int, universe: int, d_u: int, template: dict) -> dict:
    """Modeled USD for the universe backfill and for a daily run of the universe (list prices, PRICE)."""
    total = Counter()
    for (_, name), (n, _, _) in calls.counts.items():
        total[name] += n
    processed = slice_["lake"] / "processed"
    compacted = sum(f.stat().st_size for tier in ("bars_monthly", "coverage_monthly")
                    for f in (processed / tier).rglob("*.parquet"))

    def price(symbol_days: float, job_s: float, item_s: float, workers: int) -> dict:
        scale = symbol_days / (symbols * days)
        s3_put = sum(n for k, n in total.items() if k.startswith(("s3:Put", "s3:List", "s3:Delete"))) * scale
        s3_get = sum(n for k, n in total.items() if k.startswith("s3:Get")) * scale
        ddb = sum(n for k, n in total.items() if k.startswith("dynamodb")) * scale
        items = universe
        return {
            "S3 requests": s3_put / 1000 * PRICE["s3_put_per_1k"] + s3_get / 1000 * PRICE["s3_get_per_1k"],
            "DynamoDB": ddb / 1e6 * PRICE["dynamodb_write_per_1m"],
            "Lambda": items / 1e6 * PRICE["lambda_per_1m"] + items * item_s * 0.5 * PRICE["lambda_gb_s"],
            "Step Functions": items * 6 / 1000 * PRICE["sfn_per_1k_transitions"],  # a child execution's transitions
            "Glue": workers * max(job_s, 60) / 3600 * PRICE["glue_dpu_hour"],  # 1-minute minimum
            # a query reading every bar the run wrote, once, from the compacted tier (Athena's $5 a TB scanned)
            "Athena": max(compacted * scale, ATHENA_MINIMUM_BYTES) / 1024**4 * PRICE["athena_per_tb"],
        }

    daily_item_s = LAMBDA_COLD_START_MS / 1000 + 2.0
    return {"backfill": price(universe * d_u, slice_["model_job_s"], slice_["model_item_s"], slice_["model_workers"]),
            "daily": price(universe, slice_["model_daily_job_s"], daily_item_s, template["glue_workers"])}


# --- the queries ----------------------------------------------------------------------------------------------
def queries(lake: Path, days: list[date]) -> list[dict]:
    import duckdb

    root = lake / "processed"
    first, last, some = days[0], days[-1], "SIM0001-EQ"
    mid = days[len(days) // 2]
    months = sorted({(d.year, d.month) for d in days})
    span = f"trade_date BETWEEN DATE '{first}' AND DATE '{last}'"

    def monthly(tf: str) -> list[str]:
        return [str(p) for y, m in months for p in (root / f"bars_monthly/timeframe={tf}/exchange=NSE/year={y:04d}/"
                                                     f"month={m:02d}").glob("*.parquet")]

    asked = [
        ("one symbol's 1m bars over the span",
         [str(p) for p in (root / f"processed/timeframe=1m/exchange=NSE/symbol={some}").rglob("*.parquet")],
         f"SELECT count(*), sum(volume) FROM read_parquet($files) WHERE {span}",
         monthly("1m"), f"SELECT count(*), sum(volume) FROM read_parquet($files) WHERE symbol = '{some}' AND {span}"),
        ("every symbol's 5m bars of one day",
         [str(p) for p in root.glob(f"processed/timeframe=5m/exchange=NSE/symbol=*/year={mid.year:04d}/"
                                    f"month={mid.month:02d}/day={mid.day:02d}/*.parquet")],
         "SELECT count(*), sum(volume) FROM read_parquet($files)",
         [p for p in monthly("5m") if f"month={mid.month:02d}" in p],
         f"SELECT count(*), sum(volume) FROM read_parquet($files) WHERE trade_date = DATE '{mid}'"),
        ("every symbol's daily bars over the span",
         [str(p) for p in (root / "processed/timeframe=1d").rglob("*.parquet")],
         f"SELECT count(*), sum(volume) FROM read_parquet($files) WHERE {span}",
         monthly("1d"), f"SELECT count(*), sum(volume) FROM read_parquet($files) WHERE {span}"),
    ]
    rows = []
    con = duckdb.connect()
    for name, per_day_files, per_day_sql, monthly_files, monthly_sql in asked:
        answers, times = [], []
        for files, sql in ((per_day_files, per_day_sql), (monthly_files, monthly_sql)):
            best = math.inf
            for _ in range(3):
                started = time.perf_counter()
                answer = con.execute(sql.replace("$files", "?"), [files]).fetchall()
                best = min(best, time.perf_counter() - started)
            answers.append(answer)
            times.append(best)
        if answers[0] != answers[1]:
            raise SystemExit(f"the tiers disagree on {name}: per-day {answers[0]}, compacted {answers[1]}")
        rows.append({"query": name, "files": (len(per_day_files), len(monthly_files)), "seconds": tuple(times),
                     "rows": answers[0][0][0]})
    con.close()
    return rows


# --- the report ----------------------------------------------------------------------------------------------------
def template_limits() -> dict:
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse((Path(__file__).resolve().parents[1] / "template.yaml").read_text())
    default = int(template["Globals"]["Function"].get("Timeout", 3))
    resources = template["Resources"]
    timeouts = {name: int(r["Properties"].get("Timeout", default))
                for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    job = next(r["Properties"] for r in resources.values() if r["Type"] == "AWS::Glue::Job")
    return {"timeouts": timeouts, "glue_workers": int(job["NumberOfWorkers"]), "glue_timeout_min": int(job["Timeout"]),
            "map_concurrency": template["Parameters"]["MapConcurrency"]["Default"],
            "max_glue_workers": int(template["Parameters"]["MaxGlueWorkers"]["Default"])}


def main() -> int:
    symbols, n_days = int(os.environ.get("BENCH_SYMBOLS", "20")), int(os.environ.get("BENCH_DAYS", "60"))
    universe = int(os.environ.get("BENCH_UNIVERSE", "2600"))
    days = sorted(_trading_days(n_days))
    template = template_limits()
    all_days = trading_days_since(FIRST_DAY)
    print(f"bench-scale: slice {symbols} symbols x {n_days} trading days ({days[0]} .. {days[-1]}) through the real "
          f"workflow; model: {universe} symbols x {len(all_days)} trading days ({FIRST_DAY} .. {all_days[-1]})")
    calls = Calls()
    calls.functions = tuple(template["timeouts"])
    calls.install()
    workdir = Path(tempfile.mkdtemp(prefix="pricefeed-scale-"))
    started = time.monotonic()
    slice_ = run_slice(symbols, days, workdir, calls)
    if slice_["status"] != "SUCCEEDED":
        print(f"  the slice's execution {slice_['status']}: {slice_['error']}")
        return 1
    steps = calls.by_step()
    job_calls = sum(steps.get("AggregateJob", Counter()).values()) + sum(steps.get("Compaction", Counter()).values())
    slice_["job_cpu_s"] = job_cpu_s(slice_["lake"], symbols, days)
    slice_["plan_cpu_per_symbol_s"] = 0.0005
    if slice_["injected_s"]:
        print(f"  latency injected (BENCH_LATENCY={os.environ.get('BENCH_LATENCY')}): {slice_['injected_s']:,.0f} s "
              "over all the run's calls (they overlap)")
    print(f"  slice: SUCCEEDED in {slice_['wall_s']:.0f} s (Glue job {slice_['job_s']:.0f} s); "
          f"{sum(sum(c.values()) for c in steps.values()):,} AWS calls, {job_calls:,} of them by the job; "
          f"{slice_['sim']['requests'].get('/data/history', 0)} Fyers requests, {slice_['sim']['rate_limited']} x 429")
    for step, counter in sorted(steps.items()):
        top = ", ".join(f"{k} {v:,}" for k, v in counter.most_common(4))
        print(f"    {step:<28} {sum(counter.values()):>7,} calls: {top}")
    rows = model(slice_, calls, symbols, days, universe, template)
    print(f"  model at {universe} symbols x {len(all_days)} days (latency per call: {LATENCY_MS['s3:GetObject']} ms "
          f"S3 GET, {LATENCY_MS['glue:*']} ms Glue, ...):")
    for r in rows:
        print(f"    {r['step']:<46} {r['value']:>14,.0f} {r['unit']:<10} of {r['limit']:>12,.0f}  "
              f"{r['share']:>7.0%}  {r['note']}")
    declared = f"{template['glue_workers']} workers, {template['glue_timeout_min']} min"
    print(f"    one Glue run as declared ({declared}) would fit ~{slice_['job_capacity']:,.0f} symbol-days; the plan "
          f"sizes larger runs (MaxGlueWorkers {template['max_glue_workers']})")
    priced = costs(calls, slice_, symbols, n_days, universe, len(all_days), template)
    for run, items in priced.items():
        print(f"    cost of the {run} ({'universe since 2017' if run == 'backfill' else 'one day, universe'}): "
              f"${sum(items.values()):,.2f} = " + ", ".join(f"{k} ${v:,.2f}" for k, v in items.items()))
    answered = queries(slice_["lake"], days)
    print("  queries on the slice's lake (DuckDB, best of 3), per-day tables vs compacted tier:")
    for q in answered:
        (a, b), (ta, tb) = q["files"], q["seconds"]
        print(f"    {q['query']:<40} {q['rows']:>9,} rows: {a:>6,} files {ta * 1000:8.1f} ms vs {b:>3} files "
              f"{tb * 1000:7.1f} ms ({ta / tb:5.1f}x faster, {a / max(b, 1):6.0f}x fewer files)")
    worst = max((r for r in rows if r["aws"]), key=lambda r: r["share"])
    year = answered[-1]
    k, m = year["seconds"][0] / year["seconds"][1], year["files"][0] / max(year["files"][1], 1)
    print(f"  ({time.monotonic() - started:.0f} s in all; worst step: {worst['step']})")
    print(f"scale: worst step {worst['share']:.0%} of its limit at {universe} symbols x {len(all_days)} days; "
          f"compacted queries {k:.0f}x faster, {m:.0f}x fewer files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
