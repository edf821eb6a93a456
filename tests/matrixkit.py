"""A test matrix's tally: rows (faults, scenarios) that ran and what they counted, printed as one line at the end of
the pytest run by ``tests/conftest.py``, e.g. ``fault-matrix: faults=14 planned=49 stored=35 ... lost=0``."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest


@dataclass
class MatrixTally:
    """``label``: the line's name; ``rows_are``: what a row is called; ``counts``: the counted quantities, in the
    order the line prints them (``_`` printed as ``-``)."""

    label: str
    rows_are: str
    counts: tuple[str, ...]
    rows: dict[str, dict[str, int]] = field(default_factory=dict)

    def ran(self, row: str) -> None:
        """The row started (it counts as one even if it fails before counting anything)."""
        self.rows.setdefault(row, dict.fromkeys(self.counts, 0))

    def add(self, row: str, **counted: int) -> None:
        unknown = set(counted) - set(self.counts)
        if unknown:
            raise ValueError(f"{self.label} counts {self.counts}, not {sorted(unknown)}")
        self.ran(row)
        for name, value in counted.items():
            self.rows[row][name] += value

    def add_rows(self, counted: dict[str, dict[str, int]], rows: dict[str, str], ran: tuple[str, ...] = ()) -> dict:
        """Add each row's counts (``rows``: row name -> its key in ``counted``) and mark the rows of ``ran`` (those
        that count nothing of their own); returns the counts summed over ``counted``."""
        for row, key in rows.items():
            self.add(row, **counted[key])
        for row in ran:
            self.ran(row)
        return {name: sum(c[name] for c in counted.values()) for name in self.counts}

    def line(self) -> str:
        totals = " ".join(f"{n.replace('_', '-')}={sum(r[n] for r in self.rows.values())}" for n in self.counts)
        return f"{self.label}: {self.rows_are}={len(self.rows)} {totals}"


TALLIES = pytest.StashKey[dict[str, MatrixTally]]()


def tally(config: pytest.Config, label: str, rows_are: str, counts: tuple[str, ...]) -> MatrixTally:
    """The session's tally called ``label`` (made on first use)."""
    tallies = config.stash.setdefault(TALLIES, {})
    return tallies.setdefault(label, MatrixTally(label, rows_are, counts))
