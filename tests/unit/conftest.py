"""Unit-test fixtures: patched moto with real ASL execution (see aslkit for the helpers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aslkit import REGION
from moto import mock_aws

from pricefeed.local import motopatch
from pricefeed.local.motopatch import glue_runs


@pytest.fixture
def aws(monkeypatch) -> Iterator[None]:
    """Patched moto with real ASL execution; motopatch's registries are restored afterwards."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    saved_lambdas = dict(motopatch._lambda_invokers)
    saved_glue = dict(glue_runs._runners)
    saved_scale = motopatch._retry_scale[0]
    motopatch.apply(retry_time_scale=0.0)
    try:
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
            yield
    finally:
        motopatch._lambda_invokers.clear()
        motopatch._lambda_invokers.update(saved_lambdas)
        glue_runs._runners.clear()
        glue_runs._runners.update(saved_glue)
        motopatch._retry_scale[0] = saved_scale
