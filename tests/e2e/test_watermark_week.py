"""The scheduled path across a week, end to end: lapses, redrives, partial answers and a dying job lose no minute.

The real template and ASL on the local stack, the Fyers simulator with its per-symbol knobs (refresh tokens honoured,
as before Fyers' daily-login rule: ``test_login_day.py`` has that rule's scenarios), and ONE clock for the
whole process (the Lambdas, the Glue job, moto's Step Functions and the simulator all read it), moved run by run
with time-machine: Monday 2026-11-23 16:00 IST .. Monday 2026-11-30. Every run is started as the schedule starts
one (no dates: each ticker asks what it has not settled), over an ad-hoc list of seven tickers, each with its
own trouble; the redrive is `pricefeed redrive` itself.

| Scenario            | What goes wrong                                                                  |
| ------------------- | -------------------------------------------------------------------------------- |
| missed-days         | the ticker is left out of the runs of Wednesday 16:00, Thursday and Friday        |
| login-lapse         | the login lapses (refresh token run out) before Thursday's run: Thursday's run    |
|                     | waits for a login and goes on when the operator logs in at 16:20; on Friday       |
|                     | nobody logs in, a run started at 23:59:50 ends NoFyersLogin at midnight with no   |
|                     | dead letter, and Monday's run (after Monday's login) asks Friday too              |
| outage-no-data      | Fyers answers ``no_data`` for the ticker to Wednesday's 16:00 run                 |
| cut-mid-session     | Fyers' answer to Wednesday's 16:00 run stops at 13:59                             |
| published-late      | Fyers publishes the ticker's minutes 3 minutes late (Wednesday 11:00 is the test) |
| listed-mid-range    | the ticker has no candle before Wednesday (listed then)                           |
| holiday-in-range    | Tuesday 2026-11-24 is an NSE holiday inside every ticker's range                  |
| glue-job-dies       | Wednesday 16:00's aggregation job dies on one symbol-day's write (run FAILED)     |
| two-runs-at-once    | two runs of Friday start together: two Glue job runs and two partition repairs   |
|                     | of the same symbol-days side by side (MaxConcurrentRuns 4, as on AWS)             |

Accounting over every planned symbol-day (the calendar's sessions Monday..next Monday x the tickers): *stored*
when its 1m bars hold exactly the minutes the market has for it, each equal to the newest raw answer holding it;
*asked-empty* when the market has none that day, an answer covered it and nothing of it is open; *dead-lettered*
when a dead letter of one of these runs names it and it is not stored; ``lost`` = planned - the three must be 0.
Then one more scheduled run asks one minute per ticker and changes no bar.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from pricefeed.auth.store import TokenStore
from pricefeed.ingest.watermark import Watermarks
from pricefeed.lake import paths
from pricefeed.local.run import wait_for
from pricefeed.ops.launch import start_run
from pricefeed.simulator import market
from pricefeed.symbol import Symbol
from pricefeed.trading_calendar import DEFAULT_CALENDAR, is_trading_day
from stackkit import (
    INGEST,
    bars_1m,
    keys,
    log_in_again,
    newest_from_raw,
    next_ist_day_for_the_budget,
    raw_store,
    read_json,
    waiting_for_login,
)

IST = ZoneInfo("Asia/Kolkata")
MON = date(2026, 11, 23)
WED, THU, FRI, NEXT_MON = MON + timedelta(2), MON + timedelta(3), MON + timedelta(4), MON + timedelta(7)
SCENARIOS = {  # tickers no other e2e test asks
    "missed-days": "NSE:SIM2700-EQ",
    "login-lapse": "NSE:SIM2701-EQ",
    "outage-no-data": "NSE:SIM2702-EQ",
    "cut-mid-session": "NSE:SIM2703-EQ",
    "published-late": "NSE:SIM2704-EQ",
    "listed-mid-range": "NSE:SIM2705-EQ",
    "holiday-in-range": "NSE:SIM2706-EQ",
}
RUN_SCENARIOS = ("glue-job-dies", "two-runs-at-once")
EVERYONE = list(SCENARIOS.values())
MISSED, LATE, NEWCO = SCENARIOS["missed-days"], SCENARIOS["published-late"], SCENARIOS["listed-mid-range"]
OUTAGE, CUT, PLAIN = SCENARIOS["outage-no-data"], SCENARIOS["cut-mid-session"], SCENARIOS["holiday-in-range"]


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=IST)


class Week:
    """Starts runs as the schedule (or a person) does and remembers them."""

    def __init__(self, pipeline, clock):
        self.pipeline, self.clock, self.arns = pipeline, clock, []
        self.sfn, self.s3 = pipeline.stack.client("stepfunctions"), pipeline.stack.client("s3")

    def start(self, now: datetime, symbols: list[str], run_input: dict | None = None) -> str:
        self.clock.move_to(now)
        arn = start_run(
            self.sfn,
            self.s3,
            state_machine_arn=self.pipeline.stack.outputs["StateMachineArn"],
            raw_bucket=self.pipeline.stack.outputs["RawBucketName"],
            run_input=run_input or {},  # no dates: a scheduled run
            csv="symbol\n" + "".join(f"{s}\n" for s in symbols),
        )
        self.arns.append(arn)
        return arn

    def finish(self, arn: str) -> dict:
        described = wait_for(self.pipeline.stack, arn, timeout_s=300)
        return {**described, "output": json.loads(described.get("output") or "{}")}

    def run(self, now: datetime, symbols: list[str], run_input: dict | None = None) -> dict:
        return self.finish(self.start(now, symbols, run_input))

    def executions(self) -> set[str]:
        machine = self.pipeline.stack.outputs["StateMachineArn"]
        pages = self.sfn.get_paginator("list_executions").paginate(stateMachineArn=machine)
        return {e["executionArn"] for page in pages for e in page["executions"]}

    def letters(self) -> set[tuple[str, date]]:
        """(symbol, trading date) of every dead letter of this week's runs."""
        s3, raw = raw_store(self.pipeline)
        names = {arn.rsplit(":", 1)[1] for arn in self.arns}
        found = set()
        for key in keys(s3, raw, paths.DEAD_LETTER_ROOT):
            letter = read_json(s3, raw, key) or {}
            if letter.get("run_id") in names:
                found.add((letter["symbol"], date.fromisoformat(letter["trading_date"])))
        return found


