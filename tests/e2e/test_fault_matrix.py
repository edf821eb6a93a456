"""The fault-injection matrix: one e2e test per fault, on the local stack (template.yaml + the ASL on moto) with the
Fyers simulator's fault knobs and the local stack's S3/Glue fault hooks.

Every row checks (a) the execution's outcome, (b) the accounting identity of its faulted run(s), and (c) that a
rerun after the fault clears leaves every planned symbol-day with all its 375 session minutes in the 1m Parquet,
no duplicate minute, and bars equal to the newest raw answer of each minute.

Accounting, per run (counted from S3, never typed): *planned* = the distinct valid tickers of the run's CSV x its
IST trading date. A symbol-day is *stored* when the run's ingest manifest (``ohlcv/runs/<run>/ingested/``) names a
raw answer that lies under that day's raw prefix and covers its session; *dead-lettered* when exactly ONE dead
letter of the run (``ohlcv/errors/...``, ``run_id`` = the run) names it. A ticker that failed, was retried and
then stored is stored, with no dead letter. ``lost = planned - stored - dead-lettered`` must be 0, nothing may be
both, and a dead-lettered ticker has no manifest in that run (nothing half-committed). An answer written by an
attempt that failed afterwards (the manifest write failed) stays in raw (raw is never rewritten): it is in no
manifest, so it is not counted stored, and the rerun's newer answer wins. CSV rows that are not tickers (blank,
malformed) are not planned: the plan reports them in its output (``rejected`` with line and reason;
``duplicates`` counted); a well-formed ticker on an exchange Fyers has no master for is planned and dead-lettered.

Outcomes (run = the faulted run; "rerun" = after the fault clears; "all stored" = planned == stored, no dead letter):

| Row                                  | Fault injected              | Faulted run                      | Rerun       |
| ------------------------------------ | --------------------------- | -------------------------------- | ----------- |
| 429 storm, 40 workers at once        | 429 + Retry-After for 4 s   | SUCCEEDED, retried, all stored   | -           |
| 429 storm, 2nd breach of the day     | a breach earlier + storm    | SUCCEEDED, all dead-lettered (a) | fills all   |
| 5xx bursts                           | next 4 answers 5xx          | SUCCEEDED, retried, all stored   | -           |
| timeouts                             | slower than client timeout  | SUCCEEDED, retried, all stored   | -           |
| connection resets                    | next 4 connections reset    | SUCCEEDED, retried, all stored   | -           |
| malformed JSON                       | next 4 answers half a JSON  | SUCCEEDED, retried, all stored   | -           |
| token expired mid-run                | dies after 2 answers (e1)   | SUCCEEDED, 1 refresh, all stored | -           |
| refresh fails: wrong PIN             | expired token, wrong PIN    | waits for a login (b), all stored| -           |
| refresh fails: refresh token expired | both tokens expired         | waits for a login (c), all stored| -           |
| invalid symbol                       | unknown; delisted since     | SUCCEEDED, 2 dead-lettered (d)   | fills 1 (d) |
| S3 write fails for one ticker        | PutObject 500 InternalError | SUCCEEDED, 2 dead-lettered (e)   | fills all   |
| Glue job fails                       | the job run FAILS           | FAILED (f), all stored in raw    | builds bars |
| duplicate + out-of-order candles     | 2nd ingest reshaped (g)     | SUCCEEDED twice, all stored      | wins again  |
| bad ticker CSV rows                  | blank, dup, malformed, XYZ: | SUCCEEDED, 1 dead-lettered (h)   | -           |

(a) RateBudgetExhausted naming the breaches: the run stops asking rather than risk Fyers' day-long block; the
    simulator never blocks the account. The rerun is the next IST day (the budget's breaches reset).
(e1) Where Fyers still honours refresh tokens (the simulator refuses them by default, as Fyers since April 2026:
    ``test_login_day.py`` has the daily-login scenarios).
(b) Fyers refuses the refresh for the invalid PIN (asked once, for every worker, and named in the log, never the
    PIN itself): a login is needed, so the symbols pause and the run waits in "Wait for today's Fyers login"; the
    login resumes it and every ticker is stored, with no dead letter. (c) The same when the refresh token expired
    (Fyers is not asked).
(d) InvalidSymbol: the plan's (0 attempts, no request) for the one not in the symbol master; the ingest's (1
    request, never retried) for the delisted one. Once Fyers serves the delisted one again the rerun stores it;
    the unknown one is dead-lettered by every run (permanent, not a fault that clears).
(e) One ticker's raw keys, another's ingest manifest: S3's 500 is TransientStorageError, retried by the state
    machine (5 attempts) and then dead-lettered; no manifest, nothing of the first written at all, neither
    watermark moved (so a retry or the next scheduled run asks again); the orphan answer of the second is
    harmless (newest answer wins).
(f) In "Aggregate what was ingested into Parquet bars", with the job's error; no bars, no partitions.
(g) Newest-first, every candle twice, prices revised by +1.5: one bar per minute, the newest answer's values; a
    third, ordinary ingest wins in turn.
(h) Blank-symbol and malformed rows are in the plan output's ``rejected`` (line, value, reason), the duplicate
    is collapsed and counted in ``duplicates``; the ticker on exchange XYZ (no Fyers master) is planned, listed
    in ``unknown`` and dead-lettered InvalidSymbol naming the exchange. An empty line is no row at all.

Each row uses its own NSE trading date in September 2026 and its own synthetic tickers (``NSE:SIM29xx-EQ``), so it
shares no symbol-day with another test; each leaves the shared stack and simulator as it found them (knobs, the
login, the rate budget, the app config). The client's timeout is compressed for the timeout row only.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import pyarrow.parquet as pq
import pytest

from pricefeed.auth.store import TokenStore
from pricefeed.fyers.client import FyersClient
from pricefeed.fyers.ratelimit import AccountRateLimiter
from pricefeed.ingest.watermark import Watermarks
from pricefeed.lake import paths
from pricefeed.local.run import login, start_execution, wait_for
from pricefeed.symbol import Symbol
from stackkit import (
    bars_1m,
    budget,
    keys,
    log_in_again,
    monthly_rows,
    newest_from_raw,
    next_ist_day_for_the_budget,
    raw_store,
    read_json,
    session_minutes,
    state_table,
    waiting_for_login,
)


def sims(*numbers: int) -> list[str]:
    return [f"NSE:SIM{n:04d}-EQ" for n in numbers]


# ---------------------------------------------------------------------------------------------- running


@dataclass
class Run:
    name: str
    status: str
    output: dict
    described: dict


def start_day(pipeline, day: date, symbols: list[str] | None = None, *, csv: str | None = None) -> str:
    """Start a run of ``day`` for ``symbols`` (or the given CSV text), as `pricefeed run` does; its ARN."""
    text = csv if csv is not None else "symbol\n" + "".join(f"{s}\n" for s in symbols or [])
    return start_execution(pipeline.stack, day, csv=text)


def finish(pipeline, arn: str) -> Run:
    described = wait_for(pipeline.stack, arn, timeout_s=180)
    return Run(described["name"], described["status"], json.loads(described.get("output") or "{}"), described)


def run_day(pipeline, day: date, symbols: list[str] | None = None, *, csv: str | None = None) -> Run:
    return finish(pipeline, start_day(pipeline, day, symbols, csv=csv))


def history_requests(pipeline) -> int:
    return pipeline.sim.stats()["requests"].get("/data/history", 0)


# ---------------------------------------------------------------------------------------------- reading S3


def manifest(pipeline, run: Run, symbol: str) -> dict | None:
    s3, raw = raw_store(pipeline)
    key = paths.ingested_manifest_key(paths.RunKeys(run.name).ingested_prefix, Symbol.parse(symbol))
    return read_json(s3, raw, key)


def _answer_covers(s3, raw: str, key: str, symbol: str, day: date) -> bool:
    """Whether ``key`` (named by a manifest) is an answer for ``symbol`` under ``day``'s raw prefix (itself or a
    reference with its file name) whose range covers the day's session, as Fyers sent it (HTTP 200, s ok/no_data)."""
    listed = {k.rsplit("/", 1)[1] for k in keys(s3, raw, paths.raw_day_prefix(Symbol.parse(symbol), day))}
    envelope = read_json(s3, raw, key)
    if key.rsplit("/", 1)[1] not in listed or envelope is None or envelope.get("symbol") != symbol:
        return False
    session = session_minutes(day)
    return (
        envelope["range_from"] <= session[0]
        and envelope["range_to"] >= session[-1] + 59
        and envelope["http_status"] == 200
        and envelope["response"].get("s") in ("ok", "no_data")
    )


