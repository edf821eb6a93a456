"""What a symbol has settled, and what is still open: the rule that decides what each run asks Fyers.

A symbol's state (:class:`Settled`) is a frontier and a short list of open stretches:

- ``through``: every minute up to this second was asked, except the open stretches. ``None`` before the
  symbol's first answer.
- ``open``: stretches the frontier has passed that are not settled yet, oldest first, each a
  :class:`Stretch` of kind
  - ``hole``: never asked (a run for later dates jumped over them, or a catch-up longer than one run asks);
  - ``empty``: asked once and answered without a candle where the market may have traded. Fyers' candles
    are trade-based and sparse, so an empty stretch may be real (a quiet symbol, an unlisted one, a
    holiday the Lambda cannot tell from a weekday), or it may be an outage answering ``no_data``, an
    answer cut mid-session, or minutes published late. It is asked once more by a run at least
    ``RECHECK_S`` after the first: still empty, it is accepted; with candles, they are stored.

A minute is settled when an answer that covered it was fetched at least ``SETTLE_S`` after it closed and
answered OK with a candle at or after it (gaps between an answer's candles are trades that did not happen),
or when it was answered empty twice, ``RECHECK_S`` apart. Only minutes that may be in a session count
(:func:`pricefeed.session_hours.may_trade`: weekdays 09:15-15:30 IST and the known special sessions on NSE/BSE,
any weekday minute on other exchanges): a stretch without one is settled as soon as it is asked.

No run moves a symbol past a minute that is not settled: a run asking later dates than the frontier leaves a
``hole`` behind it, an answer's empty tail stays ``empty`` until its second ask, and minutes fetched too soon
after they closed stay beyond the frontier. A scheduled run asks every open stretch and everything after the
frontier (:func:`ranges_to_ask`), so any lapse is caught up by the next good run.

Pure: no I/O. :mod:`pricefeed.ingest.watermark` keeps the state in the state table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from pricefeed.errors import InvalidInput
from pricefeed.session_hours import floor_minute, may_trade

#: An answer settles only minutes that closed at least this long before it was fetched.
SETTLE_S = 120
#: An empty stretch is accepted when a second answer, fetched at least this long after the first, is empty too.
RECHECK_S = 6 * 3600
#: Open stretches kept per symbol; beyond this the two closest are merged (asking more, never less).
MAX_OPEN = 100
KINDS = ("hole", "empty")


@dataclass(frozen=True, order=True)
class Stretch:
    """Seconds ``first``..``last`` (inclusive, whole minutes) not settled; ``seen_at``: when an ``empty``
    stretch was first answered empty (epoch seconds), ``None`` for a ``hole``."""

    first: int
    last: int
    kind: str
    seen_at: float | None = None

    def to_json(self) -> list:
        return [self.first, self.last, self.kind, self.seen_at]

    @classmethod
    def from_json(cls, value: object) -> Stretch:
        if not (isinstance(value, list) and len(value) == 4 and value[2] in KINDS):
            raise InvalidInput(f"open stretch {value!r} is not [first, last, kind, seen_at]")
        first, last, kind, seen_at = value
        return cls(int(first), int(last), kind, None if seen_at is None else float(seen_at))


@dataclass(frozen=True)
class Settled:
    """A symbol's frontier and open stretches (see the module docstring)."""

    through: int | None = None
    open: tuple[Stretch, ...] = ()

    def open_json(self) -> str:
        return json.dumps([s.to_json() for s in self.open], separators=(",", ":"))

    @classmethod
    def from_item(cls, through: int | None, open_json: str | None) -> Settled:
        stretches = json.loads(open_json) if open_json else []
        return cls(through, tuple(Stretch.from_json(s) for s in stretches))

    def describe(self) -> dict:
        """What a run's summary says about the symbol's open stretches."""
        holes = [s for s in self.open if s.kind == "hole"]
        return {
            "open_stretches": len(self.open),
            "holes": len(holes),
            "empty_awaiting_recheck": len(self.open) - len(holes),
        }


@dataclass(frozen=True)
class Answered:
    """What the rule needs of one stored answer: its range, when it was fetched, its newest ended candle."""

    range_from: int
    range_to: int
    fetched_at: float
    newest: int | None  # start of the newest candle that had ended by the fetch, None when there was none


# --- what to ask ---------------------------------------------------------------------------------------
def ranges_to_ask(state: Settled, *, start: int, end: int) -> list[tuple[int, int]]:
    """A scheduled run's ranges, oldest first: every open stretch ending at or before ``end``, then from the
    frontier (``start`` when there is none: the run's first day) to ``end`` (the last ended minute)."""
    ranges = [(s.first, min(s.last, end)) for s in state.open if s.first <= end]
    frontier = start if state.through is None else state.through + 1
    if frontier <= end:
        ranges.append((frontier, end))
    return _merge(ranges)


