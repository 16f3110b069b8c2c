"""The retraining cadence rule (core/supervision/cadence.py)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from aistock_actors.core.supervision.cadence import (
    CADENCE_NOT_REACHED,
    CADENCE_REACHED,
    NO_CANDIDATE,
    NO_NEW_BAR,
    bars_since,
    training_due,
)


def test_no_candidate_trains() -> None:
    due = training_due(None, 21)
    assert due.due and due.reason == NO_CANDIDATE and due.new_bars is None


def test_trains_once_enough_new_bars_arrived() -> None:
    assert training_due(21, 21, "m-1").due
    assert training_due(22, 21, "m-1").reason == CADENCE_REACHED


def test_skips_with_the_reason_and_what_is_left() -> None:
    none = training_due(0, 21, "m-1")
    assert not none.due and none.reason == NO_NEW_BAR
    assert "no new bar since m-1" in none.detail
    some = training_due(5, 21, "m-1")
    assert not some.due and some.reason == CADENCE_NOT_REACHED
    assert "5 of 21" in some.detail and "16 bar(s)" in some.detail


def test_every_bar_cadence_trains_on_each_new_bar_only() -> None:
    assert training_due(1, 1).due
    assert not training_due(0, 1).due


def test_bars_since_counts_distinct_bar_times_over_symbols() -> None:
    a = np.array([1, 2, 3, 4, 5], dtype=np.int64)
    b = np.array([3, 4, 5, 6], dtype=np.int64)  # one more bar time than a
    assert bars_since([a, b], 3) == 3  # 4, 5, 6
    assert bars_since([a, b], 6) == 0
    assert bars_since([a], 0) == 5
    assert bars_since([], 0) == 0


@given(st.lists(st.lists(st.integers(0, 60), max_size=30), max_size=5), st.integers(-1, 61))
def test_bars_since_matches_a_set_count(symbols: list[list[int]], after: int) -> None:
    arrays = [np.array(sorted(set(s)), dtype=np.int64) for s in symbols]
    expected = len({t for s in symbols for t in s if t > after})
    assert bars_since(arrays, after) == expected
