"""The per-symbol settled state in the state table: read it, change it under concurrent writers."""

from datetime import UTC, datetime

import boto3
import pytest

from awskit import create_state_table
from pricefeed.errors import InvalidInput
from pricefeed.ingest.settled import Settled, Stretch
from pricefeed.ingest.watermark import Watermarks, watermark_pk
from pricefeed.symbol import Symbol

TABLE = "pricefeed-state"
NOW = datetime(2026, 11, 26, 7, 6, 40, 250000, tzinfo=UTC)
KEY = "ohlcv/raw/symbol=SBIN-EQ/exchange=NSE/year=2026/month=11/day=26/ingest-20261126T103000000000Z.json"


@pytest.fixture
def db(mocked_aws):
    client = boto3.client("dynamodb")
    create_state_table(client, TABLE)
    return client


@pytest.fixture
def marks(db):
    return Watermarks(db, TABLE, clock=NOW.timestamp)


def test_a_symbol_never_stored_has_no_watermark(marks):
    assert marks.get(Symbol.parse("NSE:SBIN-EQ")) is None


def test_a_change_stores_the_frontier_the_open_stretches_the_key_and_when(marks, db):
    state = Settled(1_795_631_399, (Stretch(1_795_600_000, 1_795_600_059, "empty", 1_795_631_000.5),))
    assert marks.update(Symbol.parse("NSE:SBIN-EQ"), lambda _: state, KEY) == state
    assert marks.get(Symbol.parse("NSE:SBIN-EQ")) == 1_795_631_399
    assert marks.load(Symbol.parse("NSE:SBIN-EQ")) == state
    item = db.get_item(TableName=TABLE, Key={"pk": {"S": "watermark#NSE:SBIN-EQ"}})["Item"]
    assert item == {
        "pk": {"S": "watermark#NSE:SBIN-EQ"},
        "covered_through": {"N": "1795631399"},
        "open": {"S": '[[1795600000,1795600059,"empty",1795631000.5]]'},
        "version": {"N": "1"},
        "raw_key": {"S": KEY},
        "updated_at": {"S": "2026-11-26T07:06:40.250000Z"},
    }


def test_an_item_from_before_open_stretches_reads_as_a_frontier_with_nothing_open(marks, db):
    db.put_item(TableName=TABLE, Item={"pk": {"S": "watermark#NSE:SBIN-EQ"}, "covered_through": {"N": "2000"}})
    assert marks.load(Symbol.parse("NSE:SBIN-EQ")) == Settled(2000)
    marks.update(Symbol.parse("NSE:SBIN-EQ"), lambda s: Settled(s.through + 60), "k")
    assert marks.load(Symbol.parse("NSE:SBIN-EQ")) == Settled(2060)


def test_a_change_raced_by_another_writer_is_applied_to_the_winners_state(marks, db):
    symbol = Symbol.parse("NSE:SBIN-EQ")
    marks.update(symbol, lambda _: Settled(1_000), "k0")
    seen: list[Settled] = []

    def change(current: Settled) -> Settled:
        seen.append(current)
        if len(seen) == 1:  # another ingest of the symbol lands between this one's read and its write
            Watermarks(db, TABLE).update(symbol, lambda s: Settled(5_000, s.open), "other")
        return Settled(max(current.through, 2_000), (*current.open, Stretch(60, 119, "hole")))

    assert marks.update(symbol, change, "k1") == Settled(5_000, (Stretch(60, 119, "hole"),))
    assert seen == [Settled(1_000), Settled(5_000)]


def test_an_unchanged_state_writes_nothing(marks, db):
    symbol = Symbol.parse("NSE:SBIN-EQ")
    marks.update(symbol, lambda _: Settled(1_000), "k0")
    marks.update(symbol, lambda s: s, "k1")
    item = db.get_item(TableName=TABLE, Key={"pk": {"S": "watermark#NSE:SBIN-EQ"}})["Item"]
    assert item["raw_key"] == {"S": "k0"} and item["version"] == {"N": "1"}


def test_symbols_are_independent_and_keyed_by_the_full_symbol(marks):
    marks.update(Symbol.parse("NSE:SBIN-EQ"), lambda _: Settled(5), "k")
    assert marks.get(Symbol.parse("BSE:SBIN-A")) is None
    assert watermark_pk(Symbol.parse("NSE:M&M-EQ")) == "watermark#NSE:M&M-EQ"


def test_a_malformed_symbol_is_refused_before_any_call(marks):
    with pytest.raises(InvalidInput, match="SBIN-EQ"):
        marks.get(Symbol.parse("SBIN-EQ"))