@pytest.fixture
def week(pipeline, tmp_path, monkeypatch):
    """The local stack as `pricefeed local up` leaves it for the CLI; a week in November 2026 on one clock.
    Afterwards: today's clock, a fresh rate budget and login, and the simulator's knobs as they were."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PRICEFEED_STACK", raising=False)
    (tmp_path / ".pricefeed").mkdir()
    state = {"pid": 0, "endpoint": pipeline.stack.endpoint_url, **pipeline.stack.outputs}
    (tmp_path / ".pricefeed" / "local.json").write_text(json.dumps(state))
    knobs = pipeline.sim.set_faults()  # as they are, to restore them
    pipeline.sim.set_faults(refresh_policy="honoured")
    next_ist_day_for_the_budget(pipeline)  # its slots are today's: a clock moved back would wait for them
    try:
        with time_machine.travel(at(MON, 15, 59), tick=True) as clock:
            log_in_again(pipeline)  # a login of that Monday
            yield Week(pipeline, clock)
    finally:
        pipeline.sim.set_faults(**knobs)
        next_ist_day_for_the_budget(pipeline)
        log_in_again(pipeline)  # the week's tokens died long ago


def etag(pipeline, symbol: str, day: date) -> str | None:
    """The 1m bars object of the symbol-day as it is now (None: none)."""
    s3, bucket = pipeline.stack.client("s3"), pipeline.stack.outputs["ProcessedBucketName"]
    key = paths.processed_key("1m", Symbol.parse(symbol), day)
    found = s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
    return found[0]["ETag"] + found[0]["LastModified"].isoformat() if found else None


def job_runs(pipeline, arns: list[str]) -> list[dict]:
    """The aggregation job's runs of these executions (GetJobRuns), in their order."""
    glue = pipeline.stack.client("glue")
    job = pipeline.stack.physical_id("AggregateJob")
    runs = [r for page in glue.get_paginator("get_job_runs").paginate(JobName=job) for r in page["JobRuns"]]
    names = [arn.rsplit(":", 1)[1] for arn in arns]
    return [next(r for r in runs if f"/{name}/" in json.dumps(r["Arguments"])) for name in names]


