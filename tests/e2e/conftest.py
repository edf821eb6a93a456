"""e2e-only fixtures: the fault matrix's, the scheduled-path matrix's and the login matrix's tallies (each printed
as one line at the end of the run by tests/conftest.py)."""

from __future__ import annotations

import pytest

from matrixkit import MatrixTally, tally


@pytest.fixture(scope="session")
def fault_matrix(request) -> MatrixTally:
    """What the fault-matrix rows counted (``tests/e2e/test_fault_matrix.py``): one row per fault that ran, with the
    planned symbol-days of its faulted run(s) and how they ended."""
    return tally(request.config, "fault-matrix", "faults", ("planned", "stored", "dead_lettered", "lost"))


@pytest.fixture(scope="session")
def watermark_matrix(request) -> MatrixTally:
    """What the scheduled-path matrix through the state machine counted (``test_watermark_week.py``): one row per
    scenario."""
    counts = ("planned", "stored", "asked_empty", "dead_lettered", "lost")
    return tally(request.config, "watermark-matrix", "scenarios", counts)


@pytest.fixture(scope="session")
def login_matrix(request) -> MatrixTally:
    """What the daily-login scenarios counted (``test_login_day.py``): one row per scenario."""
    return tally(request.config, "login-matrix", "scenarios", ("runs_waited", "resumed", "dead_lettered_for_login"))
