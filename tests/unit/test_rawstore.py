"""The run-wide envelope cache: one S3 read per envelope, however many days and threads ask for it."""

import io
import threading
from collections import Counter
from datetime import UTC, date, datetime

import orjson
import pytest

from pricefeed.aggregate.candles import Envelope
from pricefeed.aggregate.raw_reader import EnvelopeCache
from pricefeed.errors import InvalidInput
from pricefeed.lake.envelope import RawReference, build_envelope, build_reference

FETCHED = datetime(2025, 11, 27, 12, tzinfo=UTC)
ENV_KEY = "ohlcv/raw/symbol=SBIN-EQ/exchange=NSE/year=2025/month=11/day=25/ingest-a.json"
REF_KEY = "ohlcv/raw/symbol=SBIN-EQ/exchange=NSE/year=2025/month=11/day=26/ingest-a.json"


class FakeS3:
    """get_object over a dict, counting reads; ``release`` (if given) holds every read until it is set."""

    class exceptions:
        class NoSuchKey(Exception):
            pass

    def __init__(self, objects: dict[str, bytes], release: threading.Event | None = None):
        self.objects, self.release = objects, release
        self.gets: Counter = Counter()
        self.entered = threading.Event()

    def get_object(self, Bucket, Key):
        self.gets[Key] += 1
        self.entered.set()
        if self.release is not None:
            self.release.wait()
        if Key not in self.objects:
            raise self.exceptions.NoSuchKey(Key)
        return {"Body": io.BytesIO(self.objects[Key])}


def envelope_bytes(day: date = date(2025, 11, 25)) -> bytes:
    return build_envelope(
        symbol="NSE:SBIN-EQ",
        resolution="1",
        range_from=1_764_009_000,
        range_to=1_764_009_000 + 3 * 86_400 - 1,
        trading_date=day,
        last_trading_date=date(2025, 11, 27),
        fetched_at=FETCHED,
        http_status=200,
        body=orjson.dumps({"s": "no_data"}),
    )


def reference_bytes() -> bytes:
    return build_reference(
        envelope_key=ENV_KEY,
        symbol="NSE:SBIN-EQ",
        trading_date=date(2025, 11, 26),
        range_from=1_764_009_000,
        range_to=1_764_009_000 + 3 * 86_400 - 1,
        fetched_at=FETCHED,
    )


def test_threads_asking_for_one_envelope_at_once_share_a_single_read():
    release = threading.Event()
    s3 = FakeS3({ENV_KEY: envelope_bytes()}, release)
    cache = EnvelopeCache(s3, "raw")
    asked = threading.Semaphore(0)
    results: list = []

    def worker():
        asked.release()
        results.append(cache.get(ENV_KEY))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for _ in threads:
        asked.acquire()  # every worker is asking before the first read is allowed to finish
    s3.entered.wait()
    release.set()
    for t in threads:
        t.join()

    assert s3.gets == {ENV_KEY: 1} and cache.reads == 1
    assert len(results) == 8 and all(r is results[0] for r in results) and isinstance(results[0], Envelope)


def test_the_least_recently_used_envelope_is_dropped_beyond_capacity():
    other = ENV_KEY.replace("ingest-a", "ingest-b")
    s3 = FakeS3({ENV_KEY: envelope_bytes(), other: envelope_bytes()})
    cache = EnvelopeCache(s3, "raw", capacity=1)
    cache.get(ENV_KEY)
    cache.get(ENV_KEY)
    cache.get(other)
    cache.get(ENV_KEY)
    assert s3.gets == {ENV_KEY: 2, other: 1}


def test_references_are_returned_but_not_kept():
    s3 = FakeS3({REF_KEY: reference_bytes()})
    cache = EnvelopeCache(s3, "raw")
    assert isinstance(cache.get(REF_KEY), RawReference)
    cache.get(REF_KEY)
    assert s3.gets == {REF_KEY: 2}


def test_a_missing_object_is_an_invalid_input_naming_it_and_is_not_remembered():
    s3 = FakeS3({})
    cache = EnvelopeCache(s3, "raw")
    for _ in range(2):
        with pytest.raises(InvalidInput, match=f"s3://raw/{ENV_KEY} does not exist"):
            cache.get(ENV_KEY)
    assert s3.gets == {ENV_KEY: 2}


def test_capacity_must_be_positive():
    with pytest.raises(InvalidInput, match="capacity"):
        EnvelopeCache(FakeS3({}), "raw", capacity=0)
