"""make bench-soak: 1,000 tickers x 5 trading days of backfill through the real workflow at real Fyers limits.

The local stack (template.yaml + the ASL on moto, every handler and the Glue script in this process) runs one
backfill execution against the Fyers simulator in its own process, at its real limits (10/s, 200/min, the
3-breach day block). While it runs, the resident memory of both processes is sampled every second.

Checked and printed: the execution's outcome; 429s seen by the simulator; every planned symbol-day stored and
complete in the coverage ledger (none lost, none dead-lettered); resident memory at each quarter of the ingest
and after the aggregation, the peak (VmHWM) of each process, and how much each grew from the first quarter of
the ingest to its end beyond the objects the emulated S3 came to hold meanwhile (moto keeps every stored object
in the stack process's memory; on AWS that is S3's). Flat = a few MB, not a leak per ticker.

Not a test. The last line is ``soak: planned=<n> stored=<n> dead-lettered=<n> lost=<n>, <n> x 429, peak RSS
stack <MB> MB / simulator <MB> MB, growth beyond stored data <MB> / <MB> MB``. Environment: BENCH_TICKERS (1000),
BENCH_DAYS (5), BENCH_CONCURRENCY (10). About 10-17 minutes at the defaults: 1,000 requests at 200/min are 5
minutes by themselves, and the aggregation writes 25,000 objects into the emulated S3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

from pricefeed.local.run import app_config, free_port, fyers_parameters, login, wait_for
from pricefeed.local.stack import LocalStack
from pricefeed.ops.launch import progress, start_run
from pricefeed.trading_calendar import TradingCalendar, last_closed_trading_day


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


class MemorySampler(threading.Thread):
    """(seconds since start, stack RSS MB, simulator RSS MB) every ``every_s``, until ``stop()``."""

    def __init__(self, sim_pid: int, every_s: float = 1.0):
        super().__init__(daemon=True)
        self.sim_pid, self.every_s, self.samples = sim_pid, every_s, []
        self._done = threading.Event()
        self.t0 = time.monotonic()

    def run(self) -> None:
        while not self._done.wait(self.every_s):
            self.samples.append((time.monotonic() - self.t0, _rss_mb(os.getpid()), _rss_mb(self.sim_pid)))

    def stop(self) -> None:
        self._done.set()
        self.join()

    def at(self, t: float) -> tuple[float, float]:
        """The sample nearest ``t``."""
        nearest = min(self.samples, key=lambda s: abs(s[0] - t))
        return nearest[1], nearest[2]


def _bytes_held(s3, outputs: dict) -> float:
    """MB of objects the emulated S3 keeps in this process's memory (moto holds every object it stores)."""
    total = 0
    for bucket in (outputs["RawBucketName"], outputs["ProcessedBucketName"]):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            total += sum(obj["Size"] for obj in page.get("Contents", []))
    return total / 2**20


def _trading_days(count: int) -> list:
    calendar, day, days = TradingCalendar(), last_closed_trading_day(), []
    while len(days) < count:
        if calendar.is_trading_day(day):
            days.append(day)
        day -= timedelta(days=1)
    return sorted(days)


def _sim_stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/_sim/stats", timeout=30) as answer:  # noqa: S310 - loopback simulator
        return json.loads(answer.read())


