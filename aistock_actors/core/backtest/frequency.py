"""Bars per year inferred from the timestamps, for annualising Sharpe, CAGR and turnover.

The data says how often it trades: the number of distinct bars per elapsed year of calendar time.
Daily equities give their sessions (about 252: weekends and holidays have no bar), daily crypto
365, hourly FX about 6,200 (24 x 5 x 52), monthly data 12. Assuming 252 for everything got hourly
data's Sharpe wrong by about 5x (issue #14).

Over a span shorter than :data:`MIN_SPAN_DAYS` the count is too noisy (a long weekend is a large
share of a week) and the median spacing between bars is used instead (``365.25 days / spacing``),
which is right for a 24/7 series and an upper bound for a session-based one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aistock_actors.errors import DataError

DEFAULT_BARS_PER_YEAR = 252.0
"""Daily equity sessions: used when the timestamps cannot tell (fewer than two distinct bars)."""
MIN_SPAN_DAYS = 28.0
"""Shortest calendar span over which bars are counted rather than their spacing measured."""
_DAYS_PER_YEAR = 365.25
_NS_PER_DAY = 86_400 * 10**9


def infer_bars_per_year(index: pd.Index) -> float:
    """Bars per year of a series (or the union of a panel's) timestamps; see the module docstring.

    Duplicate timestamps count once (a panel's symbols share their bars). Raises
    :class:`DataError` for an index that is not made of timestamps.
    """
    if isinstance(index, pd.MultiIndex):
        level = "timestamp" if "timestamp" in index.names else 0
        index = index.get_level_values(level)
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(f"bars per year need a DatetimeIndex, got {type(index).__name__}")
    times = np.unique(index.dropna().as_unit("ns").asi8)
    if times.size < 2:
        return DEFAULT_BARS_PER_YEAR
    span_days = float(times[-1] - times[0]) / _NS_PER_DAY
    if span_days >= MIN_SPAN_DAYS:
        return float((times.size - 1) / (span_days / _DAYS_PER_YEAR))
    spacing_days = float(np.median(np.diff(times))) / _NS_PER_DAY
    return _DAYS_PER_YEAR / spacing_days


def annualisation_periods(bars_per_year: float) -> int:
    """``bars_per_year`` as the whole number of periods the metrics annualise with (>= 1)."""
    if not np.isfinite(bars_per_year) or bars_per_year <= 0:
        raise ValueError(f"bars per year must be a positive number, got {bars_per_year!r}")
    return max(1, round(bars_per_year))
