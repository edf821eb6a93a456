"""The settle rule: what a symbol's answers settle, what stays open, and what the next scheduled run asks.

Times are IST wall-clock; the market of these tests trades every session minute (a liquid symbol), so any
minute of a session without a candle in an answer is Fyers' doing (an outage, a cut answer, a late
publication), never a quiet minute.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pricefeed.ingest.settled import (
    MAX_OPEN,
    RECHECK_S,
    SETTLE_S,
    Answered,
    Settled,
    Stretch,
    ranges_to_ask,
    settle,
)
from pricefeed.session_hours import may_trade

IST = ZoneInfo("Asia/Kolkata")


def ist(*args) -> int:
    return int(datetime(*args, tzinfo=IST).timestamp())


def answer(first: int, last: int, fetched: int, newest: int | None) -> Answered:
    return Answered(first, last, float(fetched), newest)


def day_answer(day: tuple, fetched: int, newest: int | None) -> Answered:
    """One request for a whole IST day (what a daily run after the close asks)."""
    return answer(ist(*day), ist(*day) + 86_399, fetched, newest)


THU, FRI, MON = (2026, 11, 26), (2026, 11, 27), (2026, 11, 30)


def test_a_full_day_fetched_after_the_close_settles_everything():
    state = settle(Settled(), [day_answer(THU, ist(*THU, 23, 59, 59) + 5, ist(*THU, 15, 29))], "NSE")
    assert state == Settled(ist(*FRI) - 1)


def test_minutes_fetched_within_the_settle_margin_of_their_close_are_asked_again():
    fetched = ist(*THU, 12, 0, 30)
    state = settle(Settled(), [answer(ist(*THU), ist(*THU, 11, 59, 59), fetched, ist(*THU, 11, 59))], "NSE")
    assert state == Settled(ist(*THU, 11, 58) - 1)  # 11:58 closed 90 s before the fetch: not settled
    assert ranges_to_ask(state, start=ist(*THU), end=ist(*THU, 15, 59, 59)) == [
        (ist(*THU, 11, 58), ist(*THU, 15, 59, 59))
    ]


def test_after_the_close_nothing_that_may_trade_is_left_to_settle_so_nothing_is_asked_twice():
    fetched = ist(*THU, 16, 0, 10)
    state = settle(Settled(), [answer(ist(*THU), ist(*THU, 15, 59, 59), fetched, ist(*THU, 15, 29))], "NSE")
    assert state == Settled(ist(*THU, 16) - 1)
    assert ranges_to_ask(state, start=ist(*THU), end=ist(*THU, 16, 0, 59)) == [(ist(*THU, 16), ist(*THU, 16, 0, 59))]


def test_minutes_published_late_are_not_skipped():
    # 11:00:30, Fyers three minutes behind: the newest candle is 10:56, so 10:57 (closed 150 s ago) is empty
    fetched = ist(*THU, 11, 0, 30)
    state = settle(Settled(), [answer(ist(*THU), ist(*THU, 10, 59, 59), fetched, ist(*THU, 10, 56))], "NSE")
    assert state.through == ist(*THU, 10, 58) - 1
    assert state.open == (Stretch(ist(*THU, 10, 57), ist(*THU, 10, 58) - 1, "empty", fetched),)
    asks = ranges_to_ask(state, start=ist(*THU), end=ist(*THU, 11, 4, 59))
    assert asks == [(ist(*THU, 10, 57), ist(*THU, 11, 4, 59))]  # the open minute and the frontier: one range
    later = ist(*THU, 11, 5, 30)
    state = settle(state, [answer(ist(*THU, 10, 57), ist(*THU, 11, 4, 59), later, ist(*THU, 11, 4))], "NSE")
    assert state == Settled(ist(*THU, 11, 3) - 1)  # 11:03 closed 90 s before the fetch


def test_an_answer_cut_mid_session_leaves_the_rest_of_the_session_open_until_it_comes():
    cut = settle(Settled(), [day_answer(THU, ist(*THU, 17), ist(*THU, 13, 59))], "NSE")
    assert cut.through == ist(*FRI) - 1  # the frontier passes the day...
    assert cut.open == (Stretch(ist(*THU, 14), ist(*THU, 15, 30) - 1, "empty", ist(*THU, 17)),)  # ...not its tail
    friday = ranges_to_ask(cut, start=ist(*FRI), end=ist(*FRI, 17) - 1)
    assert friday == [(ist(*THU, 14), ist(*THU, 15, 30) - 1), (ist(*FRI), ist(*FRI, 17) - 1)]
    whole = settle(
        cut,
        [
            answer(ist(*THU, 14), ist(*THU, 15, 30) - 1, ist(*FRI, 17), ist(*THU, 15, 29)),
            answer(ist(*FRI), ist(*FRI, 17) - 1, ist(*FRI, 17), ist(*FRI, 15, 29)),
        ],
        "NSE",
    )
    assert whole == Settled(ist(*FRI, 17) - 1)


def test_an_outage_answering_no_data_is_asked_again_and_accepted_empty_only_the_second_time_hours_later():
    outage = settle(Settled(ist(*THU) - 1), [day_answer(THU, ist(*THU, 17), None)], "NSE")
    session = Stretch(ist(*THU, 9, 15), ist(*THU, 15, 30) - 1, "empty", ist(*THU, 17))
    assert outage == Settled(ist(*FRI) - 1, (session,))
    # asked again ten minutes later: still empty, but too soon to be sure
    soon = settle(outage, [answer(session.first, session.last, ist(*THU, 17, 10), None)], "NSE")
    assert soon == outage
    # the next day it comes back with candles: stored and settled
    healed = settle(outage, [answer(session.first, session.last, ist(*FRI, 17), ist(*THU, 15, 29))], "NSE")
    assert healed == Settled(ist(*FRI) - 1)
    # or it is still empty the next day: a day without trades (a holiday the Lambda cannot know), accepted
    accepted = settle(outage, [answer(session.first, session.last, ist(*THU, 17) + RECHECK_S, None)], "NSE")
    assert accepted == Settled(ist(*FRI) - 1)


def test_a_run_for_later_dates_leaves_the_days_it_jumped_over_as_a_hole():
    # settled through Wednesday's close; the login lapsed; a run for Monday alone (e.g. a redrive)
    state = settle(Settled(ist(*THU) - 1), [day_answer(MON, ist(*MON, 17), ist(*MON, 15, 29))], "NSE")
    assert state.through == ist(2026, 12, 1) - 1
    assert state.open == (Stretch(ist(*THU, 9, 15), ist(*FRI, 15, 30) - 1, "hole"),)  # the weekend trades nothing
    asks = ranges_to_ask(state, start=ist(2026, 12, 1), end=ist(2026, 12, 1, 17) - 1)
    assert asks == [(ist(*THU, 9, 15), ist(*FRI, 15, 30) - 1), (ist(2026, 12, 1), ist(2026, 12, 1, 17) - 1)]
    # the next scheduled run asks both; the hole is stored and settled
    healed = settle(
        state,
        [answer(ist(*THU, 9, 15), ist(2026, 12, 1, 17) - 1, ist(2026, 12, 1, 17, 5), ist(2026, 12, 1, 15, 29))],
        "NSE",
    )
    assert healed == Settled(ist(2026, 12, 1, 17) - 1)


def test_a_hole_answered_empty_becomes_empty_and_needs_its_second_ask():
    hole = Settled(ist(*MON) - 1, (Stretch(ist(*THU, 9, 15), ist(*THU, 15, 30) - 1, "hole"),))
    state = settle(hole, [day_answer(THU, ist(*MON, 17), None)], "NSE")
    assert state.open == (Stretch(ist(*THU, 9, 15), ist(*THU, 15, 30) - 1, "empty", ist(*MON, 17)),)


def test_an_older_run_settles_open_stretches_it_covers_and_never_moves_the_frontier_back():
    state = Settled(ist(*MON) - 1, (Stretch(ist(*THU, 14), ist(*THU, 15, 30) - 1, "empty", ist(*THU, 17)),))
    healed = settle(state, [day_answer(THU, ist(*MON, 18), ist(*THU, 15, 29))], "NSE")
    assert healed == Settled(ist(*MON) - 1)
    # an old day answered empty now does not undo the candles stored for it before
    assert settle(Settled(ist(*MON) - 1), [day_answer(THU, ist(*MON, 18), None)], "NSE") == Settled(ist(*MON) - 1)


def test_a_first_answer_starts_the_frontier_where_it_asked():
    state = settle(Settled(), [day_answer(MON, ist(*MON, 17), ist(*MON, 15, 29))], "NSE")
    assert state == Settled(ist(2026, 12, 1) - 1)  # nothing before a symbol's first ask is tracked


def test_weekends_and_evenings_never_open_a_stretch_on_nse_but_do_elsewhere():
    assert may_trade(ist(2026, 11, 28), ist(*MON) - 1, "NSE") is None  # Saturday, Sunday
    assert may_trade(ist(*THU, 15, 30), ist(*FRI, 9, 15) - 1, "NSE") is None
    assert may_trade(ist(*THU, 15, 29, 30), ist(*FRI, 9, 15), "NSE") == (ist(*THU, 15, 29), ist(*FRI, 9, 16) - 1)
    assert may_trade(ist(*THU, 18), ist(*THU, 19) - 1, "MCX") == (ist(*THU, 18), ist(*THU, 19) - 1)
    assert may_trade(ist(2026, 11, 28), ist(*MON) - 1, "MCX") is None


def test_a_muhurat_session_on_a_sunday_may_trade_up_to_15_minutes_past_its_close():
    sunday = ist(2023, 11, 12)
    assert may_trade(sunday, sunday + 86_399, "NSE") == (ist(2023, 11, 12, 18, 15), ist(2023, 11, 12, 19, 30) - 1)


def test_open_stretches_are_bounded_by_merging_the_closest_which_asks_more_never_less():
    stretches = tuple(Stretch(i * 86_400, i * 86_400 + 59, "empty", 1.0) for i in range(MAX_OPEN + 5))
    state = settle(Settled(stretches[-1].last + 86_400, stretches), [answer(0, 59, 2.0, 0)], "NSE")
    assert len(state.open) <= MAX_OPEN
    covered = [(s.first, s.last) for s in state.open]
    for s in stretches[1:]:
        assert any(a <= s.first and s.last <= b for a, b in covered)


def test_a_stored_state_reads_back_and_refuses_a_mangled_stretch():
    state = Settled(10_000, (Stretch(60, 119, "hole"), Stretch(180, 239, "empty", 5.5)))
    assert Settled.from_item(10_000, state.open_json()) == state
    with pytest.raises(Exception, match="not \\[first, last, kind, seen_at\\]"):
        Settled.from_item(10_000, '[[60, 119, "lost", null]]')


# --- properties over arrival patterns -------------------------------------------------------------------
DAY0 = ist(2026, 11, 23)  # a Monday
SESSION_MINUTES = [DAY0 + d * 86_400 + (9 * 60 + 15) * 60 + m * 60 for d in range(5) for m in range(375)]


@st.composite
def runs(draw):
    """Scheduled runs over one trading week: each at a random time, Fyers answering up to a random point
    (published late, cut mid-answer, or no_data for an outage)."""
    times = sorted(draw(st.lists(st.integers(DAY0 + 9 * 3600, DAY0 + 5 * 86_400 + 12 * 3600), min_size=1, max_size=8)))
    n = len(times)
    shapes = draw(st.lists(st.sampled_from(["full", "late", "cut", "outage"]), min_size=n, max_size=n))
    cuts = draw(st.lists(st.integers(0, 5 * 375 - 1), min_size=n, max_size=n))
    return list(zip(times, shapes, cuts, strict=True))


def fyers_answer(first: int, last: int, fetched: int, shape: str, cut: int) -> Answered:
    """What Fyers answers at ``fetched`` for ``first..last`` in one of the shapes, for a liquid symbol."""
    published = fetched - 60 - {"full": 0, "late": 240, "cut": 0, "outage": 0}[shape]  # newest ended + publication lag
    if shape == "cut":
        published = min(published, SESSION_MINUTES[cut])
    candles = [m for m in SESSION_MINUTES if first <= m <= last and m <= published] if shape != "outage" else []
    return Answered(first, last, float(fetched), candles[-1] if candles else None)


def scheduled(state: Settled, at: int, shape: str, cut: int) -> tuple[Settled, list[Answered]]:
    end = (at // 60) * 60 - 1  # the last ended minute
    asks = ranges_to_ask(state, start=DAY0, end=end)
    answers = [fyers_answer(lo, hi, at, shape, cut) for lo, hi in asks]
    return settle(state, answers, "NSE"), answers


@settings(max_examples=300, deadline=None)
@given(runs())
def test_no_session_minute_is_settled_without_an_answer_that_proves_it(pattern):
    state, history = Settled(), []
    for at, shape, cut in pattern:
        state, answers = scheduled(state, at, shape, cut)
        history += answers
    open_minutes = {m for s in state.open for m in SESSION_MINUTES if s.first <= m <= s.last}
    for minute in SESSION_MINUTES:
        if state.through is None or minute > state.through or minute in open_minutes:
            continue  # not settled: a later run asks it
        proved = any(
            a.range_from <= minute <= a.range_to
            and a.newest is not None
            and a.newest >= minute
            and a.fetched_at >= minute + 60 + SETTLE_S
            for a in history
        )
        empties = sorted(
            a.fetched_at
            for a in history
            if a.range_from <= minute <= a.range_to
            and (a.newest is None or a.newest < minute)
            and a.fetched_at >= minute + 60 + SETTLE_S
        )
        twice_empty = len(empties) >= 2 and empties[-1] - empties[0] >= RECHECK_S
        assert proved or twice_empty, f"minute {datetime.fromtimestamp(minute, IST)} settled without proof"


@settings(max_examples=200, deadline=None)
@given(runs())
def test_one_good_run_after_any_pattern_settles_the_whole_week(pattern):
    state = Settled()
    for at, shape, cut in pattern:
        state, _ = scheduled(state, at, shape, cut)
    saturday = DAY0 + 5 * 86_400 + 12 * 3600 + 600
    state, _ = scheduled(state, saturday, "full", 0)
    assert state.open == ()
    assert state.through == (saturday // 60) * 60 - 1
    first_asked = min(at for at, _, _ in pattern)
    assert state.through >= first_asked  # and nothing between the first run's day and now is left open
