"""Integration-test fixtures shared by several files."""

from __future__ import annotations

from dataclasses import dataclass, field

import boto3
import pytest
from moto import mock_aws

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


@dataclass
class WatermarkMatrixTally:
    """What the scheduled-path matrix counted (``test_watermark_matrix.py``), printed as one line at the end."""

    scenarios: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, scenarios: int, counts: dict[str, int]) -> None:
        self.scenarios += scenarios
        for name, value in counts.items():
            self.counts[name] = self.counts.get(name, 0) + value

    def line(self) -> str:
        c = self.counts
        return (
            f"watermark-matrix: scenarios={self.scenarios} planned={c.get('planned', 0)} stored={c.get('stored', 0)} "
            f"asked-empty={c.get('asked_empty', 0)} dead-lettered={c.get('dead_lettered', 0)} lost={c.get('lost', 0)}"
        )


_WATERMARK_TALLY = pytest.StashKey[WatermarkMatrixTally]()


@pytest.fixture(scope="session")
def watermark_matrix(request) -> WatermarkMatrixTally:
    return request.config.stash.setdefault(_WATERMARK_TALLY, WatermarkMatrixTally())


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    tally = config.stash.get(_WATERMARK_TALLY, None)
    if tally is not None and tally.scenarios:
        terminalreporter.write_line(tally.line())
