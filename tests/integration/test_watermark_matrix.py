"""The scheduled path across a week of trading days: lapses, redrives and partial answers never lose a minute.

One scheduled run a weekday at 16:00 IST (plus one at 11:00 on Wednesday) over seven tickers, each with its
own trouble, on emulated S3 + DynamoDB: the real ingest (what each ticker asks, what it stores, what it
settles) and the real aggregation job over every run's manifests. Fyers is replaced at the network boundary
by the simulator's market model behind the faults real history shows, and "now" is moved run by run.

| Scenario            | What goes wrong                                                              |
| ------------------- | ---------------------------------------------------------------------------- |
| missed-days         | the ticker is left out of the runs of Wednesday, Thursday and Friday           |
| login-lapse-redrive | Wednesday's and Thursday's runs fail NotLoggedIn; Friday morning the operator  |
|                     | redrives Thursday's run as ``{"date": Thursday}`` (what `redrive` used to do)  |
| outage-no-data      | Fyers answers ``no_data`` to Wednesday's 16:00 run                             |
| cut-mid-session     | Fyers' answer to Wednesday's 16:00 run stops at 13:59                          |
| published-late      | Fyers publishes every minute 3 minutes late (the 11:00 run is the test)        |
| listed-mid-range    | the ticker has no candle before Wednesday (listed then), asked from Monday     |
| holiday-in-range    | none: Tuesday 2026-11-24 is an NSE holiday inside every ticker's range         |
| glue-job-dies       | Thursday's aggregation job dies after building some symbol-days (every ticker) |

Accounting over every planned symbol-day (the calendar's sessions Monday..next Monday x the tickers): a day is
*stored* when its 1m bars hold exactly the minutes the market served for it, *asked-empty* when the market
served none that day, an answer covered it and nothing of it is open, *dead-lettered* when a run failed on it
and it is not stored; ``lost`` = planned - the three must be 0. Then one more scheduled run changes nothing.
"""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest

from awskit import ingest_stores
from fyerskit import history_answer
from pricefeed.aggregate import job
from pricefeed.aggregate.arguments import run_from_job_arguments
from pricefeed.errors import NotLoggedIn
from pricefeed.fyers.client import HistoryResponse
from pricefeed.ingest.item import IngestRequest
from pricefeed.ingest.symbol_range import ingest_symbol
from pricefeed.lake import paths
from pricefeed.simulator import market
from pricefeed.symbol import Symbol
from pricefeed.trading_calendar import DEFAULT_CALENDAR, is_trading_day

IST = ZoneInfo("Asia/Kolkata")
RAW, PROCESSED, TABLE = "raw", "processed", "state"
SEED = 17
MON = date(2026, 11, 23)
WED, THU, FRI, NEXT_MON = MON + timedelta(2), MON + timedelta(3), MON + timedelta(4), MON + timedelta(7)
SCENARIOS = {
    "missed-days": "NSE:MISSED-EQ",
    "login-lapse-redrive": "NSE:LAPSE-EQ",
    "outage-no-data": "NSE:OUTAGE-EQ",
    "cut-mid-session": "NSE:CUT-EQ",
    "published-late": "NSE:LATE-EQ",
    "listed-mid-range": "NSE:NEWCO-EQ",
    "holiday-in-range": "NSE:PLAIN-EQ",
}
#: Scenarios that are not a ticker's own trouble but the whole run's.
RUN_SCENARIOS = ("glue-job-dies",)
LISTED = {"NSE:NEWCO-EQ": WED}
LAG_S = {"NSE:LATE-EQ": 180}


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=IST)


def served(symbol: str, day: date, now: float) -> list[list]:
    """The final candles the market holds for ``symbol`` on ``day`` as published by ``now``."""
    if day < LISTED.get(symbol, day):
        return []
    published_by = now - LAG_S.get(symbol, 0)
    return [
        [c[0], c[1] / 100, c[2] / 100, c[3] / 100, c[4] / 100, c[5]]
        for c in market.minute_candles(SEED, symbol, day)
        if c[0] + 60 <= published_by
    ]


