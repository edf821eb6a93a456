"""IST time rules: which day "today" is, which session last closed, and that the host TZ never matters."""

import os
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pricefeed import istime
from pricefeed.errors import InvalidInput
from pricefeed.istime import (
    days,
    ist_day_range,
    ist_midnight_epoch,
    ist_today,
    last_closed_minute_epoch,
    last_closed_session,
    parse_date,
)

IST = ZoneInfo("Asia/Kolkata")
# 2026-11-20 is a Friday, 21 Saturday, 22 Sunday, 23 Monday, 24 Tuesday, 25 Wednesday.
FRI, SAT, SUN, MON, TUE, WED = (date(2026, 11, d) for d in (20, 21, 22, 23, 24, 25))


class TestIstRules:
    def test_ist_today_changes_at_1830_utc(self):
        # Given the last second before IST midnight and the first second after it, in UTC
        before = datetime(2026, 11, 25, 18, 29, 59, tzinfo=UTC)
        after = datetime(2026, 11, 25, 18, 30, 0, tzinfo=UTC)
        # Then IST's date turns over while UTC's does not
        assert ist_today(before) == WED
        assert ist_today(after) == date(2026, 11, 26)
        assert before.date() == after.date() == WED

    def test_ist_today_without_an_argument_reads_the_utc_clock(self, monkeypatch):
        monkeypatch.setattr(istime, "utcnow", lambda: datetime(2026, 11, 25, 20, 0, tzinfo=UTC))
        assert ist_today() == date(2026, 11, 26)

    def test_an_ist_day_runs_from_ist_midnight_to_its_last_second(self):
        start, end = ist_day_range(WED)
        assert start == int(datetime(2026, 11, 24, 18, 30, tzinfo=UTC).timestamp())
        assert end - start == 86_399
        assert ist_midnight_epoch(date(2026, 11, 26)) == end + 1

    def test_last_closed_minute_excludes_the_forming_one(self):
        now = datetime(2026, 11, 25, 4, 37, 30, tzinfo=UTC)  # 10:07:30 IST
        assert last_closed_minute_epoch(now) == int(datetime(2026, 11, 25, 10, 6, 59, tzinfo=IST).timestamp())

    @pytest.mark.parametrize(
        ("ist_now", "expected"),
        [
            (datetime(2026, 11, 25, 15, 30, tzinfo=IST), WED),  # the close itself counts as closed
            (datetime(2026, 11, 25, 23, 59, tzinfo=IST), WED),
            (datetime(2026, 11, 25, 15, 29, 59, tzinfo=IST), TUE),  # still trading: yesterday's session
            (datetime(2026, 11, 25, 0, 0, tzinfo=IST), TUE),
            (datetime(2026, 11, 20, 16, 0, tzinfo=IST), FRI),
            (datetime(2026, 11, 21, 12, 0, tzinfo=IST), FRI),  # Saturday
            (datetime(2026, 11, 22, 18, 0, tzinfo=IST), FRI),  # Sunday
            (datetime(2026, 11, 23, 9, 15, tzinfo=IST), FRI),  # Monday morning, market just open
            (datetime(2026, 11, 23, 15, 31, tzinfo=IST), MON),
        ],
    )
    def test_last_closed_session(self, ist_now, expected):
        assert last_closed_session(ist_now) == expected
        # the same instant given in UTC gives the same answer
        assert last_closed_session(ist_now.astimezone(UTC)) == expected

    def test_monday_evening_in_utc_already_after_the_close_in_ist_is_monday(self):
        # 10:05 UTC Monday = 15:35 IST Monday
        assert last_closed_session(datetime(2026, 11, 23, 10, 5, tzinfo=UTC)) == MON

    def test_last_closed_session_without_an_argument_reads_the_utc_clock(self, monkeypatch):
        monkeypatch.setattr(istime, "utcnow", lambda: datetime(2026, 11, 22, 23, 0, tzinfo=UTC))  # Mon 04:30 IST
        assert last_closed_session() == FRI


# The same rules, on hosts whose local zone is far from IST: results must not move.
@pytest.fixture(params=["America/New_York", "Asia/Tokyo"])
def host_tz(request):
    saved = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    try:
        yield request.param
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


@pytest.mark.usefixtures("host_tz")
class TestHostZoneNeverMatters(TestIstRules):
    def test_the_host_zone_really_is_set(self, host_tz):
        # Guards the guard: if TZ were not applied, the inherited tests would prove nothing.
        offset = datetime(2026, 11, 25, 12, 0, tzinfo=UTC).astimezone().utcoffset()
        assert offset == {"America/New_York": timedelta(hours=-5), "Asia/Tokyo": timedelta(hours=9)}[host_tz]


# --- parse_date ----------------------------------------------------------------------------------------
def test_parse_date_accepts_an_iso_date_string_or_a_date():
    assert parse_date("2026-11-25") == WED
    assert parse_date(WED) == WED


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "got NoneType"),
        (20261125, "got int"),
        (datetime(2026, 11, 25, 10, 0, tzinfo=UTC), "got datetime"),
        ("25/11/2026", "got '25/11/2026'"),
        ("20261125", "got '20261125'"),
        ("", "got ''"),
    ],
)
def test_parse_date_errors_name_the_field_and_the_value(value, shown):
    with pytest.raises(InvalidInput) as err:
        parse_date(value, what="execution input 'date'")
    assert str(err.value).startswith("execution input 'date' must be a YYYY-MM-DD string")
    assert shown in str(err.value)


@pytest.mark.parametrize("value", ["2026-02-29", "2026-02-30", "2026-13-01", "2026-04-31"])
def test_a_well_formed_date_that_does_not_exist_is_named_as_such(value):
    with pytest.raises(InvalidInput, match=rf"^--date {value} is not a date on the calendar \(\w"):
        parse_date(value, what="--date")


def test_parse_date_does_not_echo_a_huge_value():
    with pytest.raises(InvalidInput) as err:
        parse_date("x" * 10_000)
    assert len(str(err.value)) < 120


def test_days_lists_every_date_inclusive_and_refuses_a_backwards_range():
    assert days(FRI, MON) == [FRI, SAT, SUN, MON]
    assert days(WED, WED) == [WED]
    with pytest.raises(InvalidInput, match="ends"):
        days(WED, TUE)
