"""NSE/BSE weekday holidays for the Lambda side, which has no exchange calendar (pandas is not in the layer).

The list is the ``exchange-calendars`` package's (calendar ``XBOM``, the same source as
:mod:`pricefeed.trading_calendar`) from 2017 to :data:`KNOWN_UNTIL`; ``tests/unit/test_sessions.py`` checks that it
still equals the pinned package's, so upgrading the package to learn a new year fails that test until this file is
regenerated: ``python -m pricefeed.nse_holidays > src/pricefeed/nse_holidays.py`` (from the dev venv).
Beyond :data:`KNOWN_UNTIL` every weekday counts as a trading day.
"""

from __future__ import annotations

from datetime import date

from pricefeed.session_hours import SPECIAL_SESSIONS

KNOWN_UNTIL = date.fromisoformat("2026-12-31")
HOLIDAYS = frozenset(
    date.fromisoformat(d)
    for d in (
        # 2017
        "2017-01-26",
        "2017-02-24",
        "2017-03-13",
        "2017-04-04",
        "2017-04-14",
        "2017-05-01",
        "2017-06-26",
        "2017-08-15",
        "2017-08-25",
        "2017-10-02",
        "2017-10-19",
        "2017-10-20",
        "2017-12-25",
        # 2018
        "2018-01-26",
        "2018-02-13",
        "2018-03-02",
        "2018-03-29",
        "2018-03-30",
        "2018-05-01",
        "2018-08-15",
        "2018-08-22",
        "2018-09-13",
        "2018-09-20",
        "2018-10-02",
        "2018-10-18",
        "2018-11-07",
        "2018-11-08",
        "2018-11-23",
        "2018-12-25",
        # 2019
        "2019-03-04",
        "2019-03-21",
        "2019-04-17",
        "2019-04-19",
        "2019-04-29",
        "2019-05-01",
        "2019-06-05",
        "2019-08-12",
        "2019-08-15",
        "2019-09-02",
        "2019-09-10",
        "2019-10-02",
        "2019-10-08",
        "2019-10-21",
        "2019-10-28",
        "2019-11-12",
        "2019-12-25",
        # 2020
        "2020-02-21",
        "2020-03-10",
        "2020-04-02",
        "2020-04-06",
        "2020-04-10",
        "2020-04-14",
        "2020-05-01",
        "2020-05-25",
        "2020-10-02",
        "2020-11-16",
        "2020-11-30",
        "2020-12-25",
        # 2021
        "2021-01-26",
        "2021-03-11",
        "2021-03-29",
        "2021-04-02",
        "2021-04-14",
        "2021-04-21",
        "2021-05-13",
        "2021-07-21",
        "2021-08-19",
        "2021-09-10",
        "2021-10-15",
        "2021-11-04",
        "2021-11-05",
        "2021-11-19",
        # 2022
        "2022-01-26",
        "2022-03-01",
        "2022-03-18",
        "2022-04-14",
        "2022-04-15",
        "2022-05-03",
        "2022-08-09",
        "2022-08-15",
        "2022-08-31",
        "2022-10-05",
        "2022-10-24",
        "2022-10-26",
        "2022-11-08",
        # 2023
        "2023-01-26",
        "2023-03-07",
        "2023-03-30",
        "2023-04-04",
        "2023-04-07",
        "2023-04-14",
        "2023-05-01",
        "2023-06-29",
        "2023-08-15",
        "2023-09-19",
        "2023-10-02",
        "2023-10-24",
        "2023-11-14",
        "2023-11-27",
        "2023-12-25",
        # 2024
        "2024-01-22",
        "2024-01-26",
        "2024-03-08",
        "2024-03-25",
        "2024-03-29",
        "2024-04-11",
        "2024-04-17",
        "2024-05-01",
        "2024-05-20",
        "2024-06-17",
        "2024-07-17",
        "2024-08-15",
        "2024-10-02",
        "2024-11-01",
        "2024-11-15",
        "2024-11-20",
        "2024-12-25",
        # 2025
        "2025-02-26",
        "2025-03-14",
        "2025-03-31",
        "2025-04-10",
        "2025-04-14",
        "2025-04-18",
        "2025-05-01",
        "2025-08-15",
        "2025-08-27",
        "2025-10-02",
        "2025-10-21",
        "2025-10-22",
        "2025-11-05",
        "2025-12-25",
        # 2026
        "2026-01-15",
        "2026-01-26",
        "2026-03-03",
        "2026-03-26",
        "2026-03-31",
        "2026-04-03",
        "2026-04-14",
        "2026-05-01",
        "2026-05-28",
        "2026-06-26",
        "2026-09-14",
        "2026-10-02",
        "2026-10-20",
        "2026-11-10",
        "2026-11-24",
        "2026-12-25",
    )
)


def is_trading_day(day: date) -> bool:
    """Whether NSE trades on the IST date ``day`` (a weekday that is not a holiday, or a special session)."""
    if day in SPECIAL_SESSIONS:
        return True
    return day.weekday() < 5 and day not in HOLIDAYS


def from_package() -> tuple[date, list[date]]:
    """The package's last known date and its weekday holidays since 2017 (needs ``exchange-calendars``)."""
    import warnings
    from datetime import timedelta

    import exchange_calendars

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sessions = {d.date() for d in exchange_calendars.get_calendar("XBOM").sessions}
    last, day, holidays = max(sessions), date(2017, 1, 1), []
    while day <= last:
        if day.weekday() < 5 and day not in sessions:
            holidays.append(day)
        day += timedelta(days=1)
    return last, holidays


if __name__ == "__main__":  # pragma: no cover - prints this module for the package's current holidays
    import inspect
    import sys

    source = inspect.getsource(sys.modules[__name__])
    known, found = from_package()
    head, _, rest = source.partition("KNOWN_UNTIL = ")
    tail = rest[rest.index("\n\n\ndef is_trading_day"):]
    years: dict[int, list[date]] = {}
    for holiday in found:
        years.setdefault(holiday.year, []).append(holiday)
    listed = "".join(f"        # {y}\n" + "".join(f'        "{h.isoformat()}",\n' for h in v) for y, v in years.items())
    print(f'{head}KNOWN_UNTIL = date.fromisoformat("{known.isoformat()}")\nHOLIDAYS = frozenset(\n'
          f"    date.fromisoformat(d)\n    for d in (\n{listed}    )\n){tail}", end="")