class Fyers:
    """The market behind the scenarios' faults, at the run's ``now``; records every call."""

    def __init__(self, now: datetime, faults: dict[str, str]):
        self.now, self.faults = now, faults
        self.calls: list[tuple[str, int, int]] = []

    async def history(self, symbol: str, resolution: str, range_from: int, range_to: int) -> HistoryResponse:
        fault = self.faults.get(symbol)
        if fault == "logged-out":
            raise NotLoggedIn("Fyers: the access token is no longer valid; log in again (simulated)")
        self.calls.append((symbol, range_from, range_to))
        now = self.now.timestamp()
        candles: list[list] = []
        day = datetime.fromtimestamp(range_from, IST).date()
        while int(datetime(day.year, day.month, day.day, tzinfo=IST).timestamp()) <= min(range_to, now):
            candles += [c for c in served(symbol, day, now) if range_from <= c[0] <= range_to]
            day += timedelta(days=1)
        if fault == "no-data":
            candles = []
        elif fault == "cut-at-13:59":
            candles = [c for c in candles if datetime.fromtimestamp(c[0], IST).time() < datetime(1, 1, 1, 14).time()]
        return history_answer(symbol, range_from, range_to, candles, self.now + timedelta(milliseconds=len(self.calls)))


@dataclass
class Week:
    aws: SimpleNamespace
    letters: set[tuple[str, date]] = field(default_factory=set)  # what the state machine's Catch dead-letters
    runs: int = 0

    def run(
        self, now: datetime, symbols: list[str], *, faults=None, date_: date | None = None, job_dies_after: int = 0
    ) -> list[dict]:
        """One execution at ``now``: a scheduled run (or ``{"date": date_}``) over ``symbols``, then the job
        (which dies after building ``job_dies_after`` symbol-days, when given)."""
        self.runs += 1
        run_id = f"run{self.runs}"
        prefix = f"ohlcv/runs/{run_id}/"
        day = date_ or now.date()
        plan = {"from": day.isoformat(), "to": day.isoformat(), "incremental": date_ is None}
        plan |= {"dates": [day.isoformat()], "symbols": symbols}
        self.aws.s3.put_object(Bucket=RAW, Key=prefix + "symbols.json", Body=json.dumps(plan).encode())
        fyers, results = Fyers(now, faults or {}), []
        for symbol in symbols:
            item = {"symbol": symbol, "from": plan["from"], "to": plan["to"], "incremental": plan["incremental"]}
            request = IngestRequest.parse({**item, "run_id": run_id, "ingested_prefix": prefix + "ingested/"})
            stores = {"s3": self.aws.s3, "raw_bucket": RAW, "watermarks": self.aws.watermarks}
            try:
                results.append(asyncio.run(ingest_symbol(request, client=fyers, now=now, **stores)))
            except NotLoggedIn:
                self.letters.add((symbol, day))
        args = {"raw_bucket": RAW, "processed_bucket": PROCESSED, "symbols_key": prefix + "symbols.json"}
        args |= {"ingested_prefix": prefix + "ingested/", "result_key": prefix + "aggregate-result.json"}
        if not job_dies_after:
            run_from_job_arguments(args, s3=self.aws.s3)
            return results
        built, real = [], job.aggregate_symbol_day

        def dying(*a, **kw):
            if len(built) >= job_dies_after:
                raise SystemExit("Glue: the job's worker was lost (simulated)")
            built.append(a[3:5])
            return real(*a, **kw)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(job, "aggregate_symbol_day", dying)
            with pytest.raises(SystemExit):
                run_from_job_arguments(args, s3=self.aws.s3)
        assert built, "the job died before building anything"
        return results


@pytest.fixture
def aws(mocked_aws):
    return ingest_stores(mocked_aws, RAW, PROCESSED, table=TABLE)


def minutes_1m(aws, symbol: str, day: date) -> dict[int, tuple] | None:
    try:
        body = aws.s3.get_object(Bucket=PROCESSED, Key=paths.processed_key("1m", Symbol.parse(symbol), day))["Body"]
    except aws.s3.exceptions.NoSuchKey:
        return None
    rows = pq.read_table(io.BytesIO(body.read())).to_pylist()
    return {int(r["ts"].timestamp()): (r["open"], r["high"], r["low"], r["close"], r["volume"]) for r in rows}