@dataclass
class Accounting:
    planned: set[tuple[str, date]]
    stored: set[tuple[str, date]]
    letters: dict[tuple[str, date], list[dict]]  # every dead letter of the run, by symbol-day

    @property
    def dead_lettered(self) -> set[tuple[str, date]]:
        return set(self.letters) & self.planned

    @property
    def lost(self) -> set[tuple[str, date]]:
        return self.planned - self.stored - self.dead_lettered

    def letter(self, symbol: str, day: date) -> dict:
        (only,) = self.letters[(symbol, day)]
        return only


def account(pipeline, run: Run, planned: list[str], day: date) -> Accounting:
    """The run's accounting, from S3 (see the module docstring)."""
    s3, raw = raw_store(pipeline)
    stored = set()
    for symbol in planned:
        found = manifest(pipeline, run, symbol)
        if found and any(_answer_covers(s3, raw, key, symbol, day) for key in found["raw_keys"]):
            stored.add((symbol, day))
    letters: dict[tuple[str, date], list[dict]] = {}
    for key in keys(s3, raw, paths.DEAD_LETTER_ROOT):
        letter = read_json(s3, raw, key) or {}
        if letter.get("run_id") == run.name:
            letters.setdefault((letter["symbol"], date.fromisoformat(letter["trading_date"])), []).append(
                {"key": key, **letter}
            )
    return Accounting({(s, day) for s in planned}, stored, letters)