def _start_simulator(config: dict, workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = (workdir / "simulator.log").open("w")
    args = [sys.executable, "-m", "pricefeed.simulator", "--port", str(port), "--quiet"]
    args += ["--app-id", config["app_id"], "--secret-key", config["secret_key"], "--pin", config["pin"]]
    args += ["--redirect-uri", config["redirect_uri"]]
    sim = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603 - our own module
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            _sim_stats(url)
            return sim, url
        except OSError:
            if sim.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the simulator did not start; see {workdir / 'simulator.log'}") from None
            time.sleep(0.2)


def main() -> int:
    tickers, n_days = int(os.environ.get("BENCH_TICKERS", "1000")), int(os.environ.get("BENCH_DAYS", "5"))
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", "10"))
    days = _trading_days(n_days)
    workdir = Path(tempfile.mkdtemp(prefix="pricefeed-soak-"))
    csv = "symbol\n" + "".join(f"NSE:SIM{i:04d}-EQ\n" for i in range(1, tickers + 1))
    api_port = free_port()
    config = app_config(f"http://127.0.0.1:{api_port}/oauth/callback", environ={})
    print(
        f"bench-soak: {tickers} tickers x {n_days} trading days ({days[0]} .. {days[-1]}) of backfill, "
        f"Map concurrency {concurrency}, real Fyers limits; simulator in its own process"
    )
    sim, sim_url = _start_simulator(config, workdir)
    try:
        parameters = {**fyers_parameters(sim_url), "MapConcurrency": str(concurrency)}
        with LocalStack.start(parameters=parameters, api_port=api_port, workdir=workdir) as stack:
            stack.client("secretsmanager").put_secret_value(
                SecretId=stack.outputs["AppConfigSecretArn"], SecretString=json.dumps(config)
            )
            login(stack)
            figures = _soak(stack, sim.pid, sim_url, csv, days)
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    return _report(figures, tickers, n_days)


def _soak(stack: LocalStack, sim_pid: int, sim_url: str, csv: str, days: list) -> dict:
    sfn, s3, raw = stack.client("stepfunctions"), stack.client("s3"), stack.outputs["RawBucketName"]
    sampler = MemorySampler(sim_pid)
    sampler.start()
    arn = start_run(
        sfn,
        s3,
        state_machine_arn=stack.outputs["StateMachineArn"],
        raw_bucket=raw,
        run_input={"from": days[0].isoformat(), "to": days[-1].isoformat()},
        csv=csv,
    )
    marks: dict[float, float] = {}  # fraction of tickers done -> seconds since the sampler started
    held: dict[float, float] = {}  # fraction of tickers done -> MB the emulated S3 holds (in this process)
    seen: dict = {}
    while True:
        now = progress(sfn, s3, raw_bucket=raw, execution_arn=arn, seen=seen)
        if now.planned:
            done = (now.ingested + now.failed) / now.planned
            for quarter in (0.25, 0.5, 0.75, 1.0):
                if done >= quarter and quarter not in marks:
                    marks[quarter] = time.monotonic() - sampler.t0
                    held[quarter] = _bytes_held(s3, stack.outputs)
        if now.status != "RUNNING":
            break
        time.sleep(2.0)
    described = wait_for(stack, arn, timeout_s=60)
    wall = time.monotonic() - sampler.t0
    time.sleep(1.5)  # one more memory sample after the run
    sampler.stop()
    output = json.loads(described.get("output") or "{}")
    result = json.loads(s3.get_object(Bucket=raw, Key=output["result_key"])["Body"].read())
    return {
        "status": described["status"],
        "wall": wall,
        "output": output,
        "coverage": result.get("coverage") or {},
        "dead_letters": now.failed + now.unknown,
        "sim": _sim_stats(sim_url),
        "marks": marks,
        "held": {**held, "end": _bytes_held(s3, stack.outputs)},
        "sampler": sampler,
        "peaks": (_rss_mb(os.getpid(), "VmHWM"), max(s[2] for s in sampler.samples)),
    }


def _report(f: dict, tickers: int, n_days: int) -> int:
    sim, coverage, sampler, marks = f["sim"], f["coverage"], f["sampler"], f["marks"]
    planned = (f["output"].get("count") or 0) * n_days
    stored = coverage.get("complete", 0) + coverage.get("with_gaps", 0)
    lost = planned - stored - f["dead_letters"] * n_days
    print(f"  execution: {f['status']} in {f['wall']:.0f} s; {f['output'].get('count')} symbols planned")
    print(
        f"  Fyers: {sim['requests'].get('/data/history', 0)} history requests, {sim['rate_limited']} x 429, "
        f"busiest {sim['window_s']:g}-s window {sim['max_in_any_sliding_window']}, blocked: {sim.get('blocked')}"
    )
    print(
        f"  coverage ledger: {coverage.get('complete', 0)} symbol-days complete, {coverage.get('with_gaps', 0)} with "
        f"gaps, {coverage.get('missing_minutes', 0)} minutes missing"
    )
    held = f["held"]
    print("  resident memory (MB), stack process / simulator process; S3 data the emulator holds in the stack process:")
    for quarter in sorted(marks):
        stack_mb, sim_mb = sampler.at(marks[quarter])
        print(
            f"    {quarter:>4.0%} of tickers done at {marks[quarter]:5.0f} s: {stack_mb:7.1f} / {sim_mb:6.1f}; "
            f"S3 data {held[quarter]:6.1f}"
        )
    end_stack, end_sim = sampler.samples[-1][1:]
    print(f"    after the aggregation:            {end_stack:7.1f} / {end_sim:6.1f}; S3 data {held['end']:6.1f}")
    first = sampler.at(marks.get(0.25, 0.0))
    last = sampler.at(marks.get(1.0, f["wall"]))
    data = held.get(1.0, 0.0) - held.get(0.25, 0.0)
    growth = (last[0] - first[0] - data, last[1] - first[1])
    peak_stack, peak_sim = f["peaks"]
    print(
        f"    peak: {peak_stack:.0f} / {peak_sim:.0f}; growth over the ingest (25% -> 100%) beyond the "
        f"{data:.0f} MB of data stored meanwhile: {growth[0]:+.1f} / {growth[1]:+.1f}"
    )
    print(
        f"soak: planned={planned} stored={stored} dead-lettered={f['dead_letters'] * n_days} lost={lost}, "
        f"{sim['rate_limited']} x 429, peak RSS stack {peak_stack:.0f} MB / simulator {peak_sim:.0f} MB, "
        f"growth beyond stored data {growth[0]:+.0f} / {growth[1]:+.0f} MB"
    )
    ok = f["status"] == "SUCCEEDED" and lost == 0 and sim["rate_limited"] == 0 and stored == tickers * n_days
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