def lapse_the_login(pipeline) -> None:
    """Day 16 of a login: the refresh token has run out and Fyers refuses the access token."""
    store = TokenStore(pipeline.stack.client("secretsmanager"), pipeline.stack.outputs["TokenSecretArn"])
    tokens = store.load()
    store.save(replace(tokens, refresh_expires_at=datetime.now(IST) - timedelta(hours=1)))
    pipeline.stack.cold_start(INGEST)
    pipeline.sim.expire_tokens_after(0)


def market_minutes(pipeline, symbol: str, day: date) -> list[int]:
    """The minutes the simulated market has for ``symbol`` on ``day`` (none before its listing)."""
    if symbol == NEWCO and day < WED:
        return []
    return [c[0] for c in market.minute_candles(pipeline.sim.config.seed, symbol, day)]


def account(pipeline, letters: set[tuple[str, date]]) -> dict[str, dict[str, int]]:
    """Per ticker: its planned symbol-days and how each ended (see the module docstring)."""
    days = [MON + timedelta(i) for i in range((NEXT_MON - MON).days + 1) if is_trading_day(MON + timedelta(i))]
    marks = Watermarks(pipeline.stack.client("dynamodb"), pipeline.stack.outputs["StateTableName"])
    s3, raw = raw_store(pipeline)
    per: dict[str, dict[str, int]] = {}
    for symbol in EVERYONE:
        counts = per[symbol] = dict.fromkeys(("planned", "stored", "asked_empty", "dead_lettered", "lost"), 0)
        state = marks.load(Symbol.parse(symbol))
        for day in days:
            counts["planned"] += 1
            want = market_minutes(pipeline, symbol, day)
            table = bars_1m(pipeline, symbol, day)
            got = {}
            if table is not None:
                rows = table.select(["ts", "open", "high", "low", "close", "volume"]).to_pylist()
                got = {int(r.pop("ts").timestamp()): tuple(r.values()) for r in rows}
            opens, closes = DEFAULT_CALENDAR.session_minutes(day)[0]
            open_in_day = any(s.first < closes and s.last >= opens for s in state.open)
            asked = keys(s3, raw, paths.raw_day_prefix(Symbol.parse(symbol), day))
            if want and sorted(got) == want and got == newest_from_raw(pipeline, symbol, day):
                counts["stored"] += 1
            elif not want and asked and not open_in_day and not got:
                counts["asked_empty"] += 1
            elif (symbol, day) in letters:
                counts["dead_lettered"] += 1
            else:
                counts["lost"] += 1
    return per


