"""The coverage ledger row of one symbol-day: expected vs stored session minutes, gaps, exclusions."""

import io
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import orjson
import pyarrow.parquet as pq

from pricefeed.aggregate.bars import build_bars
from pricefeed.aggregate.candles import EXCLUSION_REASONS, parse_envelope
from pricefeed.aggregate.ledger import LEDGER_SCHEMA, day_coverage
from pricefeed.aggregate.outcomes import DayResult, SymbolDayOutcome, keep_worst, summary
from pricefeed.lake import storage as lake
from pricefeed.lake.envelope import build_envelope
from pricefeed.symbol import Symbol

IST = ZoneInfo("Asia/Kolkata")
SYMBOL = "NSE:SBIN-EQ"


def coverage_of(day: date, clock: list[tuple[int, int]], symbol: str = SYMBOL):
    midnight = int(datetime.combine(day, time(0, 0), tzinfo=IST).timestamp())
    rows = [[midnight + 3600 * h + 60 * m, 10.0, 11.0, 9.0, 10.5, 7] for h, m in clock]
    raw = build_envelope(
        symbol=symbol,
        resolution="1",
        range_from=midnight,
        range_to=midnight + 86_399,
        trading_date=day,
        fetched_at=datetime.combine(day + timedelta(days=1), time(1, 0), tzinfo=UTC),
        http_status=200,
        body=orjson.dumps({"s": "ok", "candles": rows}),
    )
    return day_coverage(build_bars(Symbol.parse(symbol), day, [parse_envelope(raw, source="test")]))


def minutes(start: tuple[int, int], end: tuple[int, int]) -> list[tuple[int, int]]:
    return [divmod(m, 60) for m in range(start[0] * 60 + start[1], end[0] * 60 + end[1])]


def test_a_full_day_is_complete():
    row = coverage_of(date(2026, 11, 25), minutes((9, 15), (15, 30)))
    assert (row.expected_minutes, row.stored_minutes, row.missing_minutes, row.complete) == (375, 375, 0, True)
    assert row.missing_ranges == () and row.sessions == ("09:15-15:30",)


def test_a_half_empty_day_names_the_missing_afternoon():
    row = coverage_of(date(2026, 11, 25), minutes((9, 15), (12, 0)))
    assert (row.stored_minutes, row.missing_minutes, row.complete) == (165, 210, False)
    assert row.missing_ranges == ("12:00-15:30",)


def test_scattered_gaps_are_listed_as_ranges_in_ist():
    present = [m for m in minutes((9, 15), (15, 30)) if m not in [(9, 15), (11, 0), (11, 1), (15, 29)]]
    row = coverage_of(date(2026, 11, 25), present)
    assert row.missing_ranges == ("09:15-09:16", "11:00-11:02", "15:29-15:30") and row.missing_minutes == 4


def test_a_holiday_expects_nothing_and_counts_the_candles_it_refused():
    row = coverage_of(date(2025, 11, 5), minutes((9, 15), (9, 45)))
    assert (row.trading_day, row.expected_minutes, row.missing_minutes, row.complete) == (False, 0, 0, True)
    assert row.excluded["out_of_session"] == 30 and row.raw_envelopes == 1


def test_a_muhurat_day_expects_its_hour_only():
    row = coverage_of(date(2024, 11, 1), [(9, 15), *minutes((18, 0), (18, 30))])
    assert (row.expected_minutes, row.stored_minutes, row.missing_ranges) == (60, 30, ("18:30-19:00",))
    assert row.excluded["out_of_session"] == 1


def test_the_row_is_deterministic_parquet_with_one_column_per_exclusion_reason():
    row = coverage_of(date(2026, 11, 25), minutes((9, 15), (12, 0)))
    blob = lake.parquet_bytes(row.table())
    assert blob == lake.parquet_bytes(coverage_of(date(2026, 11, 25), minutes((9, 15), (12, 0))).table())
    table = pq.read_table(io.BytesIO(blob))
    assert table.schema.equals(LEDGER_SCHEMA)
    assert {f"excluded_{r}" for r in EXCLUSION_REASONS} <= set(table.column_names)
    (read,) = table.to_pylist()
    assert read["trade_date"] == date(2026, 11, 25)
    assert not {"symbol", "exchange"} & set(table.column_names)  # the path's partition keys, not the file's
    assert read["missing_ranges"] == ["12:00-15:30"] and read["complete"] is False


def result_of(row) -> DayResult:
    """What the job keeps of a built day with this ledger row."""
    return DayResult.of(SymbolDayOutcome(Symbol(row.exchange, row.symbol), row.trading_date, coverage=row))


def test_the_summary_counts_days_and_lists_the_worst_first():
    full = coverage_of(date(2026, 11, 25), minutes((9, 15), (15, 30)))
    half = coverage_of(date(2026, 11, 25), minutes((9, 15), (12, 0)), symbol="NSE:TCS-EQ")
    nearly = coverage_of(date(2026, 11, 26), minutes((9, 16), (15, 30)))
    holiday = coverage_of(date(2025, 11, 5), [])

    brief = summary([], [], [result_of(r) for r in (full, half, nearly, holiday)], worst=1)["coverage"]

    assert {k: brief[k] for k in ("symbol_days", "complete", "with_gaps", "holidays", "missing_minutes")} == {
        "symbol_days": 4,
        "complete": 1,
        "with_gaps": 2,
        "holidays": 1,
        "missing_minutes": 211,
    }
    assert [(w["symbol"], w["date"], w["missing_minutes"], w["missing_ranges"]) for w in brief["worst"]] == [
        ("NSE:TCS-EQ", "2026-11-25", 210, ["12:00-15:30"])
    ]


def test_batches_that_keep_only_their_worst_days_give_the_runs_worst_list():
    """On Glue each batch keeps the gap details of its own worst days only; the run's list must not change."""
    rows = [coverage_of(date(2026, 11, 25) + timedelta(days=d), minutes((9, 15), (15, 30 - m)), symbol=s)
            for d in range(3) for m, s in ((1, "NSE:A-EQ"), (7, "NSE:B-EQ"), (3, "NSE:C-EQ"), (0, "NSE:D-EQ"))]
    results = [result_of(r) for r in rows]
    whole = summary([], [], results, worst=4)["coverage"]

    batched = [r for start in range(0, len(results), 4) for r in keep_worst(results[start : start + 4], worst=2)]

    assert summary([], [], batched, worst=4)["coverage"] == whole
    assert [w["missing_minutes"] for w in whole["worst"]] == [7, 7, 7, 3]
    assert sum(1 for r in batched if r.coverage.gap is not None) == 6  # 2 kept a batch of 4
