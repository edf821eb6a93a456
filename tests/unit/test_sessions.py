"""Exchange sessions per IST date: regular days, NSE holidays, weekends, Muhurat trading, other exchanges."""

from datetime import date, datetime, time

import pytest

from pricefeed.errors import InvalidInput
from pricefeed.istime import IST
from pricefeed.trading_calendar import SPECIAL_SESSIONS, TradingCalendar, is_trading_day, session_minutes


def ist(day: date, hour: int, minute: int) -> int:
    return int(datetime.combine(day, time(hour, minute), tzinfo=IST).timestamp())


def test_a_regular_day_is_0915_to_1530_ist():
    day = date(2026, 11, 25)
    assert session_minutes(day) == ((ist(day, 9, 15), ist(day, 15, 30)),)
    assert len(TradingCalendar().minute_starts(day)) == 375


@pytest.mark.parametrize(
    "closed",
    [date(2025, 11, 5), date(2026, 1, 26), date(2026, 11, 24), date(2025, 11, 22), date(2025, 11, 23)],
    ids=["guru-nanak-2025", "republic-day-2026", "guru-nanak-2026", "saturday", "sunday"],
)
def test_holidays_and_weekends_have_no_session(closed):
    assert session_minutes(closed) == () and not is_trading_day(closed)
    assert len(TradingCalendar().minute_starts(closed)) == 0


@pytest.mark.parametrize(
    ("day", "opens", "closes"),
    [
        (date(2024, 11, 1), (18, 0), (19, 0)),
        (date(2025, 10, 21), (13, 45), (14, 45)),
        (date(2023, 11, 12), (18, 15), (19, 15)),
    ],
)
def test_muhurat_trading_is_the_only_session_of_its_day(day, opens, closes):
    assert session_minutes(day) == ((ist(day, *opens), ist(day, *closes)),)
    assert is_trading_day(day) and is_trading_day(day, "BSE")


def test_a_special_session_can_be_added_without_editing_the_library():
    # Say an exchange announced a Saturday session: the caller extends the table for its own runs.
    saturday = date(2026, 11, 28)
    calendar = TradingCalendar({**SPECIAL_SESSIONS, saturday: ((time(10, 0), time(11, 0)),)})
    assert calendar.session_minutes(saturday) == ((ist(saturday, 10, 0), ist(saturday, 11, 0)),)
    assert not is_trading_day(saturday)  # the default calendar is untouched


def test_a_special_session_on_a_trading_day_adds_to_the_regular_one():
    day = date(2026, 11, 25)
    calendar = TradingCalendar({day: ((time(17, 0), time(17, 30)),)})
    assert len(calendar.minute_starts(day)) == 375 + 30


def test_mcx_keeps_its_evening_session_on_an_nse_holiday():
    holiday = date(2025, 11, 5)  # Guru Nanak Jayanti, after the US left daylight saving time
    assert session_minutes(holiday, "MCX") == ((ist(holiday, 17, 0), ist(holiday, 23, 55)),)


def test_an_exchange_without_a_master_keeps_the_regular_session_every_day():
    holiday = date(2025, 11, 5)
    assert session_minutes(holiday, "NCDEX") == ((ist(holiday, 9, 15), ist(holiday, 15, 30)),)


def test_beyond_the_packages_holiday_list_weekdays_trade_the_regular_session():
    far = date(2031, 6, 2)  # a Monday, years past the package's list
    assert session_minutes(far) == ((ist(far, 9, 15), ist(far, 15, 30)),)
    assert not is_trading_day(date(2031, 6, 1))  # Sunday


@pytest.mark.parametrize("bad", [datetime(2026, 11, 25, 10, 0), "2026-11-25"])
def test_a_non_date_is_refused(bad):
    with pytest.raises(InvalidInput, match=r"datetime\.date"):
        session_minutes(bad)


def test_a_backwards_special_session_is_refused():
    with pytest.raises(InvalidInput, match="2026-11-28"):
        TradingCalendar({date(2026, 11, 28): ((time(11, 0), time(10, 0)),)})


def test_the_lambda_sides_holiday_list_is_the_calendar_packages():
    from pricefeed import nse_holidays

    known, holidays = nse_holidays.from_package()
    assert (nse_holidays.KNOWN_UNTIL, nse_holidays.HOLIDAYS) == (known, frozenset(holidays)), (
        "exchange-calendars changed: regenerate src/pricefeed/nse_holidays.py (see its docstring)"
    )
    day = date(2017, 1, 1)
    while day <= known:  # the same answer as the job's calendar on every date
        assert nse_holidays.is_trading_day(day) == is_trading_day(day), day
        day = date.fromordinal(day.toordinal() + 1)