def asked(aws, symbol: str, day: date) -> bool:
    """Some stored answer (an envelope or a reference) lies under ``symbol``'s raw prefix of ``day``."""
    return bool(aws.s3.list_objects_v2(Bucket=RAW, Prefix=paths.raw_day_prefix(Symbol.parse(symbol), day))["KeyCount"])


def account(week: Week, until: datetime) -> dict[str, dict[str, int]]:
    """Per ticker: its planned symbol-days and how each ended (see the module docstring)."""
    days = [MON + timedelta(i) for i in range((NEXT_MON - MON).days + 1) if is_trading_day(MON + timedelta(i))]
    per: dict[str, dict[str, int]] = {}
    for symbol in SCENARIOS.values():
        counts = per[symbol] = dict.fromkeys(("planned", "stored", "asked_empty", "dead_lettered", "lost"), 0)
        state = week.aws.watermarks.load(Symbol.parse(symbol))
        for day in days:
            counts["planned"] += 1
            want = {c[0]: tuple(c[1:]) for c in served(symbol, day, until.timestamp())}
            got = minutes_1m(week.aws, symbol, day)
            session = DEFAULT_CALENDAR.session_minutes(day)[0]
            open_in_day = any(s.first <= session[1] - 1 and s.last >= session[0] for s in state.open)
            if want and got == want:
                counts["stored"] += 1
            elif not want and asked(week.aws, symbol, day) and not open_in_day and not got:
                counts["asked_empty"] += 1
            elif (symbol, day) in week.letters:
                counts["dead_lettered"] += 1
            else:
                counts["lost"] += 1
    return per


def test_a_week_of_lapses_redrives_and_partial_answers_loses_no_minute(aws, watermark_matrix):
    week = Week(aws)
    everyone = list(SCENARIOS.values())
    missed, lapse = SCENARIOS["missed-days"], SCENARIOS["login-lapse-redrive"]
    outage, cut, late = SCENARIOS["outage-no-data"], SCENARIOS["cut-mid-session"], SCENARIOS["published-late"]

    week.run(at(MON, 16), everyone)
    week.run(at(MON + timedelta(1), 16), everyone)  # the holiday: the schedule runs Monday to Friday
    midday = week.run(at(WED, 11), everyone)
    assert next(r for r in midday if r["symbol"] == late)["unsettled"]["empty_awaiting_recheck"] == 1
    faults = {lapse: "logged-out", outage: "no-data", cut: "cut-at-13:59"}
    week.run(at(WED, 16), [s for s in everyone if s != missed], faults=faults)
    week.run(at(THU, 16), [s for s in everyone if s != missed], faults={lapse: "logged-out"}, job_dies_after=2)
    week.run(at(FRI, 9), [lapse], date_=THU)  # the operator logged in and redrove Thursday's run
    week.run(at(FRI, 16), [s for s in everyone if s != missed])
    final = at(NEXT_MON, 16)
    week.run(final, everyone)

    per_ticker = account(week, final)
    counts = watermark_matrix.add_rows(per_ticker, SCENARIOS, RUN_SCENARIOS)
    assert counts["lost"] == 0, per_ticker
    assert counts == {"planned": 35, "stored": 34, "asked_empty": 1, "dead_lettered": 0, "lost": 0}
    for symbol in everyone:
        state = aws.watermarks.load(Symbol.parse(symbol))
        assert state.open == () and state.through == int(final.timestamp()) - 1, symbol

    # one more scheduled run a minute later asks only the minute that ended, and changes no bar
    before = {(s, d): minutes_1m(aws, s, d) for s in everyone for d in (WED, THU, FRI, NEXT_MON)}
    again = week.run(final + timedelta(minutes=1), everyone)
    assert all(r["requests"] == 1 and r["candles"] == 0 for r in again), again
    assert {(s, d): minutes_1m(aws, s, d) for s in everyone for d in (WED, THU, FRI, NEXT_MON)} == before
