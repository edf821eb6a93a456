"""e2e-only fixtures: the fault matrix's tally, printed as one line at the end of the pytest run."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest


@dataclass
class FaultMatrixTally:
    """What the fault-matrix rows counted (``tests/e2e/test_fault_matrix.py``): one entry per row that ran,
    each with the planned symbol-days of its faulted run(s) and how they ended."""

    rows: dict[str, dict[str, int]] = field(default_factory=dict)

    def ran(self, row: str) -> None:
        """The row started (it counts as a fault even if it fails before counting a run)."""
        self.rows.setdefault(row, {"planned": 0, "stored": 0, "dead_lettered": 0, "lost": 0})

    def add(self, row: str, *, planned: int, stored: int, dead_lettered: int, lost: int) -> None:
        self.ran(row)
        counts = self.rows[row]
        for name, value in (("planned", planned), ("stored", stored), ("dead_lettered", dead_lettered), ("lost", lost)):
            counts[name] += value

    def line(self) -> str:
        total = {k: sum(r[k] for r in self.rows.values()) for k in ("planned", "stored", "dead_lettered", "lost")}
        return (
            f"fault-matrix: faults={len(self.rows)} planned={total['planned']} stored={total['stored']} "
            f"dead-lettered={total['dead_lettered']} lost={total['lost']}"
        )


_TALLY = pytest.StashKey[FaultMatrixTally]()


@pytest.fixture(scope="session")
def fault_matrix(request) -> FaultMatrixTally:
    """The session's fault-matrix tally (rows add their counts; the summary line reads them)."""
    return request.config.stash.setdefault(_TALLY, FaultMatrixTally())


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    tally = config.stash.get(_TALLY, None)
    if tally is not None and tally.rows:  # only when matrix rows ran
        terminalreporter.write_line(tally.line())
