"""Downsampling an equity curve for storage and plotting, without hiding its drawdown.

A walk-forward backtest produces one account value per bar (thousands); the promotion manifest
keeps at most :data:`MAX_CURVE_POINTS` of them per verdict, which is plenty for a plot.
:func:`downsample_indices` picks which points survive:

* the first and the last point;
* the peak and the trough of the largest drawdown, so the sampled curve's maximum drawdown
  (:func:`~aistock_actors.core.backtest.metrics.max_drawdown`) is EXACTLY the full curve's -- a
  subsequence can only understate a drawdown, and these two points make it equal;
* the lowest and the highest point of each of ``(max_points - 4) // 2`` equal buckets of the
  points in between (the classic min/max decimation): the global minimum and maximum are always
  kept, and every swing wider than a bucket shows.

The points keep their time order; a point chosen twice is kept once, so a few fewer than
``max_points`` may remain. Curves of at most ``max_points`` points are kept whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from aistock_actors.core.backtest.metrics import drawdown_series

MAX_CURVE_POINTS = 250
"""Points kept of a backtest's equity curve (about 10 kB of JSON)."""

IntArray = npt.NDArray[np.int64]


def downsample_indices(values: Any, max_points: int = MAX_CURVE_POINTS) -> IntArray:
    """Sorted positions of at most ``max_points`` points of ``values`` (see the module docstring).

    ``values`` must be finite (see :func:`downsample_curve`); ``max_points`` must be at least 6
    (the four kept points plus one bucket's two).
    """
    if max_points < 6:
        raise ValueError(f"max_points must be at least 6, got {max_points}")
    v = np.asarray(values, dtype=np.float64)
    n = v.size
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    trough = int(np.argmax(drawdown_series(v)))
    top = int(np.argmax(v[: trough + 1]))
    keep = [0, n - 1, top, trough]
    for bucket in np.array_split(np.arange(1, n - 1), (max_points - 4) // 2):
        if bucket.size:
            keep += [int(bucket[np.argmin(v[bucket])]), int(bucket[np.argmax(v[bucket])])]
    return np.unique(np.asarray(keep, dtype=np.int64))


def downsample_curve(
    times: Sequence[Any] | npt.NDArray[Any], values: Any, max_points: int = MAX_CURVE_POINTS
) -> list[tuple[str, float]]:
    """``(ISO-8601 time, value)`` pairs of at most ``max_points`` points of a curve.

    ``times`` holds anything :class:`pandas.Timestamp` accepts (datetime64, datetimes, ISO
    strings), one per value. Non-finite values are dropped first (JSON has no NaN).
    """
    v = np.asarray(values, dtype=np.float64)
    if len(times) != v.size:
        raise ValueError(f"{len(times)} times for {v.size} values")
    finite = np.flatnonzero(np.isfinite(v))
    chosen = finite[downsample_indices(v[finite], max_points)]
    return [(pd.Timestamp(times[i]).isoformat(), float(v[i])) for i in chosen]