def counted(pipeline, run: Run, planned: list[str], day: date, tally, row: str) -> Accounting:
    """The run's accounting, counted into the matrix and held to the identity."""
    acc = account(pipeline, run, planned, day)
    check_identity(pipeline, run, acc, tally, row)
    return acc


def check_identity(pipeline, run: Run, acc: Accounting, tally, row: str) -> None:
    """(b): count the run into the matrix, then hold it to the identity."""
    tally.add(
        row,
        planned=len(acc.planned),
        stored=len(acc.stored),
        dead_lettered=len(acc.dead_lettered),
        lost=len(acc.lost),
    )
    assert acc.lost == set(), f"{row}: planned symbol-days neither stored nor dead-lettered: {sorted(acc.lost)}"
    assert acc.stored & acc.dead_lettered == set(), f"{row}: stored AND dead-lettered: {acc.stored & acc.dead_lettered}"
    assert set(acc.letters) <= acc.planned, f"{row}: dead letters for unplanned symbol-days: {set(acc.letters)}"
    assert all(len(v) == 1 for v in acc.letters.values()), f"{row}: more than one dead letter for a symbol-day"
    for symbol, _day in acc.dead_lettered:
        assert manifest(pipeline, run, symbol) is None, f"{row}: {symbol} dead-lettered but has an ingest manifest"


# ---------------------------------------------------------------------------------------------- bars


def check_bars(pipeline, day: date, symbols: list[str]) -> None:
    """(c): every session minute once, in order, equal to the newest raw answer; the ledger says complete."""
    for symbol in symbols:
        table = bars_1m(pipeline, symbol, day)
        assert table is not None, f"{symbol} {day}: no 1m bars"
        minutes = [int(t.timestamp()) for t in table.column("ts").to_pylist()]
        assert minutes == session_minutes(day) and len(minutes) == 375, f"{symbol} {day}: {len(minutes)} minutes"
        rows = table.select(["open", "high", "low", "close", "volume"]).to_pylist()
        got = {m: tuple(r.values()) for m, r in zip(minutes, rows, strict=True)}
        assert got == newest_from_raw(pipeline, symbol, day), f"{symbol} {day}: bars differ from the newest raw"
    s3, bucket = pipeline.stack.client("s3"), pipeline.stack.outputs["ProcessedBucketName"]
    for symbol in symbols:
        body = s3.get_object(Bucket=bucket, Key=paths.coverage_key(Symbol.parse(symbol), day))["Body"].read()
        (ledger,) = pq.read_table(io.BytesIO(body)).to_pylist()
        assert ledger["complete"] and ledger["stored_minutes"] == ledger["expected_minutes"] == 375


# ---------------------------------------------------------------------------------------------- shared state


@pytest.fixture(autouse=True)
def leave_as_found(pipeline) -> Iterator[None]:
    """Every row leaves the simulator's knobs as it found them, whatever happened."""
    knobs = pipeline.sim.set_faults()
    yield
    pipeline.sim.set_faults(**knobs)


def wait_for_room_in_the_minute(seconds: float) -> None:
    """The limiter counts 429 breaches per clock minute: start a short storm only when it fits in this one."""
    deadline = time.monotonic() + 70
    while 60 - time.time() % 60 < seconds:
        assert time.monotonic() < deadline
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------- the rows


