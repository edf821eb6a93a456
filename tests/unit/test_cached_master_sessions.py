"""Each ticker's sessions from the master copies the plan cached: column 6 found by content, the newest copy on or
before the job's day, and the segment's usual hours for a ticker no copy lists or whose cell cannot be read."""

from datetime import date

import boto3
import pytest

from pricefeed.aggregate.instrument_sessions import load_hours, session_column, sessions_of
from pricefeed.lake.masters import master_key
from pricefeed.market_hours import Hours
from pricefeed.simulator.master import documented_row, listings
from pricefeed.symbol import Symbol

BUCKET = "raw"
GOLD, CRUDE, RUPEE = "MCX:GOLD27FEBFUT", "MCX:CRUDEOIL26DECFUT", "NSE:USDINR26DECFUT"


def master(segment: str, day: str, order: list[int] | None = None, session: str | None = None) -> str:
    lines = []
    for row in listings().values():
        if row.segment == segment:
            cells = documented_row(row, day)
            if session is not None:
                cells[6] = session
            lines.append(",".join(cells[i] for i in order) if order else ",".join(cells))
    return "\n".join(lines) + "\n"


def test_the_session_column_is_read_for_the_wanted_tickers_only():
    hours = sessions_of(master("MCX_COM", "2026-12-04"), segment="MCX_COM", tickers={GOLD, "MCX:UNLISTED26DECFUT"})
    assert hours == {GOLD: Hours("MCX_COM", ((540, 1435),), "master")}  # a December master: 23:55


def test_shuffled_columns_are_found_by_content():
    order = [9, 6, 0, 1, 2, 3, 4, 5, 7, 8, *range(10, 21)]
    text = master("NSE_CD", "2026-12-04", order)
    assert session_column([line.split(",") for line in text.splitlines()]) == 1
    assert sessions_of(text, segment="NSE_CD", tickers={RUPEE})[RUPEE].windows == ((540, 1020),)


@pytest.mark.parametrize("cell", ["", "None", "garbage"])
def test_an_unreadable_cell_gives_the_segments_usual_hours(cell):
    found = sessions_of(master("MCX_COM", "2026-12-04", session=cell), segment="MCX_COM", tickers={GOLD})
    assert found in ({}, {GOLD: Hours("MCX_COM", ((540, 1410),), "default")})


@pytest.fixture
def s3(mocked_aws):
    client = boto3.client("s3", region_name=mocked_aws)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": mocked_aws})
    return client


def test_the_newest_copy_on_or_before_the_day_is_used_and_unlisted_tickers_get_defaults(s3):
    s3.put_object(Bucket=BUCKET, Key=master_key("MCX_COM", date(2026, 11, 30)),
                  Body=master("MCX_COM", "2026-11-30", session="0900-2100|1815-1915:").encode())
    s3.put_object(Bucket=BUCKET, Key=master_key("MCX_COM", date(2026, 12, 4)), Body=master("MCX_COM", "2026-12-04"))
    s3.put_object(Bucket=BUCKET, Key=master_key("MCX_COM", date(2026, 12, 9)),
                  Body=master("MCX_COM", "2026-12-09", session="0900-1000").encode())
    symbols = [Symbol.parse(s) for s in (GOLD, CRUDE, RUPEE, "MCX:UNLISTED26DECFUT")]
    hours, summary = load_hours(s3, BUCKET, symbols, today=date(2026, 12, 5))
    december = Hours("MCX_COM", ((540, 1435),), "master")  # the 2026-12-04 copy: 23:55
    assert hours == {GOLD: december, CRUDE: december}
    assert summary == {"master": 2, "default": 2,
                       "copies": {"MCX_COM": "ohlcv/symbol-master/date=2026-12-04/MCX_COM.csv"}}
    assert load_hours(s3, BUCKET, symbols, today=date(2026, 11, 1)) == ({}, {"master": 0, "default": 4, "copies": {}})
