"""Purged walk-forward splits with an embargo (López de Prado, *Advances in Financial ML*, ch. 7).

Samples are placed on a time grid (the sorted distinct sample times, so a panel's symbols sharing a
timestamp always fall on the same side). The grid is cut into ``n_splits + 1`` contiguous blocks;
split ``k`` tests on block ``k`` and trains on everything before it (an expanding window), minus:

* **purge**: a training sample whose label window ``[t, t_end]`` reaches into the test window
  would leak the test period's prices into training; it is dropped;
* **embargo**: a training sample must also end at least ``embargo`` grid bars before the test
  window starts, so features that overlap the boundary (rolling windows, serial correlation)
  do not leak either.

Formally a training sample survives iff ``t_end < grid[start - embargo]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

TimesLike = pd.Index | pd.Series | npt.NDArray[np.generic] | Sequence[object]
"""Timestamps (datetime-like, tz-aware or not) or integer bar positions."""

Split = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]
"""``(train_positions, test_positions)``: integer positions into the sample arrays."""


def as_int_times(values: TimesLike) -> npt.NDArray[np.int64]:
    """Return ``values`` as int64 (nanoseconds since the epoch, UTC, or bar numbers as given).

    Raises ``ValueError`` on a missing time (NaT/NaN): every sample needs a known label end.
    """
    if isinstance(values, pd.Index | pd.Series):
        if values.dtype.kind in "iu":
            return np.asarray(values.to_numpy(), dtype=np.int64)
        index = pd.DatetimeIndex(values)
    else:
        arr = np.asarray(values)
        if arr.dtype.kind in "iu":
            return arr.astype(np.int64)
        index = pd.DatetimeIndex(arr)
    if index.hasnans:
        raise ValueError("times contain NaT: drop samples whose label end is unknown")
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return np.asarray(index.as_unit("ns").asi8, dtype=np.int64)


def _label_windows(
    times: TimesLike, label_end_times: TimesLike, embargo: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``(start, end)`` as int64 times, after checking the embargo and that they pair up."""
    if embargo < 0:
        raise ValueError(f"embargo must be >= 0 bars, got {embargo}")
    start = as_int_times(times)
    end = as_int_times(label_end_times)
    if start.shape != end.shape:
        raise ValueError(f"{len(start)} sample times but {len(end)} label end times")
    return start, end


def _block_bounds(n_grid: int, n_splits: int) -> npt.NDArray[np.int64]:
    if n_splits < 1:
        raise ValueError(f"n_splits must be >= 1, got {n_splits}")
    if n_grid < n_splits + 1:
        raise ValueError(f"{n_grid} distinct times cannot make {n_splits} walk-forward splits")
    return np.linspace(0, n_grid, n_splits + 2).astype(np.int64)


def purged_walk_forward_splits(
    times: TimesLike,
    label_end_times: TimesLike,
    n_splits: int,
    embargo: int = 0,
) -> list[Split]:
    """Return expanding-window walk-forward ``(train, test)`` position arrays, purged and embargoed.

    ``times[i]`` is when sample ``i`` is observed and ``label_end_times[i]`` when its label is
    known (``>= times[i]``). ``embargo`` counts grid bars. Samples need not be sorted. Raises
    ``ValueError`` if the inputs disagree in length, a label ends before it starts, or a split
    would have an empty training set.
    """
    start, end = _label_windows(times, label_end_times, embargo)
    if bool((end < start).any()):
        raise ValueError("a label window ends before it starts")
    grid = np.unique(start)
    bounds = _block_bounds(len(grid), n_splits)
    splits: list[Split] = []
    for k in range(1, n_splits + 1):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        test_start, test_end = grid[lo], grid[hi - 1]
        test = np.flatnonzero((start >= test_start) & (start <= test_end))
        cutoff_pos = lo - embargo
        if cutoff_pos <= 0:
            raise ValueError(f"split {k}: embargo of {embargo} bars leaves no training data")
        train = np.flatnonzero(end < grid[cutoff_pos])
        if train.size == 0:
            raise ValueError(f"split {k}: purging leaves no training data (labels too long)")
        splits.append((train.astype(np.int64), test.astype(np.int64)))
    return splits


def purged_tail_split(
    times: TimesLike,
    label_end_times: TimesLike,
    fraction: float,
    embargo: int = 0,
) -> Split | None:
    """A fit's own rows cut into a purged training head and its most recent ``fraction`` as a tail.

    The tail is every sample observed at or after the grid time at ``(1 - fraction)`` of the
    sorted distinct sample times; the head is every sample whose label window ends at least
    ``embargo`` grid bars before the tail starts (the rule of :func:`purged_walk_forward_splits`,
    so the head's labels know nothing of the tail's prices). Used to stop a boosted fit early on
    data later than any it trains on, inside the rows it was given: never on rows after them.
    ``None`` when the grid is too short to leave both a head and a tail.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"tail fraction must lie in (0, 1), got {fraction}")
    start, end = _label_windows(times, label_end_times, embargo)
    grid = np.unique(start)
    cut = int(np.floor(len(grid) * (1.0 - fraction)))
    if cut - embargo <= 0 or cut >= len(grid):
        return None
    tail = np.flatnonzero(start >= grid[cut])
    head = np.flatnonzero(end < grid[cut - embargo])
    if head.size == 0 or tail.size == 0:
        return None
    return head.astype(np.int64), tail.astype(np.int64)