def test_a_429_storm_pauses_every_worker_until_it_ends_and_all_tickers_land(pipeline, fault_matrix):
    """40 workers at once (the stack's Map concurrency; SIM2950..SIM2989), each holding a slot of the shared
    budget when the first answer is a 429: the breaker must hold back also the workers asleep for their slots."""
    row, day = "429 storm", date(2026, 9, 1)
    symbols = sims(*range(2950, 2950 + pipeline.map_concurrency))
    fault_matrix.ran(row)
    next_ist_day_for_the_budget(pipeline)
    try:
        wait_for_room_in_the_minute(40)  # the plan and 40 Lambdas start first: slow on a busy machine
        pipeline.sim.set_faults(rate_limit_storm_s=4.0)  # from the run's first history request, however late

        run = run_day(pipeline, day, symbols)
        storm_ends = pipeline.sim.set_faults()["rate_limit_storm_until"]

        assert run.status == "SUCCEEDED", run.described.get("error")
        acc = counted(pipeline, run, symbols, day, fault_matrix, row)
        assert acc.stored == acc.planned and acc.letters == {}
        arrivals = pipeline.sim.stats()["history_arrivals"]
        during = [t for t in arrivals if t < storm_ends]  # each answered 429
        # the first 429 trips the breaker; the workers asleep for their slots (10 a second) re-read the budget
        # before sending: only a request whose slot came before the breaker's write reached DynamoDB goes out
        # meanwhile. Without the re-check ~39 of the 40 workers sent into the storm.
        assert 1 <= len(during) <= 4, f"{len(during)} requests sent into the 4-s storm: {during}"
        assert len(arrivals) == len(during) + len(symbols)  # then one answer each
        s3, raw = raw_store(pipeline)
        for symbol in symbols:  # the breaker held every worker back until the storm was over
            prefix = paths.raw_day_prefix(Symbol.parse(symbol), day)
            fetched = [read_json(s3, raw, k)["fetched_at"] for k in keys(s3, raw, prefix)]
            assert [datetime.fromisoformat(f).timestamp() >= storm_ends for f in fetched] == [True]
        status = budget(pipeline).status()
        assert status["breaches_today"] == 1
        assert not pipeline.sim.stats()["blocked"]
        check_bars(pipeline, day, symbols)
    finally:
        next_ist_day_for_the_budget(pipeline)


def test_a_storm_that_would_be_the_second_breach_of_the_day_stops_the_run_asking(pipeline, fault_matrix):
    row, day, symbols = "429 storm, 2nd breach of the day", date(2026, 9, 2), sims(2904, 2905, 2906)
    fault_matrix.ran(row)
    next_ist_day_for_the_budget(pipeline)
    db, table = state_table(pipeline)
    try:
        # A storm a minute ago already cost one breach today.
        earlier = AccountRateLimiter(db, table, pipeline.sim.config.app_id, clock=lambda: time.time() - 61)
        asyncio.run(earlier.record_rate_limited(0.001))
        pipeline.sim.set_faults(rate_limit_storm_until=time.time() + 120)

        run = run_day(pipeline, day, symbols)
        pipeline.sim.set_faults(rate_limit_storm_until=None)

        assert run.status == "SUCCEEDED", run.described.get("error")
        acc = counted(pipeline, run, symbols, day, fault_matrix, row)
        assert acc.dead_lettered == acc.planned
        for symbol in symbols:
            letter = acc.letter(symbol, day)
            assert letter["error_type"] == "RateBudgetExhausted" and "breaches" in letter["error_message"]
        assert budget(pipeline).status()["breaches_today"] == 2
        assert not pipeline.sim.stats()["blocked"]
    finally:
        next_ist_day_for_the_budget(pipeline)  # after midnight IST

    rerun = run_day(pipeline, day, symbols)

    assert rerun.status == "SUCCEEDED"
    assert account(pipeline, rerun, symbols, day).stored == {(s, day) for s in symbols}
    check_bars(pipeline, day, symbols)


def test_5xx_bursts_are_retried_and_every_ticker_lands(pipeline, fault_matrix):
    row, day, symbols = "5xx bursts", date(2026, 9, 3), sims(2907, 2908, 2909)
    fault_matrix.ran(row)
    pipeline.sim.reset_stats()
    pipeline.sim.set_faults(fail_next_5xx=4)

    run = run_day(pipeline, day, symbols)

    assert run.status == "SUCCEEDED", run.described.get("error")
    acc = counted(pipeline, run, symbols, day, fault_matrix, row)
    assert acc.stored == acc.planned and acc.letters == {}
    assert history_requests(pipeline) == len(symbols) + 4
    check_bars(pipeline, day, symbols)


def test_answers_slower_than_the_client_timeout_are_retried_and_every_ticker_lands(pipeline, fault_matrix, monkeypatch):
    row, day, symbols = "timeouts", date(2026, 9, 4), sims(2910, 2911, 2912)
    fault_matrix.ran(row)
    # The client waits 20 s for an answer, here 1 s; the simulator answers after 1.5 s until 2 requests arrived.
    monkeypatch.setitem(FyersClient.__init__.__kwdefaults__, "timeout_s", 1.0)
    pipeline.sim.reset_stats()
    pipeline.sim.set_faults(latency_ms=1500)
    arn = start_day(pipeline, day, symbols)
    deadline = time.monotonic() + 60
    while history_requests(pipeline) < 2:
        assert time.monotonic() < deadline, "no history request arrived"
        time.sleep(0.02)
    pipeline.sim.set_faults(latency_ms=0)
    run = finish(pipeline, arn)

    assert run.status == "SUCCEEDED", run.described.get("error")
    acc = counted(pipeline, run, symbols, day, fault_matrix, row)
    assert acc.stored == acc.planned and acc.letters == {}
    assert history_requests(pipeline) >= len(symbols) + 2  # the timed-out ones were asked again
    check_bars(pipeline, day, symbols)


