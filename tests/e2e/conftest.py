"""e2e-only fixtures: the fault matrix's tally (printed as one line at the end of the run by tests/conftest.py)."""

from __future__ import annotations

import pytest

from matrixkit import MatrixTally, tally


@pytest.fixture(scope="session")
def fault_matrix(request) -> MatrixTally:
    """What the fault-matrix rows counted (``tests/e2e/test_fault_matrix.py``): one row per fault that ran, with the
    planned symbol-days of its faulted run(s) and how they ended."""
    return tally(request.config, "fault-matrix", "faults", ("planned", "stored", "dead_lettered", "lost"))
