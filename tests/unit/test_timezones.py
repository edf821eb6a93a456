"""The host's time zone never matters: IST handling is DST-free under TZ=America/New_York, UTC and Asia/Kolkata.

The same small workload (bars of a two-day raw answer, the IST date helpers, the ingest's range planning and
request windows) runs in a fresh interpreter per host time zone; the outputs must be identical, and right.
A fresh process is the honest check: zoneinfo, pyarrow and numpy may cache the zone at import time.
The raw answer holds minutes stamped 00:00 UTC (05:30 IST, same date: Fyers' daily stamp) and 23:59 UTC
(05:29 IST of the *next* date), where a UTC-vs-IST date mistake shows; New York is in DST on one of the
dates (2025-11-01) and not on the others.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

IST = ZoneInfo("Asia/Kolkata")
HOST_ZONES = ("America/New_York", "UTC", "Asia/Kolkata")

WORKLOAD = r"""
import json, os, time
time.tzset()
from datetime import UTC, date, datetime, timedelta

import orjson

from pricefeed import istime
from pricefeed.fyers import windows as chunking
from pricefeed.lake import paths
from pricefeed.aggregate.bars import build_bars
from pricefeed.aggregate.candles import read_envelope
from pricefeed.ingest.settled import Settled
from pricefeed.ingest.item import IngestRequest
from pricefeed.ingest.symbol_range import plan_windows
from pricefeed.lake.envelope import build_envelope
from pricefeed.symbol import Symbol

D1, D2 = date(2025, 11, 25), date(2025, 11, 26)
SYMBOL = Symbol("NSE", "SBIN-EQ")
open_d1 = istime.ist_midnight_epoch(D1) + 9 * 3600 + 15 * 60
open_d2 = istime.ist_midnight_epoch(D2) + 9 * 3600 + 15 * 60
utc_midnight_d1 = int(datetime(2025, 11, 25, tzinfo=UTC).timestamp())  # 05:30 IST of D1
utc_2359_d1 = int(datetime(2025, 11, 25, 23, 59, tzinfo=UTC).timestamp())  # 05:29 IST of D2
rows = [[open_d1 + 60 * m, 100.0 + m, 101.0 + m, 99.0, 100.5, 10 + m] for m in range(0, 375, 7)]
rows += [[open_d2 + 60 * m, 200.0, 201.0 + m, 199.0, 200.5 + m, 1] for m in range(0, 375, 11)]
rows += [[utc_midnight_d1, 1.0, 1.0, 1.0, 1.0, 1], [utc_2359_d1, 1.0, 1.0, 1.0, 1.0, 1]]
envelope = read_envelope(
    build_envelope(
        symbol=SYMBOL,
        resolution="1",
        range_from=istime.ist_midnight_epoch(D1),
        range_to=istime.ist_day_range(D2)[1],
        trading_date=D1,
        last_trading_date=D2,
        fetched_at=datetime(2025, 11, 26, 12, tzinfo=UTC),
        http_status=200,
        body=orjson.dumps({"s": "ok", "candles": rows}),
    ),
    source="s3://raw/two-days.json",
)
out = {"host_hour_at_d1_open": time.localtime(open_d1).tm_hour, "bars": {}, "excluded": {}}
for day in (D1, D2):
    bars = build_bars(SYMBOL, day, [envelope.candles(day)])
    out["bars"][day.isoformat()] = {
        tf: [{k: getattr(v, "isoformat", lambda v=v: v)() for k, v in row.items()} for row in table.to_pylist()]
        for tf, table in bars.tables.items()
    }
    out["excluded"][day.isoformat()] = bars.excluded

