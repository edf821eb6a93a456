"""Each instrument's own sessions: the symbol master's session column read in every form seen, and the sessions a
segment holds on a date (MCX evenings and seasons, currency hours, NSE holidays, Muhurat, Good Friday)."""

from datetime import date, datetime, time

import pytest

from pricefeed.istime import IST
from pricefeed.market_hours import Hours, good_friday, parse_sessions, us_daylight_saving
from pricefeed.session_hours import trade_hours_key
from pricefeed.symbol import Symbol
from pricefeed.trading_calendar import DEFAULT_CALENDAR, TradingCalendar

MCX, CURRENCY, FUTURE, CASH = (Symbol.parse(s) for s in
                               ("MCX:GOLD27FEBFUT", "NSE:USDINR26DECFUT", "NSE:NIFTY26DECFUT", "NSE:SBIN-EQ"))
SUMMER, WINTER = date(2024, 7, 3), date(2024, 12, 4)  # Wednesdays: US daylight saving in force / not


@pytest.mark.parametrize(
    ("cell", "sessions"),
    [
        ("0915-1530|1815-1915:", ((555, 930),)),  # NSE cash and F&O
        ("0900-2330|1815-1915:", ((540, 1410),)),  # MCX, NSE commodities
        ("0900-1700|1815-1915:", ((540, 1020),)),  # currency
        ("0915-1540:", ((555, 940),)),  # BSE options: no special slot
        ("0915-1530", ((555, 930),)),  # no terminator
        (" 09:00 - 17:00 | 18:15-19:15 : ", ((540, 1020),)),  # HH:MM and spaces
        ("0900-1330,1400-2330|1815-1915:", ((540, 810), (840, 1410))),  # a break: two sessions
        ("1400-2330;0900-1330", ((540, 810), (840, 1410))),
    ],
)
def test_the_session_column_is_read_in_every_form_seen(cell, sessions):
    assert parse_sessions(cell) == sessions


@pytest.mark.parametrize("cell", ["", "None", ":", "|1815-1915:", "2300-0100", "1530-0915", "0960-1000", "0900-2430",
                                  "9-17", "INE062A01020", None, 915])
def test_a_cell_that_names_no_session_is_not_guessed_at(cell):
    assert parse_sessions(cell) is None


def test_an_unreadable_cell_falls_back_to_the_segments_usual_hours():
    assert Hours.of(MCX, "MCX_COM", "0900-2355|1815-1915:") == Hours("MCX_COM", ((540, 1435),), "master")
    assert Hours.of(MCX, "MCX_COM", "garbage") == Hours("MCX_COM", ((540, 1410),), "default")
    assert Hours.of(CURRENCY).windows == ((540, 1020),) and Hours.of(CURRENCY).segment == "NSE_CD"
    assert Hours.of(CASH).windows == ((555, 930),)
    hours = Hours.of(MCX, "MCX_COM", "0900-1330,1400-2330:")
    assert Hours.decode(hours.encode()) == hours and hours.encode() == "MCX_COM 0900-1330,1400-2330 master"


def minutes(symbol: Symbol, day: date, calendar: TradingCalendar = DEFAULT_CALENDAR) -> int:
    return len(calendar.minute_starts(day, symbol))


@pytest.mark.parametrize(
    ("day", "cash", "future", "currency", "mcx"),
    [
        (SUMMER, 375, 375, 480, 870),  # MCX 09:00-23:30 while the US keeps daylight saving time
        (WINTER, 375, 375, 480, 895),  # and 09:00-23:55 outside it
        (date(2024, 11, 15), 0, 0, 0, 415),  # Guru Nanak Jayanti: NSE shut, MCX's evening session 17:00-23:55
        (date(2024, 1, 26), 0, 0, 0, 0),  # Republic Day: MCX shut all day
        (date(2024, 3, 29), 0, 0, 0, 0),  # Good Friday
        (date(2024, 7, 6), 0, 0, 0, 0),  # a Saturday
        (date(2024, 11, 1), 60, 60, 60, 60),  # Muhurat trading 18:00-19:00 is the day's only session everywhere
        (date(2025, 2, 1), 375, 375, 0, 0),  # the budget Saturday: a live session for cash and F&O only
    ],
)
def test_each_segment_trades_its_own_sessions_on_its_own_days(day, cash, future, currency, mcx):
    assert (minutes(CASH, day), minutes(FUTURE, day), minutes(CURRENCY, day), minutes(MCX, day)) == (
        cash, future, currency, mcx)


def test_the_masters_close_is_read_for_the_season_of_the_date_asked():
    # A master downloaded in winter says 23:55; a summer date of the same contract closes at 23:30, and back.
    winter_master = DEFAULT_CALENDAR.with_hours({str(MCX): Hours.of(MCX, "MCX_COM", "0900-2355|1815-1915:")})
    summer_master = DEFAULT_CALENDAR.with_hours({str(MCX): Hours.of(MCX, "MCX_COM", "0900-2330|1815-1915:")})
    for calendar in (winter_master, summer_master):
        assert (minutes(MCX, SUMMER, calendar), minutes(MCX, WINTER, calendar)) == (870, 895)
    last = datetime.fromtimestamp(int(winter_master.minute_starts(SUMMER, MCX)[-1]), IST)
    assert last.time() == time(23, 29)


def test_an_agricultural_contracts_own_close_is_kept_and_its_evening_on_an_nse_holiday():
    cotton = Symbol.parse("MCX:COTTONCNDY27JANFUT")
    calendar = DEFAULT_CALENDAR.with_hours({str(cotton): Hours.of(cotton, "MCX_COM", "0900-2100|1815-1915:")})
    assert minutes(cotton, SUMMER, calendar) == minutes(cotton, WINTER, calendar) == 720  # not seasonal
    assert minutes(cotton, date(2024, 11, 15), calendar) == 240  # 17:00-21:00


def test_a_master_with_a_break_gives_two_sessions_and_the_default_calendar_stays_untouched():
    calendar = DEFAULT_CALENDAR.with_hours({str(CASH): Hours.of(CASH, "NSE_CM", "0915-1130,1200-1530")})
    assert minutes(CASH, SUMMER, calendar) == 135 + 210
    assert len(calendar.session_minutes(SUMMER, CASH)) == 2
    assert minutes(CASH, SUMMER) == 375


@pytest.mark.parametrize("year, friday", [(2019, date(2019, 4, 19)), (2021, date(2021, 4, 2)),
                                          (2024, date(2024, 3, 29)), (2025, date(2025, 4, 18))])
def test_good_friday(year, friday):
    assert good_friday(year) == friday


def test_us_daylight_saving_switches_on_its_sundays():
    assert not us_daylight_saving(date(2024, 3, 9)) and us_daylight_saving(date(2024, 3, 11))
    assert us_daylight_saving(date(2024, 11, 1)) and not us_daylight_saving(date(2024, 11, 4))


@pytest.mark.parametrize(("symbol", "key"), [(CASH, "NSE"), (FUTURE, "NSE"), (Symbol.parse("BSE:SBIN-A"), "BSE"),
                                             (CURRENCY, "*"), (MCX, "*")])
def test_the_ingest_counts_every_weekday_minute_of_currency_and_commodities_as_tradable(symbol, key):
    # so an empty answer after 15:30 is asked again for them, never settled as after-hours
    assert trade_hours_key(symbol) == key
