"""minute_chunks: the fewest ≤100-day windows covering a range, never before 2017-07-03."""

from datetime import date, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricefeed.chunking import MINUTE_HISTORY_START, minute_chunks
from pricefeed.errors import InvalidInput
from pricefeed.fyers import minute_chunks as reexported


def test_a_single_day_is_one_chunk():
    assert minute_chunks(date(2024, 1, 2), date(2024, 1, 2)) == [(date(2024, 1, 2), date(2024, 1, 2))]


def test_exactly_max_days_is_one_chunk_and_one_more_day_is_two():
    start = date(2024, 1, 1)
    assert minute_chunks(start, start + timedelta(days=99)) == [(start, start + timedelta(days=99))]
    assert minute_chunks(start, start + timedelta(days=100)) == [
        (start, start + timedelta(days=99)),
        (start + timedelta(days=100), start + timedelta(days=100)),
    ]


def test_custom_chunk_size():
    assert minute_chunks(date(2024, 1, 1), date(2024, 1, 7), max_days=3) == [
        (date(2024, 1, 1), date(2024, 1, 3)),
        (date(2024, 1, 4), date(2024, 1, 6)),
        (date(2024, 1, 7), date(2024, 1, 7)),
    ]


def test_start_is_clamped_to_the_first_minute_history_date():
    assert minute_chunks(date(2010, 1, 1), date(2017, 7, 10)) == [(date(2017, 7, 3), date(2017, 7, 10))]


def test_a_range_ending_before_minute_history_is_empty():
    assert minute_chunks(date(2010, 1, 1), date(2017, 7, 2)) == []


def test_backwards_range_and_bad_size_are_invalid_input():
    with pytest.raises(InvalidInput, match="range_from"):
        minute_chunks(date(2024, 1, 2), date(2024, 1, 1))
    with pytest.raises(InvalidInput, match="max_days"):
        minute_chunks(date(2024, 1, 1), date(2024, 1, 2), max_days=0)


def test_fyers_module_exports_the_same_helper():
    assert reexported is minute_chunks


dates = st.dates(min_value=date(2015, 1, 1), max_value=date(2035, 12, 31))


@given(dates, dates, st.integers(min_value=1, max_value=400))
def test_chunks_tile_the_clamped_range_with_the_fewest_windows(a, b, max_days):
    first, last = min(a, b), max(a, b)
    chunks = minute_chunks(first, last, max_days=max_days)
    if last < MINUTE_HISTORY_START:
        assert chunks == []
        return
    start = max(first, MINUTE_HISTORY_START)
    assert chunks[0][0] == start and chunks[-1][1] == last
    for (_, prev_end), (next_start, _) in pairwise(chunks):
        assert next_start == prev_end + timedelta(days=1)  # contiguous, no overlap, no gap
    assert all(lo <= hi and (hi - lo).days + 1 <= max_days for lo, hi in chunks)
    total_days = (last - start).days + 1
    assert len(chunks) == -(-total_days // max_days)  # ceil: the fewest possible
