"""`pricefeed heal`'s look-up: the symbols with open stretches in the state table, filtered by date, and their cost."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from awskit import ingest_stores
from pricefeed.errors import InvalidInput
from pricefeed.ingest.settled import Settled, Stretch
from pricefeed.ops.heal import find_open, heal_csv
from pricefeed.symbol import Symbol

IST = ZoneInfo("Asia/Kolkata")
NOW = datetime(2026, 12, 3, 17, 0, tzinfo=IST)


def ist(*args) -> int:
    return int(datetime(*args, tzinfo=IST).timestamp())


@pytest.fixture
def stores(mocked_aws):
    lake = ingest_stores(mocked_aws, table="state")
    frontier = ist(2026, 12, 3, 16) - 1

    def session(day: tuple, kind: str, opens: tuple = (9, 15), seen: float | None = None) -> tuple[Stretch, ...]:
        return (Stretch(ist(*day, *opens), ist(*day, 15, 30) - 1, kind, seen),)

    seed = {
        "NSE:HOLE-EQ": Settled(frontier, session((2026, 11, 27), "hole")),
        "NSE:TAIL-EQ": Settled(frontier, session((2026, 12, 2), "empty", (14, 0), 1.0)),
        "NSE:OLD-EQ": Settled(frontier, session((2026, 3, 2), "hole")),
        "NSE:SETTLED-EQ": Settled(frontier),
    }
    for symbol, state in seed.items():
        lake.watermarks.update(Symbol.parse(symbol), lambda _, s=state: s, "seed")
    lake.dynamodb.put_item(TableName="state", Item={"pk": {"S": "budget#APP"}, "tat": {"N": "1"}})  # not a symbol
    return lake


def test_every_symbol_with_something_open_is_found_with_the_requests_a_run_spends(stores):
    found = find_open(stores.dynamodb, "state", now=NOW)
    assert [(str(o.symbol), o.first_day, o.holes, o.requests) for o in found] == [
        ("NSE:HOLE-EQ", date(2026, 11, 27), 1, 1),  # the hole and the frontier share one request
        ("NSE:OLD-EQ", date(2026, 3, 2), 1, 2),  # more than 100 days apart: two
        ("NSE:TAIL-EQ", date(2026, 12, 2), 0, 1),
    ]
    assert heal_csv(found) == "symbol\nNSE:HOLE-EQ\nNSE:OLD-EQ\nNSE:TAIL-EQ\n"


def test_dates_narrow_the_symbols_and_a_reversed_range_is_named(stores):
    found = find_open(stores.dynamodb, "state", first=date(2026, 11, 1), last=date(2026, 11, 30), now=NOW)
    assert [str(o.symbol) for o in found] == ["NSE:HOLE-EQ"]
    assert find_open(stores.dynamodb, "state", first=date(2026, 12, 3), now=NOW) == []
    with pytest.raises(InvalidInput, match="--to 2026-11-01 is before --from 2026-11-30"):
        find_open(stores.dynamodb, "state", first=date(2026, 11, 30), last=date(2026, 11, 1))
