"""Integration-test fixtures shared by several files."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from matrixkit import MatrixTally, tally
from pricefeed.local.template import load_template, package, translate

REGION = "ap-south-1"


@pytest.fixture(scope="session")
def translated() -> dict:
    """template.yaml as CloudFormation, translated by the SAM translator exactly as the local stack does."""
    with pytest.MonkeyPatch.context() as env, mock_aws():
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
            env.setenv(name, value)
        env.setenv("AWS_DEFAULT_REGION", REGION)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="artifacts", CreateBucketConfiguration={"LocationConstraint": REGION})
        packaged = package(load_template(), s3=s3, bucket="artifacts")
        return translate(packaged, {}, region=REGION).cfn


@pytest.fixture(scope="session")
def watermark_matrix(request) -> MatrixTally:
    """What the in-process scheduled-path matrix counted (``test_watermark_matrix.py``: the ingest and the job
    without the state machine; the e2e matrix is ``watermark-matrix``): one row per scenario."""
    counts = ("planned", "stored", "asked_empty", "dead_lettered", "lost")
    return tally(request.config, "watermark-matrix-in-process", "scenarios", counts)
