"""Request windows: the fewest ≤100-IST-date windows covering a range, never before 2017-07-03."""

from datetime import date, datetime
from itertools import pairwise
from unittest.mock import patch
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pricefeed.errors import InvalidInput
from pricefeed.fyers.windows import MINUTE_HISTORY_START_EPOCH, request_windows
from pricefeed.simulator import market as sim_market
from pricefeed.simulator.errors import ApiError
from pricefeed.simulator.history import history_reply

# --- request_windows: epoch seconds, what the ingest asks -----------------------------------------
IST = ZoneInfo("Asia/Kolkata")
KNOBS = {"invalid_symbol_status": 400, "daily_stamp": "utc_midnight", "no_data_style": "empty_list"}


def ist(*args) -> int:
    return int(datetime(*args, tzinfo=IST).timestamp())


def simulator_accepts(window: tuple[int, int]) -> bool:
    """The simulator's own range check, with its market emptied so no candles are computed."""
    query = {"symbol": "NSE:SBIN-EQ", "resolution": "1", "date_format": "0"}
    query.update(range_from=str(window[0]), range_to=str(window[1]))
    with patch.object(sim_market, "history", return_value=[]):
        try:
            history_reply(query, seed=1, unknown=frozenset(), now=2e9, knobs=KNOBS)
        except ApiError:
            return False
    return True


def test_a_calendar_year_is_four_requests_of_at_most_100_ist_dates():
    windows = request_windows(ist(2025, 1, 1), ist(2026, 1, 1) - 1)
    assert windows == [
        (ist(2025, 1, 1), ist(2025, 4, 11) - 1),
        (ist(2025, 4, 11), ist(2025, 7, 20) - 1),
        (ist(2025, 7, 20), ist(2025, 10, 28) - 1),
        (ist(2025, 10, 28), ist(2026, 1, 1) - 1),
    ]
    assert all(simulator_accepts(w) for w in windows)


def test_exactly_100_ist_dates_is_one_request_the_simulator_accepts_and_one_second_more_is_two():
    start = ist(2024, 1, 1)
    end = ist(2024, 4, 10) - 1  # the last second of the 100th date
    assert request_windows(start, end) == [(start, end)]
    assert simulator_accepts((start, end))
    assert not simulator_accepts((start, start + 100 * 86_400 + 1))  # the check does bite
    assert request_windows(start, end + 1) == [(start, end), (end + 1, end + 1)]


def test_a_start_inside_a_day_keeps_the_first_window_within_its_100_dates():
    start = ist(2024, 1, 1, 12, 1)  # an incremental run resuming after its watermark
    windows = request_windows(start, ist(2024, 6, 1) - 1)
    assert windows[0] == (start, ist(2024, 4, 10) - 1)
    assert windows[1][0] == ist(2024, 4, 10)


def test_a_single_minute_is_one_window():
    minute = ist(2026, 11, 25, 10, 6)
    assert request_windows(minute, minute + 59) == [(minute, minute + 59)]
    assert request_windows(minute, minute) == [(minute, minute)]


def test_history_before_2017_07_03_is_never_asked():
    assert MINUTE_HISTORY_START_EPOCH == ist(2017, 7, 3)
    assert request_windows(ist(2016, 1, 1), ist(2017, 7, 10) - 1) == [(ist(2017, 7, 3), ist(2017, 7, 10) - 1)]
    assert request_windows(ist(2016, 1, 1), ist(2017, 7, 3) - 1) == []
    assert request_windows(ist(2017, 7, 3) - 1, ist(2017, 7, 3)) == [(ist(2017, 7, 3), ist(2017, 7, 3))]


def test_request_windows_rejects_a_backwards_range_and_a_bad_size():
    with pytest.raises(InvalidInput, match="range_from"):
        request_windows(10, 9)
    with pytest.raises(InvalidInput, match="max_days"):
        request_windows(1, 2, max_days=0)


LO, HI = ist(2015, 1, 1), ist(2035, 1, 1)


def ist_date(epoch: int) -> date:
    return datetime.fromtimestamp(epoch, IST).date()


@settings(max_examples=300)
@given(
    st.integers(LO, HI),
    st.integers(0, 3 * 366 * 86_400),
    st.integers(1, 150),
    st.booleans(),
)
def test_windows_cover_the_clamped_range_exactly_with_the_fewest_date_bounded_requests(
    start, length, max_days, aligned
):
    if aligned:
        start = start - (start - ist(2015, 1, 1)) % 86_400  # IST midnight
    end = start + length
    windows = request_windows(start, end, max_days=max_days)
    first = max(start, MINUTE_HISTORY_START_EPOCH)
    if end < first:
        assert windows == []
        return
    # exact cover, no overlap, no gap
    assert windows[0][0] == first and windows[-1][1] == end
    for (_, prev_end), (next_start, _) in pairwise(windows):
        assert next_start == prev_end + 1
        assert datetime.fromtimestamp(next_start, IST).time() == datetime.min.time()  # IST midnight
    for lo, hi in windows:
        assert lo <= hi
        assert (ist_date(hi) - ist_date(lo)).days < max_days  # at most max_days IST dates
        assert hi - lo < max_days * 86_400
    # the fewest: no window can hold more than max_days of the range's IST dates
    dates = (ist_date(end) - ist_date(first)).days + 1
    assert len(windows) == -(-dates // max_days)


@settings(max_examples=100)
@given(st.integers(ist(2017, 1, 1), HI), st.integers(0, 2 * 366 * 86_400))
def test_every_default_window_is_accepted_by_the_simulator(start, length):
    assert all(simulator_accepts(w) for w in request_windows(start, start + length))
