"""The local mirror of a stack's lake that `query --live` and `report --live` read."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from pricefeed.ops.mirror import DOWNLOADERS, download_all, sync

RAW, PROCESSED = "raw-bucket", "processed-bucket"


@pytest.fixture
def s3(mocked_aws):
    client = boto3.client("s3", region_name=mocked_aws)
    for bucket in (RAW, PROCESSED):
        client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": mocked_aws})
    return client


def _sync(s3, directory):
    return sync(s3, raw_bucket=RAW, processed_bucket=PROCESSED, directory=directory)


def test_only_changed_objects_are_fetched_and_vanished_ones_removed(s3, tmp_path):
    s3.put_object(Bucket=PROCESSED, Key="processed/timeframe=1m/a.parquet", Body=b"one")
    s3.put_object(Bucket=PROCESSED, Key="processed/timeframe=5m/b.parquet", Body=b"two")
    s3.put_object(Bucket=RAW, Key="ohlcv/errors/symbol=X/failed-1.json", Body=b"{}")
    s3.put_object(Bucket=RAW, Key="ohlcv/NSE/SBIN-EQ/raw.json", Body=b"not mirrored")

    assert _sync(s3, tmp_path) == {"downloaded": 3, "removed": 0, "unchanged": 0}
    assert (tmp_path / "processed/processed/timeframe=1m/a.parquet").read_bytes() == b"one"
    assert (tmp_path / "raw/ohlcv/errors/symbol=X/failed-1.json").exists()
    assert not (tmp_path / "raw/ohlcv/NSE").exists()  # raw answers are not needed by query or report

    s3.put_object(Bucket=PROCESSED, Key="processed/timeframe=1m/a.parquet", Body=b"one, rewritten")
    s3.delete_object(Bucket=PROCESSED, Key="processed/timeframe=5m/b.parquet")
    assert _sync(s3, tmp_path) == {"downloaded": 1, "removed": 1, "unchanged": 1}
    assert (tmp_path / "processed/processed/timeframe=1m/a.parquet").read_bytes() == b"one, rewritten"
    assert not (tmp_path / "processed/processed/timeframe=5m/b.parquet").exists()
    assert not list(tmp_path.rglob("*.partial"))


def test_a_key_that_would_leave_the_mirror_is_never_written(s3, tmp_path):
    s3.put_object(Bucket=PROCESSED, Key="processed/../../../escape.txt", Body=b"x")
    mirror = tmp_path / "mirror"
    assert _sync(s3, mirror)["downloaded"] == 0
    assert not (tmp_path / "escape.txt").exists()


def test_a_folder_made_in_the_s3_console_does_not_block_the_files_under_it(s3, tmp_path):
    s3.put_object(Bucket=PROCESSED, Key="processed/timeframe=1m/", Body=b"")
    s3.put_object(Bucket=PROCESSED, Key="processed/timeframe=1m/a.parquet", Body=b"one")

    assert _sync(s3, tmp_path) == {"downloaded": 1, "removed": 0, "unchanged": 0}
    assert (tmp_path / "processed/processed/timeframe=1m/a.parquet").read_bytes() == b"one"


def test_a_file_deleted_locally_is_fetched_again(s3, tmp_path):
    s3.put_object(Bucket=PROCESSED, Key="processed/timeframe=1m/a.parquet", Body=b"one")
    _sync(s3, tmp_path)
    (tmp_path / "processed/processed/timeframe=1m/a.parquet").unlink()
    assert _sync(s3, tmp_path)["downloaded"] == 1


def test_a_lake_larger_than_the_download_window_arrives_whole(s3, tmp_path):
    keys = [f"processed/timeframe=1m/day={i:03d}/part.parquet" for i in range(10 * DOWNLOADERS)]
    for i, key in enumerate(keys):
        s3.put_object(Bucket=PROCESSED, Key=key, Body=f"file {i}".encode() * 1000)

    assert _sync(s3, tmp_path) == {"downloaded": len(keys), "removed": 0, "unchanged": 0}
    for i, key in enumerate(keys):
        assert (tmp_path / "processed" / key).read_bytes() == f"file {i}".encode() * 1000
    assert _sync(s3, tmp_path) == {"downloaded": 0, "removed": 0, "unchanged": len(keys)}


def test_a_failed_download_is_raised_and_leaves_no_partial_file(s3, tmp_path):
    s3.put_object(Bucket=PROCESSED, Key="a", Body=b"one")
    jobs = [(PROCESSED, "a", tmp_path / "a"), (PROCESSED, "gone", tmp_path / "gone")]

    with pytest.raises(ClientError, match="NoSuchKey"):
        list(download_all(s3, jobs))

    assert not (tmp_path / "gone").exists() and not list(tmp_path.rglob("*.partial"))


def test_every_table_the_query_and_the_report_read_is_mirrored(s3, tmp_path):
    tables = ("processed/timeframe=1d/x.parquet", "coverage/exchange=NSE/x.parquet",
              "bars_monthly/timeframe=1d/x.parquet", "coverage_monthly/exchange=NSE/x.parquet")
    for key in tables:
        s3.put_object(Bucket=PROCESSED, Key=key, Body=b"table")
    s3.put_object(Bucket=PROCESSED, Key="scratch/other.txt", Body=b"not a table")

    assert _sync(s3, tmp_path)["downloaded"] == len(tables)
    assert all((tmp_path / "processed" / key).read_bytes() == b"table" for key in tables)