def test_connection_resets_are_retried_and_every_ticker_lands(pipeline, fault_matrix):
    row, day, symbols = "connection resets", date(2026, 9, 7), sims(2913, 2914, 2915)
    fault_matrix.ran(row)
    pipeline.sim.reset_stats()
    pipeline.sim.set_faults(fail_next_reset=4)

    run = run_day(pipeline, day, symbols)

    assert run.status == "SUCCEEDED", run.described.get("error")
    acc = counted(pipeline, run, symbols, day, fault_matrix, row)
    assert acc.stored == acc.planned and acc.letters == {}
    assert pipeline.sim.stats()["faults"].get("reset") == 4
    assert history_requests(pipeline) == len(symbols) + 4
    check_bars(pipeline, day, symbols)


def test_malformed_json_answers_are_retried_and_never_reach_raw(pipeline, fault_matrix):
    row, day, symbols = "malformed JSON", date(2026, 9, 8), sims(2916, 2917, 2918)
    fault_matrix.ran(row)
    pipeline.sim.reset_stats()
    pipeline.sim.set_faults(fail_next_malformed=4)

    run = run_day(pipeline, day, symbols)

    assert run.status == "SUCCEEDED", run.described.get("error")
    acc = counted(pipeline, run, symbols, day, fault_matrix, row)
    assert acc.stored == acc.planned and acc.letters == {}
    assert pipeline.sim.stats()["faults"].get("malformed") == 4
    s3, raw = raw_store(pipeline)
    for symbol in symbols:  # one answer each, whole: the cut-off bodies were refused, not stored
        (key,) = keys(s3, raw, paths.raw_day_prefix(Symbol.parse(symbol), day))
        assert len(read_json(s3, raw, key)["response"]["candles"]) == 375
    check_bars(pipeline, day, symbols)


def test_an_access_token_expiring_mid_run_is_refreshed_once(pipeline, fault_matrix):
    row, day, symbols = "token expired mid-run", date(2026, 9, 9), sims(2919, 2920, 2921, 2922)
    fault_matrix.ran(row)
    pipeline.sim.reset_stats()
    knobs = pipeline.sim.set_faults()  # as they are, to restore them
    pipeline.sim.set_faults(refresh_policy="honoured")
    pipeline.sim.expire_tokens_after(2)
    try:
        run = run_day(pipeline, day, symbols)
    finally:
        pipeline.sim.set_faults(**knobs)

    assert run.status == "SUCCEEDED", run.described.get("error")
    acc = counted(pipeline, run, symbols, day, fault_matrix, row)
    assert acc.stored == acc.planned and acc.letters == {}
    assert pipeline.sim.stats()["requests"].get("/api/v3/validate-refresh-token") == 1
    check_bars(pipeline, day, symbols)


def test_a_refresh_refused_for_a_wrong_pin_waits_for_a_login_and_loses_nothing(pipeline, fault_matrix):
    row, day, symbols = "refresh fails: wrong PIN", date(2026, 9, 10), sims(2923, 2924, 2925)
    fault_matrix.ran(row)
    secrets, arn = pipeline.stack.client("secretsmanager"), pipeline.stack.outputs["AppConfigSecretArn"]
    config = secrets.get_secret_value(SecretId=arn)["SecretString"]
    wrong = json.loads(config)
    wrong["pin"] = "0000" if wrong["pin"] != "0000" else "9999"
    knobs = pipeline.sim.set_faults()  # as they are, to restore them
    pipeline.sim.set_faults(refresh_policy="honoured")  # honoured, but not with this PIN
    try:
        secrets.put_secret_value(SecretId=arn, SecretString=json.dumps(wrong))
        pipeline.stack.cold_start()  # new containers read the (wrong) app config
        pipeline.sim.reset_stats()
        pipeline.sim.expire_tokens_after(0)
        execution = start_day(pipeline, day, symbols)
        waiting_for_login(pipeline, execution)
        assert pipeline.sim.stats()["requests"].get("/api/v3/validate-refresh-token") == 1  # refused once, for all
        secrets.put_secret_value(SecretId=arn, SecretString=config)
        pipeline.stack.cold_start()
        login(pipeline.stack)  # resumes the run
        run = finish(pipeline, execution)
    finally:
        pipeline.sim.set_faults(**knobs)
        secrets.put_secret_value(SecretId=arn, SecretString=config)
        log_in_again(pipeline)

    assert run.status == "SUCCEEDED", run.described.get("error")
    acc = counted(pipeline, run, symbols, day, fault_matrix, row)
    assert acc.stored == acc.planned and acc.letters == {}
    check_bars(pipeline, day, symbols)