# --- the rule ------------------------------------------------------------------------------------------
def settle(state: Settled, answers: Sequence[Answered], exchange: str) -> Settled:
    """The state after ``answers`` (one run's, any order; OK or ``no_data`` answers only)."""
    if not answers:
        return state
    settled: list[tuple[int, int]] = []  # seconds answered with a candle at or after them, closed in time
    empties: list[tuple[int, int, float]] = []  # session stretches answered without a candle, and when
    asked_in_time: list[tuple[int, int]] = []
    for a in answers:
        horizon = min(a.range_to, floor_minute(a.fetched_at - SETTLE_S) - 1)
        if horizon < a.range_to and may_trade(max(horizon + 1, a.range_from), a.range_to, exchange) is None:
            horizon = a.range_to  # what was asked too soon holds no minute that may trade (after the close)
        if horizon < a.range_from:
            continue  # asked too soon after these minutes closed: nothing settles
        asked_in_time.append((a.range_from, horizon))
        tail_from = a.range_from if a.newest is None else min(a.newest + 60, horizon + 1)
        if tail_from > a.range_from:
            settled.append((a.range_from, tail_from - 1))
        tail = may_trade(tail_from, horizon, exchange)
        if tail is None:
            if tail_from <= horizon:
                settled.append((tail_from, horizon))
        else:
            if tail[0] > tail_from:
                settled.append((tail_from, tail[0] - 1))
            empties.append((tail[0], tail[1], a.fetched_at))
            if tail[1] < horizon:
                settled.append((tail[1] + 1, horizon))
    if not asked_in_time:
        return state
    asked = _merge(asked_in_time)
    newest = max(hi for _, hi in asked)
    through = state.through
    opened: list[Stretch] = list(state.open)
    if through is None:
        through = min(lo for lo, _ in asked) - 1
    if newest > through:
        # minutes the frontier passes that this run did not ask (in time) are holes
        for lo, hi in _subtract([(through + 1, newest)], asked):
            bounds = may_trade(lo, hi, exchange)
            if bounds:
                opened.append(Stretch(bounds[0], bounds[1], "hole"))
        # minutes the frontier passes that this run asked are settled or empty below; none was open yet
        through = newest
    opened = _take_out(opened, _merge(settled))
    for lo, hi, fetched_at in empties:
        opened = _answered_empty(opened, lo, hi, fetched_at, state.through)
    return Settled(through, _bounded(sorted(opened)))


def _answered_empty(
    opened: list[Stretch], lo: int, hi: int, fetched_at: float, old_through: int | None
) -> list[Stretch]:
    """Apply one empty answer over ``lo..hi``: an ``empty`` stretch seen ``RECHECK_S`` earlier is accepted,
    a younger one keeps its first sighting, a ``hole`` becomes ``empty``, and minutes beyond the old frontier
    become ``empty``. Minutes already settled stay settled (a later empty answer does not undo stored candles)."""
    result: list[Stretch] = []
    for s in opened:
        overlap = (max(s.first, lo), min(s.last, hi))
        if overlap[0] > overlap[1]:
            result.append(s)
            continue
        result.extend(replace(s, first=a, last=b) for a, b in _subtract([(s.first, s.last)], [overlap]))
        if s.kind == "hole":
            result.append(Stretch(*overlap, "empty", fetched_at))
        elif s.seen_at is not None and fetched_at - s.seen_at < RECHECK_S:
            result.append(replace(s, first=overlap[0], last=overlap[1]))
        # else: asked empty twice, RECHECK_S apart: accepted (settled)
    beyond = lo if old_through is None else max(lo, old_through + 1)
    if beyond <= hi:
        covered = [(s.first, s.last) for s in opened]
        result.extend(Stretch(a, b, "empty", fetched_at) for a, b in _subtract([(beyond, hi)], covered))
    return result


def _take_out(opened: list[Stretch], spans: list[tuple[int, int]]) -> list[Stretch]:
    result: list[Stretch] = []
    for s in opened:
        result.extend(replace(s, first=a, last=b) for a, b in _subtract([(s.first, s.last)], spans))
    return result


def _bounded(opened: list[Stretch]) -> tuple[Stretch, ...]:
    """At most ``MAX_OPEN`` stretches: the two with the smallest gap between them merge (a ``hole`` wins,
    the later sighting wins), which only makes later runs ask more."""
    opened = list(opened)
    while len(opened) > MAX_OPEN:
        i = min(range(len(opened) - 1), key=lambda j: opened[j + 1].first - opened[j].last)
        a, b = opened[i], opened[i + 1]
        kind = "hole" if "hole" in (a.kind, b.kind) else "empty"
        seen = None if kind == "hole" else max(a.seen_at or 0.0, b.seen_at or 0.0)
        opened[i : i + 2] = [Stretch(a.first, max(a.last, b.last), kind, seen)]
    return tuple(opened)


# --- interval arithmetic on inclusive second ranges -------------------------------------------------------
def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _subtract(spans: Iterable[tuple[int, int]], away: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    away = _merge(away)
    result: list[tuple[int, int]] = []
    for lo, hi in _merge(spans):
        for a, b in away:
            if b < lo or a > hi:
                continue
            if a > lo:
                result.append((lo, a - 1))
            lo = max(lo, b + 1)
            if lo > hi:
                break
        if lo <= hi:
            result.append((lo, hi))
    return result