instants = {
    "d1_utc_midnight": datetime(2025, 11, 25, tzinfo=UTC),
    "d1_utc_2359": datetime(2025, 11, 25, 23, 59, tzinfo=UTC),
    "ist_midnight_d2_minus_1s": datetime(2025, 11, 25, 18, 29, 59, tzinfo=UTC),
    "ist_midnight_d2": datetime(2025, 11, 25, 18, 30, tzinfo=UTC),
    "ny_dst_end_day": datetime(2025, 11, 2, 6, 30, tzinfo=UTC),
    "friday_after_close": datetime(2025, 11, 28, 10, 5, tzinfo=UTC),
    "saturday_early_ist": datetime(2025, 11, 28, 19, 0, tzinfo=UTC),
}
out["ist_today"] = {k: istime.ist_today(v).isoformat() for k, v in instants.items()}
out["ist_date_of"] = {k: chunking.ist_date_of(int(v.timestamp())).isoformat() for k, v in instants.items()}
out["last_closed_session"] = {k: istime.last_closed_session(v).isoformat() for k, v in instants.items()}
out["last_closed_minute"] = {k: istime.last_closed_minute_epoch(v) for k, v in instants.items()}
days = ("2025-03-09", "2025-11-02", "2025-11-25")  # US DST starts, US DST ends, an ordinary day
out["ist_midnight"] = {d: istime.ist_midnight_epoch(date.fromisoformat(d)) for d in days}
out["ist_day_range"] = list(istime.ist_day_range(D1))
late = datetime(2025, 11, 25, 23, 59, tzinfo=UTC)  # already D2 in IST
out["keys"] = [
    paths.raw_key(SYMBOL, chunking.ist_date_of(int(late.timestamp())), late),
    paths.processed_key("1d", SYMBOL, D1),
]
now = datetime(2025, 11, 26, 6, 0, 30, tzinfo=UTC)  # 11:30:30 IST of D2, market open
span = lambda windows: (windows[0][0], windows[-1][1])
out["plan_range"] = {
    "explicit": span(plan_windows(IngestRequest(SYMBOL, D1, D2), now)),
    "incremental": span(plan_windows(IngestRequest(SYMBOL, D1, D2, incremental=True), now, Settled(open_d1 + 59))),
    "backfill": span(plan_windows(IngestRequest(SYMBOL, date(2025, 1, 1), D2), now)),
}
out["request_windows"] = plan_windows(IngestRequest(SYMBOL, date(2025, 1, 1), D2), now)
out["ist_dates"] = [chunking.ist_date_of(e).isoformat() for e in (utc_midnight_d1 - 1, utc_2359_d1)]
print(json.dumps(out, sort_keys=True))
"""


@pytest.fixture(scope="module")
def outputs() -> dict[str, dict]:
    """The workload's JSON output per host time zone (the three processes run side by side)."""
    processes = {}
    for zone in HOST_ZONES:
        env = {**os.environ, "TZ": zone}
        processes[zone] = subprocess.Popen(
            [sys.executable, "-c", WORKLOAD], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    results = {}
    for zone, process in processes.items():
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, f"TZ={zone}: {stderr}"
        results[zone] = json.loads(stdout)
    return results


def test_the_host_zone_really_differs(outputs):
    hours = {zone: out["host_hour_at_d1_open"] for zone, out in outputs.items()}
    # 09:15 IST of 2025-11-25 = 03:45 UTC = 22:45 of the day before in New York (EST)
    assert hours == {"America/New_York": 22, "UTC": 3, "Asia/Kolkata": 9}


def test_every_output_is_identical_across_host_zones(outputs):
    reference = {k: v for k, v in outputs["UTC"].items() if k != "host_hour_at_d1_open"}
    for zone in HOST_ZONES:
        assert {k: v for k, v in outputs[zone].items() if k != "host_hour_at_d1_open"} == reference, zone


def test_bars_and_dates_are_right_in_ist(outputs):
    out = outputs["America/New_York"]
    d1, d2 = out["bars"]["2025-11-25"], out["bars"]["2025-11-26"]
    assert [row["ts"] for row in d1["1d"]] == ["2025-11-24T18:30:00+00:00"]  # 00:00 IST
    assert [row["ts"] for row in d2["1d"]] == ["2025-11-25T18:30:00+00:00"]
    assert d1["5m"][0]["ts"] == "2025-11-25T03:45:00+00:00" and d1["15m"][1]["ts"] == "2025-11-25T04:00:00+00:00"
    assert {row["trade_date"] for tf in d1 for row in d1[tf]} == {"2025-11-25"}
    assert (len(d1["1m"]), len(d2["1m"])) == (len(range(0, 375, 7)), len(range(0, 375, 11)))
    # 00:00 UTC of D1 is 05:30 IST of D1; 23:59 UTC of D1 is 05:29 IST of D2: each is out of its own day's session
    assert out["excluded"]["2025-11-25"]["out_of_session"] == 1
    assert out["excluded"]["2025-11-26"]["out_of_session"] == 1

    assert out["ist_date_of"]["d1_utc_midnight"] == "2025-11-25"
    assert out["ist_date_of"]["d1_utc_2359"] == "2025-11-26"
    assert out["ist_today"]["ist_midnight_d2_minus_1s"] == "2025-11-25"
    assert out["ist_today"]["ist_midnight_d2"] == "2025-11-26"
    assert out["ist_today"]["ny_dst_end_day"] == "2025-11-02"
    assert out["last_closed_session"]["friday_after_close"] == "2025-11-28"
    assert out["last_closed_session"]["saturday_early_ist"] == "2025-11-28"
    # IST midnight is 18:30 UTC the day before on every date, either side of US DST changes
    for day, epoch in out["ist_midnight"].items():
        midnight = datetime.fromisoformat(day).replace(tzinfo=IST)
        assert epoch == int(midnight.timestamp())
        assert datetime.fromtimestamp(epoch, UTC).time() == time(18, 30)
    assert out["ist_dates"] == ["2025-11-25", "2025-11-26"]
    assert "/year=2025/month=11/day=26/ingest-20251125T235900000000Z.json" in out["keys"][0]
    assert "/year=2025/month=11/day=25/" in out["keys"][1]


def test_planned_ranges_and_windows_are_ist_days(outputs):
    out = outputs["America/New_York"]
    d1_midnight = int(datetime(2025, 11, 25, tzinfo=IST).timestamp())
    now = datetime(2025, 11, 26, 6, 0, 30, tzinfo=UTC)
    last_ended = int(now.timestamp()) // 60 * 60 - 1
    assert out["plan_range"]["explicit"] == [d1_midnight, last_ended]
    assert out["plan_range"]["incremental"] == [d1_midnight + 9 * 3600 + 15 * 60 + 60, last_ended]
    windows = out["request_windows"]
    assert windows[0][0] == int(datetime(2025, 1, 1, tzinfo=IST).timestamp()) and windows[-1][1] == last_ended
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert start == end + 1
        assert datetime.fromtimestamp(start, IST).time() == time(0)  # every later window starts at 00:00 IST
    assert all(end - start < 100 * 86_400 for start, end in windows)
    assert len(windows) == 4  # 330 IST days: 100 + 100 + 100 + 30
    assert date(2025, 1, 1) + timedelta(days=300) == datetime.fromtimestamp(windows[-1][0], IST).date()