def test_an_expired_refresh_token_waits_for_a_login_and_loses_nothing(pipeline, fault_matrix):
    row, day, symbols = "refresh fails: refresh token expired", date(2026, 9, 11), sims(2926, 2927, 2928)
    fault_matrix.ran(row)
    store = TokenStore(pipeline.stack.client("secretsmanager"), pipeline.stack.outputs["TokenSecretArn"])
    tokens = store.load()
    knobs = pipeline.sim.set_faults()  # as they are, to restore them
    pipeline.sim.set_faults(refresh_policy="honoured")
    try:
        # Day 16 of the login: the refresh token has run out, and Fyers refuses the access token.
        store.save(replace(tokens, refresh_expires_at=datetime.now(UTC) - timedelta(hours=1)))
        pipeline.stack.cold_start()
        pipeline.sim.reset_stats()
        pipeline.sim.expire_tokens_after(0)
        execution = start_day(pipeline, day, symbols)
        waiting_for_login(pipeline, execution)
        assert pipeline.sim.stats()["requests"].get("/api/v3/validate-refresh-token", 0) == 0  # nothing to refresh with
        login(pipeline.stack)
        run = finish(pipeline, execution)
    finally:
        pipeline.sim.set_faults(**knobs)
        log_in_again(pipeline)

    assert run.status == "SUCCEEDED", run.described.get("error")
    acc = counted(pipeline, run, symbols, day, fault_matrix, row)
    assert acc.stored == acc.planned and acc.letters == {}
    check_bars(pipeline, day, symbols)


def test_invalid_symbols_are_dead_lettered_once_and_never_retried(pipeline, fault_matrix):
    row, day = "invalid symbol", date(2026, 9, 16)
    fault_matrix.ran(row)
    good, delisted, unknown = sims(2929, 2930), "NSE:SIM2931-EQ", "NSE:NOSUCHCO-EQ"
    symbols = [*good, delisted, unknown]
    pipeline.sim.reset_stats()
    pipeline.sim.set_faults(delisted_symbols=[delisted])  # still in today's symbol master, -300 from history

    run = run_day(pipeline, day, symbols)

    assert run.status == "SUCCEEDED", run.described.get("error")
    acc = counted(pipeline, run, symbols, day, fault_matrix, row)
    assert acc.stored == {(s, day) for s in good}
    by_plan, by_ingest = acc.letter(unknown, day), acc.letter(delisted, day)
    assert (by_plan["error_type"], by_plan["attempts"]) == ("InvalidSymbol", 0)
    assert "symbol master" in by_plan["error_message"]
    assert (by_ingest["error_type"], by_ingest["attempts"]) == ("InvalidSymbol", 1)
    assert "invalid symbol" in by_ingest["error_message"].lower()
    asked = pipeline.sim.stats()["history_requests_by_symbol"]
    assert unknown not in asked and asked[delisted] == 1  # never retried
    assert [u["symbol"] for u in run.output["unknown"]] == [unknown]

    pipeline.sim.set_faults(delisted_symbols=[])  # Fyers serves it again; the unknown one stays unknown
    rerun = run_day(pipeline, day, symbols)

    assert rerun.status == "SUCCEEDED"
    again = account(pipeline, rerun, symbols, day)
    assert again.stored == {(s, day) for s in [*good, delisted]} and again.dead_lettered == {(unknown, day)}
    check_bars(pipeline, day, [*good, delisted])


