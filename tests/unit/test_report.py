"""`pricefeed report` without a stack: a small lake written here with the pipeline's own bar and ledger code."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pricefeed.aggregate.bars import build_bars
from pricefeed.aggregate.candles import EnvelopeCandles
from pricefeed.aggregate.ledger import day_coverage
from pricefeed.cli.main import app
from pricefeed.errors import InvalidInput
from pricefeed.istime import IST
from pricefeed.lake import paths
from pricefeed.ops.report import figures, lake_reader, model
from pricefeed.ops.report.page import render_html
from pricefeed.simulator.market import minute_candles
from pricefeed.symbol import Symbol

DAY = date(2026, 11, 25)  # a Wednesday, an NSE session 09:15-15:30 IST
SBIN, INFY, TCS = (Symbol("NSE", n) for n in ("SBIN-EQ", "INFY-EQ", "TCS-EQ"))


def _ist(day: date, hhmm: str) -> int:
    return int(datetime.combine(day, datetime.strptime(hhmm, "%H:%M").time(), tzinfo=IST).timestamp())


def write_day(lake: Path, symbol: str, day: date = DAY, *, gap: tuple[str, str] | None = None) -> None:
    """The bars and the ledger row the aggregation job writes for ``symbol`` on ``day``; ``gap`` IST minutes
    [start, end) are left out of the answer."""
    hole = (_ist(day, gap[0]), _ist(day, gap[1])) if gap else (0, 0)
    candles = [c for c in minute_candles(0, symbol, day) if not hole[0] <= c[0] < hole[1]]
    cols = np.array(candles, dtype=np.int64).T
    envelope = EnvelopeCandles(
        source="test", symbol=Symbol.parse(symbol), trading_date=day, fetched_at=datetime(2026, 11, 25, 12, tzinfo=UTC),
        received=len(candles), ts=cols[0], open=cols[1] / 100, high=cols[2] / 100, low=cols[3] / 100,
        close=cols[4] / 100, volume=cols[5], oi=np.full(len(candles), np.nan), excluded={},
    )
    built = build_bars(Symbol.parse(symbol), day, [envelope])
    for timeframe, table in built.tables.items():
        _write_parquet(lake / "processed" / paths.processed_key(timeframe, built.symbol, day), table)
    _write_parquet(lake / "processed" / paths.coverage_key(built.symbol, day), day_coverage(built).table())


def _write_parquet(path: Path, table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def write_dead_letter(lake: Path, symbol: str, error_type: str, message: str, day: date = DAY, attempts: int = 5):
    failed_at = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
    path = lake / "raw" / paths.dead_letter_key(Symbol.parse(symbol), day, failed_at)
    path.parent.mkdir(parents=True, exist_ok=True)
    letter = {"symbol": symbol, "trading_date": day.isoformat(), "run_id": "run-1", "error_type": error_type,
              "error_message": message, "attempts": attempts, "failed_at": "2026-11-25T11:00:00.000000Z"}
    path.write_text(json.dumps(letter))


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    """SBIN complete; INFY missing 12:00-15:30; TCS dead-lettered (no bars); NOPE unknown to Fyers."""
    root = tmp_path_factory.mktemp("lake")
    write_day(root, "NSE:SBIN-EQ")
    write_day(root, "NSE:INFY-EQ", gap=("12:00", "15:30"))
    write_day(root, "NSE:SBIN-EQ", date(2026, 11, 26))
    write_day(root, "NSE:INFY-EQ", date(2026, 11, 26), gap=("09:15", "09:20"))
    write_dead_letter(root, "NSE:TCS-EQ", "TransientFyersError", "TransientFyersError: Fyers answered HTTP 503")
    write_dead_letter(root, "NSE:NOPE-EQ", "InvalidSymbol", "NSE:NOPE-EQ is not in the Fyers symbol master", attempts=0)
    return root


def test_a_gap_from_noon_to_the_close_shows_as_missing_cells_worst_symbol_first(lake):
    data = lake_reader.gather(lake, day="2026-11-25")
    grid = figures.heatmap(data)

    assert grid.symbols == [TCS, INFY, SBIN]  # failed (375 missing), 210, 0
    assert len(grid.columns) == 375
    assert (grid.columns[0].strftime("%H:%M"), grid.columns[-1].strftime("%H:%M")) == ("09:15", "15:29")
    infy = dict(zip((c.strftime("%H:%M") for c in grid.columns), grid.z[1], strict=True))
    missing = [t for t, v in infy.items() if v == model.MISSING]
    assert (missing[0], missing[-1], len(missing)) == ("12:00", "15:29", 210)
    assert infy["11:59"] == model.STORED
    assert grid.text[1][grid.columns.index(datetime(2026, 11, 25, 12, 0))] == "MISSING"
    assert set(grid.z[2]) == {model.STORED}
    assert set(grid.z[0]) == {model.FAILED} and grid.text[0][0] == "FAILED: TransientFyersError (no bars stored)"


def test_the_header_counts_and_the_failures_separate_unknown_symbols(lake):
    data = lake_reader.gather(lake, day="2026-11-25")

    assert model.summary(data) == {
        "symbols": 3, "symbol_days": 3, "complete": 1, "with_gaps": 1, "failed": 1,
        "missing_minutes": 210 + 375, "expected_minutes": 3 * 375, "unknown": 1,
    }
    assert [(f.symbol, f.error_type, f.reason, f.attempts) for f in data.failures] == [
        (TCS, "TransientFyersError", "Fyers answered HTTP 503", 5)
    ]
    assert [f.symbol for f in data.unknown] == [Symbol("NSE", "NOPE-EQ")]
    assert data.failures[0].failed_at == "2026-11-25 16:30"  # 11:00 UTC in IST
    # Charts default to the worst-covered symbols that stored something, in 5-minute bars.
    assert list(data.charts) == [INFY, SBIN] and data.timeframe == "5m"
    infy = data.charts[INFY]
    assert (infy[0].ist.strftime("%H:%M"), infy[-1].ist.strftime("%H:%M"), len(infy)) == ("09:15", "11:55", 33)


def test_the_default_date_is_the_newest_in_the_ledger_and_a_range_shows_days(lake):
    assert lake_reader.gather(lake).first == date(2026, 11, 26)

    data = lake_reader.gather(lake, first="2026-11-25", last="2026-11-26", symbols="SBIN-EQ")
    grid = figures.heatmap(data)

    assert grid.columns == [date(2026, 11, 25), date(2026, 11, 26)]
    assert grid.symbols == [TCS, INFY, SBIN]
    assert grid.z[1] == [pytest.approx(210 / 375), pytest.approx(5 / 375)]
    assert grid.z[0] == [1.0, None] and grid.text[0][1] == "not in this run"
    assert grid.text[1][0] == "missing 210 of 375 min: 12:00-15:30"
    assert data.timeframe == "1d" and [b.ist.date() for b in data.charts[SBIN]] == [
        date(2026, 11, 25), date(2026, 11, 26)
    ]


def test_two_thousand_symbols_draw_the_worst_150_and_say_what_the_rest_are():
    rows = [
        model.CoverageRow(Symbol("NSE", f"S{i:04d}-EQ"), DAY, ("09:15-15:30",), 375, m, ("15:00-15:30",) if m else ())
        for i, m in enumerate([30] * 40 + [0] * 1960)
    ]
    data = model.ReportData(Path("lake"), DAY, DAY, rows, [], [], "5m")

    grid = figures.heatmap(data)

    assert len(grid.symbols) == 150 and grid.total_symbols == 2000
    assert grid.symbols[:40] == [Symbol("NSE", f"S{i:04d}-EQ") for i in range(40)]
    assert "150 worst-covered of 2,000" in grid.note and "1,850 of them are complete" in grid.note
    page = render_html(data)
    assert len(page) < 7_000_000  # plotly.js (4.8 MB) + 150 x 375 cells


def test_the_page_is_self_contained_and_names_every_failure(lake):
    from plotly.offline import get_plotlyjs

    page = render_html(lake_reader.gather(lake, day="2026-11-25"))
    ours = page.replace(get_plotlyjs(), "")  # plotly.js is inline; everything else is ours

    assert len(page) - len(ours) == len(get_plotlyjs())
    assert "<script src" not in ours and "<link" not in ours and "http" not in ours
    assert 'id="coverage-heatmap"' in page and page.count('class="plot candles"') == 2
    assert '<tr data-symbol="NSE:TCS-EQ"><td>NSE:TCS-EQ</td><td>2026-11-25</td><td>TransientFyersError</td>' in page
    assert "Fyers answered HTTP 503" in page and 'id="unknown"' in page and "NSE:NOPE-EQ" in page


def test_symbols_are_found_however_a_person_types_them(lake):
    data = lake_reader.gather(lake, day="2026-11-25", symbols=" sbin-eq , nse:infy-eq,")

    assert list(data.charts) == [SBIN, INFY]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"day": "2026-11-27"}, "no data in {lake} for 2026-11-27 (the ledger has 2026-11-25 .. 2026-11-26)"),
        ({"day": "2026-11-25", "symbols": "NSE:WIPRO-EQ"}, "symbol 'NSE:WIPRO-EQ' has no data"),
        ({"day": "2026-11-25", "first": "2026-11-25"}, "either --date or --from/--to"),
        ({"first": "2026-11-25"}, "give both --from and --to"),
        ({"first": "2026-11-26", "last": "2026-11-25"}, "--to 2026-11-25 is before --from 2026-11-26"),
        ({"day": "25/11/2026"}, "--date"),
    ],
)
def test_bad_input_is_named(lake, kwargs, message):
    with pytest.raises(InvalidInput) as raised:
        lake_reader.gather(lake, **kwargs)
    assert message.format(lake=lake) in str(raised.value)


def test_a_dead_letter_with_a_mangled_symbol_is_named_by_its_file(tmp_path):
    write_day(tmp_path, "NSE:SBIN-EQ")
    write_dead_letter(tmp_path, "NSE:TCS-EQ", "TransientFyersError", "Fyers answered HTTP 503")
    letter = next((tmp_path / "raw").rglob("failed-*.json"))
    letter.write_text(json.dumps({**json.loads(letter.read_text()), "symbol": "TCS EQ"}))

    with pytest.raises(InvalidInput) as raised:
        lake_reader.gather(tmp_path, day="2026-11-25")

    assert f"dead letter {letter} is unreadable" in str(raised.value) and "'TCS EQ'" in str(raised.value)


def test_a_missing_lake_or_ledger_says_what_to_run(tmp_path):
    with pytest.raises(InvalidInput, match=r"no lake at .*pricefeed local run --export"):
        lake_reader.gather(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="no coverage ledger under"):
        lake_reader.gather(tmp_path / "empty")


def test_the_command_writes_nothing_on_bad_input(lake, tmp_path):
    out = tmp_path / "r.html"

    shown = CliRunner().invoke(app, ["report", "--lake", str(lake), "--date", "2026-11-27", "--out", str(out)])

    assert shown.exit_code == 2 and "no data" in shown.output and "2026-11-27" in shown.output
    assert list(tmp_path.iterdir()) == []


def test_png_without_a_browser_says_how_to_get_one_and_keeps_the_html(lake, tmp_path, monkeypatch):
    monkeypatch.setenv("PRICEFEED_CHROMIUM", str(tmp_path / "no-chromium"))
    out, png = tmp_path / "r.html", tmp_path / "r.png"

    shown = CliRunner().invoke(app, ["report", "--lake", str(lake), "--out", str(out), "--png", str(png)])
    text = " ".join(shown.output.split())

    assert shown.exit_code == 2 and "PRICEFEED_CHROMIUM" in text and "does not exist" in text
    assert out.stat().st_size > 4_000_000 and not png.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # no temporary file left behind


def test_a_small_lake_charts_every_symbol_and_a_bigger_one_says_how_many_of_how_many(tmp_path):
    names = [f"NSE:SIM{i:04d}-EQ" for i in range(1, 9)]
    for name in names[:4]:  # the demo's size: all of them charted
        write_day(tmp_path, name)
    small = lake_reader.gather(tmp_path, day="2026-11-25")
    assert len(small.charts) == 4 and "Every symbol with bars is charted." in render_html(small)
    for name in names[4:]:
        write_day(tmp_path, name)
    big = lake_reader.gather(tmp_path, day="2026-11-25")
    assert len(big.charts) == model.DEFAULT_CHARTS == 6
    assert "6 of the 8 symbols with bars are charted" in render_html(big)
