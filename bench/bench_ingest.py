"""make bench-ingest: how much of Fyers' 200/min budget the real workflow uses, and whether it ever gets a 429.

Runs the real state machine (template.yaml + the ASL) on the local stack against the Fyers simulator at its real
limits (10/s, 200/min per account, 3-breach day block) for a list of synthetic tickers, one trading day each,
with the Map's concurrency at MAP_CONCURRENCY. Figures come from the simulator (request arrival times, 429s)
and from the ingest function's own log lines (per-ticker wall time, including the wait for the shared budget).

Not a test: it prints figures; the last line is exactly ``ingest-rate: <fraction> of 200/min, <n> x 429``.
Environment: BENCH_TICKERS (default 320: ≥ 90 s of traffic at 200/min), BENCH_CONCURRENCY (default 10).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pricefeed.local.run import app_config, free_port, fyers_parameters, login, start_execution, wait_for
from pricefeed.local.stack import LocalStack
from pricefeed.simulator import SimulatorConfig, SimulatorServer
from pricefeed.trading_calendar import last_closed_trading_day


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _ingested_records(log_path: Path) -> list[dict]:
    """The ingest handler's "ingested" log records (one per ticker: its wall time, refused budget writes)."""
    if not log_path.exists():
        return []
    records = (json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{"))
    return [r for r in records if r.get("message") == "ingested" and "elapsed_ms" in r]


def main() -> int:
    tickers = int(os.environ.get("BENCH_TICKERS", "320"))
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", "10"))
    day = last_closed_trading_day()
    workdir = Path(tempfile.mkdtemp(prefix="pricefeed-bench-"))
    csv = workdir / "tickers.csv"
    csv.write_text("symbol\n" + "".join(f"NSE:SIM{i:04d}-EQ\n" for i in range(1, tickers + 1)))

    api_port = free_port()
    config = app_config(f"http://127.0.0.1:{api_port}/oauth/callback", environ={})
    sim_cfg = SimulatorConfig(
        app_id=config["app_id"], secret_key=config["secret_key"], pin=config["pin"], redirect_uri=config["redirect_uri"]
    )
    print(f"bench-ingest: {tickers} tickers x 1 day ({day}), Map concurrency {concurrency}, real Fyers limits")
    with SimulatorServer(sim_cfg, port=0) as sim:
        parameters = {**fyers_parameters(sim.url), "MapConcurrency": str(concurrency)}
        with LocalStack.start(parameters=parameters, api_port=api_port, workdir=workdir) as stack:
            stack.client("secretsmanager").put_secret_value(
                SecretId=stack.outputs["AppConfigSecretArn"], SecretString=json.dumps(config)
            )
            login(stack)
            sim.reset_stats()
            started = time.monotonic()
            described = wait_for(stack, start_execution(stack, day, csv), timeout_s=3600)
            wall = time.monotonic() - started
            stats = sim.stats()
            records = _ingested_records(workdir / "logs" / "IngestSymbolFunction.log")
            latencies = [r["elapsed_ms"] / 1000 for r in records]
            refused = sum(r.get("budget_writes_refused", 0) for r in records)

    arrivals = sorted(stats["history_arrivals"])
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    per_minute = (len(arrivals) - 1) / span * 60 if span else 0.0
    fraction = per_minute / sim_cfg.per_minute
    output = json.loads(described.get("output") or "{}")
    print(f"  execution: {described['status']} in {wall:.1f} s; planned {output.get('count')} symbols")
    print(f"  history requests accepted: {len(arrivals)} over {span:.1f} s of traffic")
    print(f"  sustained rate: {per_minute:.1f} requests/min ({fraction:.3f} of {sim_cfg.per_minute}/min)")
    print(
        f"  busiest {sim_cfg.window_s:g}-s window: {stats['max_in_any_sliding_window']} requests; "
        f"busiest second: {stats['per_second_max']}"
    )
    print(
        f"  per-ticker latency (ingest incl. waiting for the budget): p50 {_percentile(latencies, 0.5):.2f} s, "
        f"p95 {_percentile(latencies, 0.95):.2f} s over {len(latencies)} tickers"
    )
    if latencies:
        print(f"  mean {statistics.fmean(latencies):.2f} s")
        print(f"  shared budget item: {refused} conditional writes refused, {refused / len(records):.2f} per slot")
    print(f"ingest-rate: {fraction:.2f} of {sim_cfg.per_minute}/min, {stats['rate_limited']} x 429")
    return 0 if described["status"] == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