def test_s3_refusing_one_tickers_writes_dead_letters_it_without_moving_its_watermark(pipeline, fault_matrix):
    row, day = "S3 write fails for one ticker", date(2026, 9, 17)
    fault_matrix.ran(row)
    raw_fails, manifest_fails, fine = "NSE:SIM2932-EQ", "NSE:SIM2933-EQ", sims(2934, 2935)
    symbols = [raw_fails, manifest_fails, *fine]
    raw_bucket = pipeline.stack.outputs["RawBucketName"]
    watermarks = Watermarks(*state_table(pipeline))
    raw_prefix = paths.raw_symbol_prefix(Symbol.parse(raw_fails))
    with (
        pipeline.stack.fail_s3_writes(f"^{raw_prefix}", bucket=raw_bucket) as refused_raw,
        pipeline.stack.fail_s3_writes(r"^ohlcv/runs/[^/]+/ingested/NSE/SIM2933-EQ\.json$", bucket=raw_bucket) as m,
    ):
        run = run_day(pipeline, day, symbols)

    assert run.status == "SUCCEEDED", run.described.get("error")
    assert refused_raw["refused"] >= 1 and m["refused"] >= 1
    acc = counted(pipeline, run, symbols, day, fault_matrix, row)
    assert acc.stored == {(s, day) for s in fine}
    for symbol in (raw_fails, manifest_fails):
        letter = acc.letter(symbol, day)
        # S3's 500 is worth retrying: the state machine retried the ticker before dead-lettering it
        assert (letter["error_type"], letter["attempts"]) == ("TransientStorageError", 5), letter
        assert letter["error_message"] == "PutObject failed: InternalError (HTTP 500)"
        assert watermarks.get(Symbol.parse(symbol)) is None  # a retry or the next scheduled run asks again
    s3, raw = raw_store(pipeline)
    assert keys(s3, raw, raw_prefix) == []  # nothing of the refused ticker was half-written
    assert all(watermarks.get(Symbol.parse(s)) is not None for s in fine)
    assert bars_1m(pipeline, raw_fails, day) is None and bars_1m(pipeline, manifest_fails, day) is None

    rerun = run_day(pipeline, day, symbols)

    assert rerun.status == "SUCCEEDED"
    assert account(pipeline, rerun, symbols, day).stored == {(s, day) for s in symbols}
    check_bars(pipeline, day, symbols)


