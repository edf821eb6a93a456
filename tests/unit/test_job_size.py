"""The aggregation run's size from its symbol-days: a daily run keeps the job as declared, a backfill grows."""

from datetime import date

import pytest

from pricefeed.errors import InvalidInput
from pricefeed.ingest.job_size import SYMBOL_DAYS_PER_EXECUTOR_HOUR, size_job, weekdays


def test_a_daily_run_of_the_universe_keeps_the_declared_two_workers_and_an_hour():
    assert size_job(2_600, max_workers=50) == {"workers": 2, "timeout_min": 60, "symbol_days": 2_600}


def test_workers_grow_with_the_symbol_days_so_the_run_stays_at_60_percent_of_an_hour():
    one_executor = int(SYMBOL_DAYS_PER_EXECUTOR_HOUR * 0.6)
    assert size_job(one_executor, max_workers=50)["workers"] == 2
    assert size_job(one_executor + 1, max_workers=50) == {"workers": 3, "timeout_min": 60, "symbol_days": 60_001}
    quarter = size_job(2_600 * 65, max_workers=50)
    assert quarter["workers"] == 4 and quarter["timeout_min"] == 60


def test_past_the_most_workers_the_timeout_grows_instead():
    universe = size_job(2_600 * 2_328, max_workers=50)
    assert universe["workers"] == 50
    # 6.05M symbol-days / (49 executors x 100,000 an hour) = 1.24 h expected, at 60% of the timeout
    assert universe["timeout_min"] == 124
    assert size_job(10**9, max_workers=2)["timeout_min"] == 2880  # Glue's ceiling


def test_weekdays_count_monday_to_friday_inclusive():
    assert weekdays(date(2026, 11, 23), date(2026, 11, 29)) == 5  # Monday .. Sunday
    assert weekdays(date(2026, 11, 28), date(2026, 11, 28)) == 0  # a Saturday
    first, last = date(2017, 7, 3), date(2026, 12, 3)
    every = [date.fromordinal(o) for o in range(first.toordinal(), last.toordinal() + 1)]
    assert weekdays(first, last) == sum(d.weekday() < 5 for d in every) == 2459
    assert weekdays(date(2026, 12, 3), date(2026, 12, 2)) == 0


@pytest.mark.parametrize(("symbol_days", "max_workers", "named"), [(-1, 50, "symbol_days"), (10, 1, "max Glue workers"),
                                                                   (1.5, 50, "symbol_days")])
def test_bad_sizes_are_named(symbol_days, max_workers, named):
    with pytest.raises(InvalidInput, match=named):
        size_job(symbol_days, max_workers=max_workers)
