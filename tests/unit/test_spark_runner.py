"""How the Spark runner cuts a run's symbol-days into tasks (pure; the Spark run itself is an integration test)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricefeed.aggregate.spark import batches

D0 = date(2026, 11, 2)


def work_of(days_per_symbol: list[int]) -> list[tuple[str, date]]:
    return [(f"NSE:S{i}-EQ", D0 + timedelta(days=k)) for i, n in enumerate(days_per_symbol) for k in range(n)]


@given(st.lists(st.integers(1, 30), max_size=40), st.integers(1, 25))
def test_batches_keep_every_symbol_day_once_in_order_and_within_size(days_per_symbol, size):
    work = work_of(days_per_symbol)
    out = batches(work, batch_size=size)
    assert [item for batch in out for item in batch] == work
    assert all(1 <= len(batch) <= size for batch in out)
    # A symbol is split across batches only when its days do not fit in one.
    for i, n in enumerate(days_per_symbol):
        holding = [b for b in out if any(s == f"NSE:S{i}-EQ" for s, _ in b)]
        assert len(holding) <= -(-n // size) + 1


def test_a_symbols_days_stay_together_when_they_fit():
    out = batches(work_of([3, 3, 3]), batch_size=6)
    assert [[s for s, _ in b] for b in out] == [["NSE:S0-EQ"] * 3 + ["NSE:S1-EQ"] * 3, ["NSE:S2-EQ"] * 3]


def test_an_empty_run_has_no_batches_and_a_zero_size_is_refused():
    assert batches([], batch_size=4) == []
    with pytest.raises(ValueError, match="batch_size"):
        batches(work_of([1]), batch_size=0)
