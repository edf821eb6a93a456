"""Shared fixtures: the Fyers simulator and the local stack with template.yaml deployed, logged in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Pipeline:
    stack: object
    sim: object
    workdir: Path
    map_concurrency: int  # the stack's MapConcurrency parameter


@pytest.fixture
def mocked_aws(monkeypatch) -> Iterator[str]:
    """In-process moto with fake credentials; yields the region. (Not for use with ``pipeline``:
    mock_aws resets moto's global backends.)"""
    from moto import mock_aws

    from pricefeed.local import motopatch

    motopatch.speed_up()  # moto's per-request overheads only: no behaviour changes
    motopatch.make_faithful()  # where moto answers unlike AWS
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield "ap-south-1"


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory) -> Iterator[Pipeline]:
    """One local stack for the e2e tests (deploying takes ~3 s); tests use distinct trading dates."""
    from pricefeed.local.run import app_config, free_port, fyers_parameters, login
    from pricefeed.local.stack import LocalStack
    from pricefeed.simulator import SimulatorConfig, SimulatorServer

    workdir = tmp_path_factory.mktemp("stack")
    map_concurrency = 40  # as a large list runs on AWS (the template's default is 10): the storm row needs it
    api_port = free_port()
    config = app_config(f"http://127.0.0.1:{api_port}/oauth/callback", environ={})
    sim_cfg = SimulatorConfig(
        app_id=config["app_id"], secret_key=config["secret_key"], pin=config["pin"], redirect_uri=config["redirect_uri"]
    )
    with SimulatorServer(sim_cfg, port=0) as sim:
        with LocalStack.start(
            parameters=dict(fyers_parameters(sim.url), MapConcurrency=str(map_concurrency)),
            api_port=api_port,
            workdir=workdir,
            retry_time_scale=0.0,
        ) as stack:
            stack.client("secretsmanager").put_secret_value(
                SecretId=stack.outputs["AppConfigSecretArn"], SecretString=json.dumps(config)
            )
            login(stack)
            yield Pipeline(stack, sim, workdir, map_concurrency)


#: Where tests leave files a person may want to look at (screenshots, reports); CI keeps the folder.
ARTIFACTS = ROOT / "test-artifacts"

@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Debian Chromium driven by Playwright (a fresh profile per launch), found and started as
    `pricefeed report --png` does. `make test` installs Chromium and sets PRICEFEED_CHROMIUM.

    Module-scoped on purpose: while Playwright's sync API is open, an asyncio loop runs in this thread and
    every later ``asyncio.run`` in the tests would fail."""
    from playwright.sync_api import sync_playwright

    from pricefeed.ops.report.browser import CHROMIUM_ARGS, BrowserNotFound, find_chromium

    try:
        executable = find_chromium()  # the one `pricefeed report --png` uses
    except BrowserNotFound as exc:
        pytest.fail(f"{exc} (make test installs Debian's package)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def pytest_collection_modifyitems(config, items) -> None:
    """The session `pipeline` stack lives in moto's process-wide backends, which every in-process `mock_aws`
    test resets; e2e runs first, so only e2e tests may use it (elsewhere they fail far from the cause)."""
    misplaced = [
        item.nodeid
        for item in items
        if "pipeline" in getattr(item, "fixturenames", ()) and not item.nodeid.startswith("tests/e2e/")
    ]
    if misplaced:
        raise pytest.UsageError(f"only tests/e2e may use the `pipeline` fixture: {', '.join(misplaced[:5])}")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """One line per test matrix that ran (``matrixkit``)."""
    from matrixkit import TALLIES

    for matrix in config.stash.get(TALLIES, {}).values():
        if matrix.rows:
            terminalreporter.write_line(matrix.line())
