"""The exclusion rules of 1-minute candles, in the order they are checked (see ``pricefeed.aggregate.candles``):
every candle of an answer is either kept or excluded under exactly one reason of :data:`EXCLUSION_REASONS`, and the
excluded ones are :class:`Held` for the quarantine table (``pricefeed.aggregate.quarantine``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXCLUSION_REASONS = (
    "malformed_row",
    "bad_ts",
    "non_positive_price",
    "high_below_open",
    "invalid_ohlc",
    "volume_sentinel",
    "bad_volume",
    "muhurat_late",
    "out_of_session",
    "forming",
    "duplicate",
    "superseded",
)

#: How late Fyers has stamped a Muhurat session's candles (``pricefeed.session_hours.SPECIAL_STAMPED_LATE``).
STAMPED_LATE_S = 15 * 60
#: A minute volume this large is a sentinel, not trades (Fyers served 429496726000 on ~3,200 symbol-days).
VOLUME_SENTINEL = 2**32 - 1


@dataclass(frozen=True, eq=False)
class Held:
    """An envelope-day's excluded candles: ``values`` (k, 7) float64 as Fyers sent them (OI NaN when none),
    ``rules`` their reasons (indexes into :data:`EXCLUSION_REASONS`), and ``unreadable`` the JSON text of each
    row that was not 6 or 7 numbers (``malformed_row``)."""

    values: np.ndarray
    rules: np.ndarray
    unreadable: tuple[str, ...] = ()


def validate(
    m: np.ndarray,
    sessions: tuple[tuple[int, int], ...],
    ended_by_us: int,
    excluded: dict[str, int],
    special: tuple[tuple[int, int], ...] = (),
) -> tuple:
    """Apply the exclusion rules in order, count them, and dedupe (later copy wins); last, the :class:`Held`
    candles (every excluded one but the duplicates, which are the same minute again)."""
    keep = np.ones(m.shape[0], dtype=bool)
    rule_of = np.full(m.shape[0], -1, dtype=np.int8)
    original = m
    oi = m[:, 6]
    m = m[:, :6]
    _exclude(keep, np.isfinite(m).all(axis=1), "malformed_row", excluded, rule_of)
    m = np.where(keep[:, None], m, 0.0)  # neutral values so the later tests see no NaN/inf
    ts_f, o, h, lo, c, v = m.T
    # Open interest is kept only as a whole non-negative count; anything else reads as "none" (the candle stays)
    oi = np.where(np.isfinite(oi) & (oi >= 0) & (oi == np.floor(oi)) & (oi < 2.0**62), oi, np.nan)
    ts_ok = (ts_f == np.floor(ts_f)) & (ts_f > 0) & (ts_f < 2.0**62) & (ts_f % 60 == 0)
    _exclude(keep, ts_ok, "bad_ts", excluded, rule_of)
    _exclude(keep, (o > 0) & (h > 0) & (lo > 0) & (c > 0), "non_positive_price", excluded, rule_of)
    _exclude(keep, h >= o, "high_below_open", excluded, rule_of)
    ohlc_ok = (h >= np.maximum(o, c)) & (lo <= np.minimum(o, c)) & (lo <= h)
    _exclude(keep, ohlc_ok, "invalid_ohlc", excluded, rule_of)
    _exclude(keep, v < VOLUME_SENTINEL, "volume_sentinel", excluded, rule_of)
    _exclude(keep, (v >= 0) & (v == np.floor(v)) & (v < 2.0**63), "bad_volume", excluded, rule_of)
    ts = np.where(keep, ts_f, 0).astype(np.int64)
    late = np.zeros(len(ts), dtype=bool)
    for opens, closes in special:  # a Muhurat session with candles after its close and none in its first quarter
        after = (keep & (ts >= closes) & (ts < closes + STAMPED_LATE_S)).any()  # hour came stamped late: every
        first = (keep & (ts >= opens) & (ts < opens + STAMPED_LATE_S)).any()  # stamp is off, none is moved back
        if after and not first:
            late |= (ts >= opens) & (ts < closes + STAMPED_LATE_S)
    _exclude(keep, ~late, "muhurat_late", excluded, rule_of)
    in_session = np.zeros(len(ts), dtype=bool)
    for opens, closes in sessions:  # empty on a holiday: every candle is out of session
        in_session |= (ts >= opens) & (ts < closes)
    _exclude(keep, in_session, "out_of_session", excluded, rule_of)
    _exclude(keep, (ts + 60) * 1_000_000 <= ended_by_us, "forming", excluded, rule_of)

    rows = np.flatnonzero(keep)
    # np.unique on the reversed order returns each minute's *last* copy, sorted by minute.
    _, first_in_reversed = np.unique(ts[rows][::-1], return_index=True)
    rows = rows[len(rows) - 1 - first_in_reversed]
    excluded["duplicate"] += int(keep.sum() - len(rows))
    held = np.flatnonzero(rule_of >= 0)
    return ts[rows], o[rows], h[rows], lo[rows], c[rows], v[rows].astype(np.int64), oi[rows], Held(
        original[held], rule_of[held]
    )


def _exclude(keep: np.ndarray, ok: np.ndarray, reason: str, excluded: dict[str, int], rule_of: np.ndarray) -> None:
    """Count rows still kept that fail ``ok`` under ``reason``, note the reason, stop keeping them (in place)."""
    failing = keep & ~ok
    excluded[reason] += int(failing.sum())
    rule_of[failing] = EXCLUSION_REASONS.index(reason)
    keep &= ok
