"""Purged walk-forward splits: no label window overlaps its test window; the embargo holds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.core.model.validation import as_int_times, purged_walk_forward_splits


def check_split_invariants(
    start: np.ndarray, end: np.ndarray, n_splits: int, embargo: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    splits = purged_walk_forward_splits(start, end, n_splits, embargo)
    grid = np.unique(start)
    assert len(splits) == n_splits
    tested = np.concatenate([test for _, test in splits])
    assert len(np.unique(tested)) == len(tested), "each sample is tested at most once"
    previous_test_start = None
    for train, test in splits:
        assert len(train) > 0 and len(test) > 0
        assert not set(train) & set(test)
        test_start, test_end = start[test].min(), start[test].max()
        # the test block is contiguous on the grid and holds every sample in it
        in_block = np.flatnonzero((start >= test_start) & (start <= test_end))
        assert np.array_equal(np.sort(test), in_block)
        # purge: no training label window [t, t_end] overlaps [test_start, test_end]
        assert not ((start[train] <= test_end) & (end[train] >= test_start)).any()
        # embargo: at least `embargo` grid bars lie strictly between any label end and the test
        for label_end in np.unique(end[train]):
            gap = np.count_nonzero((grid > label_end) & (grid < test_start))
            assert gap >= embargo
        if previous_test_start is not None:
            assert test_start > previous_test_start
        previous_test_start = test_start
    return splits


@settings(max_examples=60, deadline=None)
@given(
    n_bars=st.integers(min_value=100, max_value=250),
    n_symbols=st.integers(min_value=1, max_value=4),
    horizon=st.integers(min_value=1, max_value=6),
    n_splits=st.integers(min_value=1, max_value=5),
    embargo=st.integers(min_value=0, max_value=4),
    seed=st.integers(min_value=0, max_value=1_000),
)
def test_invariants_on_random_panels(
    n_bars: int, n_symbols: int, horizon: int, n_splits: int, embargo: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    start = np.repeat(np.arange(n_bars), n_symbols)
    symbol = np.tile(np.arange(n_symbols), n_bars)
    keep = (symbol == 0) | (rng.random(len(start)) > 0.2)  # other symbols miss some bars
    start = start[keep]
    end = start + rng.integers(1, horizon + 1, len(start))  # label lengths vary (triple barrier)
    order = rng.permutation(len(start))  # rows need not be sorted
    check_split_invariants(start[order], end[order], n_splits, embargo)


def test_exact_purge_and_embargo_boundaries() -> None:
    start = np.arange(100)
    end = start + 5
    splits = purged_walk_forward_splits(start, end, n_splits=4, embargo=0)
    train, test = splits[0]
    assert test.tolist() == list(range(20, 40))
    assert train.tolist() == list(range(0, 15))  # label of t=15 ends at 20, inside the test
    train_e, _ = purged_walk_forward_splits(start, end, n_splits=4, embargo=3)[0]
    assert train_e.tolist() == list(range(0, 12))  # ends 16 < grid[20 - 3] = 17
    last_train, last_test = splits[-1]
    assert last_test.tolist() == list(range(80, 100))
    assert last_train.tolist() == list(range(0, 75))


def test_panel_rows_sharing_a_timestamp_stay_together() -> None:
    index = pd.date_range("2022-01-03", periods=60, freq="B", tz="UTC")
    times = pd.Index(np.repeat(index, 3))
    ends = pd.Series(np.repeat(index.to_series().shift(-2).ffill(), 3)).to_numpy()
    ends[-6:] = index[-1]
    splits = purged_walk_forward_splits(times, ends, n_splits=3, embargo=2)
    for train, test in splits:
        assert len(test) % 3 == 0 and len(train) % 3 == 0


def test_timezones_are_compared_as_instants() -> None:
    utc = pd.date_range("2022-01-03 14:30", periods=3, freq="h", tz="UTC")
    ny = utc.tz_convert("America/New_York")
    assert np.array_equal(as_int_times(utc), as_int_times(ny))
    assert np.array_equal(as_int_times(utc.as_unit("s")), as_int_times(utc.as_unit("ns")))


@pytest.mark.parametrize(
    ("start", "end", "n_splits", "embargo", "message"),
    [
        (np.arange(5), np.arange(5) + 1, 5, 0, "cannot make"),
        (np.arange(50), np.arange(50) + 1, 3, -1, "embargo"),
        (np.arange(50), np.arange(50) - 1, 3, 0, "ends before"),
        (np.arange(50), np.arange(49), 3, 0, "label end"),
        (np.arange(50), np.arange(50) + 1, 4, 10, "embargo"),
        (np.arange(50), np.arange(50) + 40, 4, 0, "purging"),
        (np.arange(50), np.arange(50) + 1, 0, 0, "n_splits"),
    ],
)
def test_bad_inputs(
    start: np.ndarray, end: np.ndarray, n_splits: int, embargo: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        purged_walk_forward_splits(start, end, n_splits, embargo)


def test_missing_label_end_is_rejected() -> None:
    times = pd.date_range("2022-01-03", periods=10, freq="D")
    ends = pd.Series(times).shift(-1)
    with pytest.raises(ValueError, match="NaT"):
        purged_walk_forward_splits(times, ends, 2, 0)
