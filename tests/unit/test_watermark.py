"""The per-symbol watermark in the state table: read it, and move it only forward."""

from datetime import UTC, datetime

import boto3
import pytest

from awskit import create_state_table
from pricefeed.errors import InvalidInput
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


def test_advancing_stores_the_second_the_key_and_when(marks, db):
    assert marks.advance(Symbol.parse("NSE:SBIN-EQ"), 1_795_631_399, KEY) is True
    assert marks.get(Symbol.parse("NSE:SBIN-EQ")) == 1_795_631_399
    item = db.get_item(TableName=TABLE, Key={"pk": {"S": "watermark#NSE:SBIN-EQ"}})["Item"]
    assert item == {
        "pk": {"S": "watermark#NSE:SBIN-EQ"},
        "covered_through": {"N": "1795631399"},
        "raw_key": {"S": KEY},
        "updated_at": {"S": "2026-11-26T07:06:40.250000Z"},
    }


def test_the_watermark_only_moves_forward_and_going_back_is_a_quiet_no_op(marks):
    marks.advance(Symbol.parse("NSE:SBIN-EQ"), 2_000, "k2")
    assert marks.advance(Symbol.parse("NSE:SBIN-EQ"), 1_000, "k1") is False
    assert marks.advance(Symbol.parse("NSE:SBIN-EQ"), 2_000, "k-same") is False
    assert marks.get(Symbol.parse("NSE:SBIN-EQ")) == 2_000
    assert marks.advance(Symbol.parse("NSE:SBIN-EQ"), 2_060, "k3") is True
    assert marks.get(Symbol.parse("NSE:SBIN-EQ")) == 2_060


def test_symbols_are_independent_and_keyed_by_the_full_symbol(marks):
    marks.advance(Symbol.parse("NSE:SBIN-EQ"), 5, "k")
    assert marks.get(Symbol.parse("BSE:SBIN-A")) is None
    assert watermark_pk(Symbol.parse("NSE:M&M-EQ")) == "watermark#NSE:M&M-EQ"


def test_a_malformed_symbol_is_refused_before_any_call(marks):
    with pytest.raises(InvalidInput, match="SBIN-EQ"):
        marks.get(Symbol.parse("SBIN-EQ"))