def test_a_failing_glue_job_fails_the_run_keeps_raw_and_a_rerun_builds_the_bars(pipeline, fault_matrix):
    row, day, symbols = "Glue job fails", date(2026, 9, 18), sims(2936, 2937, 2938)
    fault_matrix.ran(row)

    with pipeline.stack.glue.fail("Executor lost: the job's workers were terminated"):
        run = run_day(pipeline, day, symbols)

    assert run.status == "FAILED"
    assert "Executor lost" in (run.described.get("cause") or ""), run.described
    history = pipeline.stack.client("stepfunctions").get_execution_history(
        executionArn=run.described["executionArn"], maxResults=1000
    )["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert "Aggregate what was ingested into Parquet bars" in entered
    assert "Register the partitions the job wrote" not in entered
    acc = counted(pipeline, run, symbols, day, fault_matrix, row)
    assert acc.stored == acc.planned and acc.letters == {}  # the ingest is intact in raw
    assert all(bars_1m(pipeline, s, day) is None for s in symbols)
    names = {Symbol.parse(s).name for s in symbols}
    assert monthly_rows(pipeline, paths.bars_monthly_key("1m", "NSE", 2026, 9), names, day) == []

    rerun = run_day(pipeline, day, symbols)

    assert rerun.status == "SUCCEEDED", rerun.described.get("error")
    check_bars(pipeline, day, symbols)
    # The compacted tier caught up too, and its month is registered (the per-day tables are projected).
    assert len(monthly_rows(pipeline, paths.bars_monthly_key("1m", "NSE", 2026, 9), names, day)) == 375 * 3
    assert len(monthly_rows(pipeline, paths.coverage_monthly_key("NSE", 2026, 9), names, day)) == 3
    glue = pipeline.stack.client("glue")
    parts = glue.get_partitions(DatabaseName=pipeline.stack.outputs["GlueDatabaseName"], TableName="bars_monthly")
    assert {tuple(p["Values"]) for p in parts["Partitions"]} >= {(tf, "NSE", "2026", "09") for tf in paths.TIMEFRAMES}



def test_a_glue_job_past_its_timeout_fails_the_run_as_timeout_and_a_rerun_builds_the_bars(pipeline, fault_matrix):
    """The run's Glue Timeout (the plan's, passed to StartJobRun) is enforced as on AWS: at the deadline the run
    is TIMEOUT and the aggregation task fails, whatever the script does after."""
    row, day, symbols = "Glue job times out", date(2026, 9, 23), sims(2947, 2948)
    fault_matrix.ran(row)

    with pipeline.stack.glue.timeout(0.005):  # as if declared so: any real job run takes longer than 5 ms
        run = run_day(pipeline, day, symbols)

    assert run.status == "FAILED"
    cause = json.loads(run.described["cause"])
    assert cause["JobRunState"] == "TIMEOUT" and "timed out" in cause["ErrorMessage"], cause
    history = pipeline.stack.client("stepfunctions").get_execution_history(
        executionArn=run.described["executionArn"], maxResults=1000
    )["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert "Register the partitions the job wrote" not in entered
    acc = counted(pipeline, run, symbols, day, fault_matrix, row)
    assert acc.stored == acc.planned and acc.letters == {}  # the ingest is intact in raw

    rerun = run_day(pipeline, day, symbols)

    assert rerun.status == "SUCCEEDED", rerun.described.get("error")
    check_bars(pipeline, day, symbols)


def test_duplicate_and_out_of_order_candles_across_two_ingests_leave_one_bar_per_minute(pipeline, fault_matrix):
    row, day, symbols = "duplicate + out-of-order candles", date(2026, 9, 21), sims(2939, 2940, 2941)
    fault_matrix.ran(row)

    first = run_day(pipeline, day, symbols)
    # The second ingest of the day: Fyers answers newest-first, every candle twice, with revised prices.
    pipeline.sim.set_faults(candle_order="desc", duplicate_candles=True, price_shift=1.5)
    second = run_day(pipeline, day, symbols)
    pipeline.sim.set_faults(candle_order="asc", duplicate_candles=False, price_shift=0.0)

    for run in (first, second):
        assert run.status == "SUCCEEDED", run.described.get("error")
        acc = counted(pipeline, run, symbols, day, fault_matrix, row)
        assert acc.stored == acc.planned
    s3, raw = raw_store(pipeline)
    for symbol in symbols:
        prefix = paths.raw_day_prefix(Symbol.parse(symbol), day)
        answers = [read_json(s3, raw, k) for k in keys(s3, raw, prefix)]
        (older, newer) = sorted(answers, key=lambda d: d["fetched_at"])
        last, before_last = session_minutes(day)[-1], session_minutes(day)[-2]
        assert [c[0] for c in newer["response"]["candles"]][:4] == [last, last, before_last, before_last]
        bars = bars_1m(pipeline, symbol, day)
        minutes = [int(t.timestamp()) for t in bars.column("ts").to_pylist()]
        closes = dict(zip(minutes, bars.column("close").to_pylist(), strict=True))
        assert closes == {c[0]: c[4] for c in newer["response"]["candles"]}  # the newest answer won every minute
        assert closes != {c[0]: c[4] for c in older["response"]["candles"]}
    check_bars(pipeline, day, symbols)

    third = run_day(pipeline, day, symbols)  # the next, ordinary answer wins in turn

    assert third.status == "SUCCEEDED"
    check_bars(pipeline, day, symbols)
    for symbol in symbols:
        assert bars_1m(pipeline, symbol, day).column("close")[0].as_py() == newest_from_raw(pipeline, symbol, day)[
            session_minutes(day)[0]
        ][3]


def test_bad_rows_of_the_ticker_csv_are_reported_and_the_good_ones_land(pipeline, fault_matrix):
    row, day = "bad ticker CSV rows", date(2026, 9, 22)
    fault_matrix.ran(row)
    csv = (
        "symbol,name\n"
        "NSE:SIM2942-EQ,good 1\n"  # line 2
        ",blank symbol\n"  # line 3
        "\n"  # an empty line is no row at all
        "NSE:SIM2943-EQ,good 2\n"  # line 5
        " nse:sim2943-eq ,the same ticker again\n"  # line 6: a duplicate
        "SIM2944,no exchange\n"  # line 7
        "NSE:BAD/NAME,slash in the name\n"  # line 8
        "XYZ:SIM2945-EQ,an exchange Fyers has no master for\n"  # line 9
        "NSE:SIM2946-EQ,good 3\n"  # line 10
    )
    good, unknown_exchange = sims(2942, 2943, 2946), "XYZ:SIM2945-EQ"
    planned = [*good, unknown_exchange]

    run = run_day(pipeline, day, csv=csv)

    assert run.status == "SUCCEEDED", run.described.get("error")
    out = run.output
    assert [(r["line"], r["value"]) for r in out["rejected"]] == [(3, ""), (7, "SIM2944"), (8, "NSE:BAD/NAME")]
    reasons = [r["reason"] for r in out["rejected"]]
    assert reasons[0] == "blank symbol" and "EXCHANGE:SYMBOL" in reasons[1] and "invalid name" in reasons[2]
    assert out["rejected_count"] == 3 and out["duplicates"] == 1
    assert [u["symbol"] for u in out["unknown"]] == [unknown_exchange] and "exchange XYZ" in out["unknown"][0]["reason"]
    assert out["count"] == len(good)
    acc = counted(pipeline, run, planned, day, fault_matrix, row)
    assert acc.stored == {(s, day) for s in good} and acc.dead_lettered == {(unknown_exchange, day)}
    letter = acc.letter(unknown_exchange, day)
    assert (letter["error_type"], letter["attempts"]) == ("InvalidSymbol", 0)
    assert "exchange XYZ" in letter["error_message"]
    check_bars(pipeline, day, good)