def test_a_week_of_scheduled_runs_through_the_state_machine_loses_no_minute(week, watermark_matrix):
    pipeline, sim = week.pipeline, week.pipeline.sim
    processed = pipeline.stack.outputs["ProcessedBucketName"]
    marks = Watermarks(pipeline.stack.client("dynamodb"), pipeline.stack.outputs["StateTableName"])
    sim.set_faults(publish_lag_s={LATE: 180}, listed_on={NEWCO: WED.isoformat()})

    assert week.run(at(MON, 16), EVERYONE)["status"] == "SUCCEEDED"
    tuesday = week.run(at(MON + timedelta(1), 16), EVERYONE)  # the holiday: the schedule runs Monday to Friday
    assert tuesday["status"] == "SUCCEEDED", tuesday.get("error")

    midday = week.run(at(WED, 11), EVERYONE)
    assert midday["status"] == "SUCCEEDED", midday.get("error")
    late_open = marks.load(Symbol.parse(LATE)).open  # 10:57-10:59 not published yet: asked again later
    assert [s.kind for s in late_open] == ["empty"], late_open

    # Wednesday 16:00: an outage for one ticker, a cut answer for another, and the job dies on one symbol-day
    sim.set_faults(no_data_symbols=[OUTAGE], cut_at={CUT: "13:59"})
    dying = re.escape(paths.processed_key("1m", Symbol.parse(PLAIN), WED))
    at_eleven = {s: etag(pipeline, s, WED) for s in EVERYONE}  # what the 11:00 run's job built
    with pipeline.stack.fail_s3_writes(dying, bucket=processed) as refused:
        wednesday = week.run(at(WED, 16), [s for s in EVERYONE if s != MISSED])
    sim.set_faults(no_data_symbols=[], cut_at={})
    assert wednesday["status"] == "FAILED" and refused["refused"] >= 1
    rebuilt = [s for s in EVERYONE if etag(pipeline, s, WED) != at_eleven[s]]
    assert PLAIN not in rebuilt and rebuilt, "the job should die after building some symbol-days, not before"

    week.clock.move_to(at(THU, 15, 59))
    lapse_the_login(pipeline)
    thursday = week.start(at(THU, 16), [s for s in EVERYONE if s != MISSED])
    waiting_for_login(pipeline, thursday)  # nothing dead-lettered: the run waits for today's login
    week.clock.move_to(at(THU, 16, 20))
    log_in_again(pipeline)  # the operator's one click resumes it
    assert week.finish(thursday)["status"] == "SUCCEEDED"

    week.clock.move_to(at(FRI, 23, 59, 49))
    lapse_the_login(pipeline)  # nobody logs in on Friday
    friday = week.run(at(FRI, 23, 59, 50), [s for s in EVERYONE if s != MISSED])  # waits ~10 s, to midnight
    assert friday["status"] == "FAILED" and friday.get("error") == "NoFyersLogin", friday

    week.clock.move_to(at(NEXT_MON, 9))
    log_in_again(pipeline)  # Monday's login; Monday's scheduled run asks Friday too
    assert week.run(at(NEXT_MON, 16), EVERYONE)["status"] == "SUCCEEDED"

    # two runs of Friday at once: their jobs and repairs side by side over the same symbol-days
    with pipeline.stack.glue.together(2):  # neither job's script starts before both runs reached the job
        both = [week.start(at(NEXT_MON, 16, 5), [PLAIN, CUT], {"date": FRI.isoformat()}) for _ in range(2)]
        assert [week.finish(arn)["status"] for arn in both] == ["SUCCEEDED", "SUCCEEDED"]
    first, second = job_runs(pipeline, both)
    assert first["StartedOn"] < second["CompletedOn"] and second["StartedOn"] < first["CompletedOn"], (first, second)

    per_ticker = account(pipeline, week.letters())
    counts = watermark_matrix.add_rows(per_ticker, SCENARIOS, RUN_SCENARIOS)
    assert counts["lost"] == 0, per_ticker
    assert counts == {"planned": 35, "stored": 34, "asked_empty": 1, "dead_lettered": 0, "lost": 0}, per_ticker
    for symbol in EVERYONE:
        assert marks.load(Symbol.parse(symbol)).open == (), symbol

    # one more scheduled run a minute later asks one minute per ticker and changes no bar
    before = {(s, d): bars_1m(pipeline, s, d) for s in EVERYONE for d in (WED, THU, FRI, NEXT_MON)}
    sim.reset_stats()
    assert week.run(at(NEXT_MON, 16, 11), EVERYONE)["status"] == "SUCCEEDED"
    assert sim.stats()["history_requests_by_symbol"] == dict.fromkeys(EVERYONE, 1)
    assert {(s, d): bars_1m(pipeline, s, d) for s in EVERYONE for d in (WED, THU, FRI, NEXT_MON)} == before
