"""Which bars a candidate is trained on, how many it needs, and the window they span."""

from __future__ import annotations

import math

import pandas as pd

from aistock_actors.core.backtest.frequency import infer_bars_per_year
from aistock_actors.core.model.features import WARMUP_BARS
from aistock_actors.core.model.models import ModelParams
from aistock_actors.errors import DataError


def select_frames(
    frames: dict[str, pd.DataFrame], *, max_symbols: int, max_bars: int
) -> dict[str, pd.DataFrame]:
    """At most ``max_symbols`` symbols (most bars first, ties by name), last ``max_bars`` each."""
    if not frames:
        raise DataError("no stored bars: nothing to train on")
    ranked = sorted(frames, key=lambda s: (-len(frames[s]), s))[:max_symbols]
    return {symbol: frames[symbol].iloc[-max_bars:] for symbol in sorted(ranked)}


def min_history_bars(params: ModelParams, outer_splits: int) -> int:
    """Bars the longest symbol needs before a candidate can be trained AND backtested.

    Each of the ``outer_splits + 1`` walk-forward blocks must hold enough labelled bars for the
    first fold's own inner purged splits (``params.n_splits + 1`` blocks, each longer than the
    embargo plus the label horizon), on top of the features' warm-up and the label's bars (the
    tradable label of a bar ends at the open ``1 + horizon`` bars later). With the defaults
    (horizon 5, embargo 5, 5 inner and 4 outer splits) that is 496 bars, about two years of
    daily data. :func:`required_history_bars` adds the floor in years.
    """
    gap = params.embargo + params.horizon
    inner = (params.n_splits + 1) * (gap + 2)
    return WARMUP_BARS + 1 + params.horizon + (outer_splits + 1) * (inner + gap)


def years_floor_bars(min_years: float, bars_per_year: float) -> int:
    """``min_years`` of bars at ``bars_per_year`` (``training.min_history_years``), rounded up."""
    if min_years <= 0:
        return 0
    return math.ceil(min_years * bars_per_year - 1e-9)


def bars_per_year_of(frames: dict[str, pd.DataFrame]) -> float | None:
    """Bars per year of the longest symbol's timestamps (``None`` with fewer than two bars)."""
    longest = max(frames.values(), key=len, default=None)
    if longest is None or len(longest) < 2:
        return None
    return infer_bars_per_year(longest.index)


def required_history_bars(params: ModelParams, outer_splits: int,
                          frames: dict[str, pd.DataFrame], min_years: float) -> int:
    """Bars the longest symbol needs before a candidate is trained: what the purged splits need
    (:func:`min_history_bars`) and at least ``min_years`` of the data's own bars (issue #14: the
    496 bars the splits need are ~3 weeks of hourly crypto, too little to judge a model on)."""
    needed = min_history_bars(params, outer_splits)
    per_year = bars_per_year_of(frames)
    if per_year is None:
        return needed
    return max(needed, years_floor_bars(min_years, per_year))


def window_bounds(frames: dict[str, pd.DataFrame]) -> tuple[str, str]:
    """First and last timestamp over all frames, ISO-8601."""
    starts = [f.index[0] for f in frames.values() if len(f)]
    ends = [f.index[-1] for f in frames.values() if len(f)]
    if not starts:
        raise DataError("every selected symbol is empty")
    return pd.Timestamp(min(starts)).isoformat(), pd.Timestamp(max(ends)).isoformat()


def history_in_years(bars: int, frames: dict[str, pd.DataFrame]) -> str:
    """``bars`` said in years of the data's own frequency, for an operator's message.

    The minimum history is counted in bars (the purged splits need that many rows), so what it
    means in time depends on the bar frequency (issue #14): 495 daily bars are ~2 years, 495
    monthly bars ~41 years, 495 hourly crypto bars ~3 weeks. Bars per year come from the longest
    symbol's timestamps (:func:`~aistock_actors.core.backtest.frequency.infer_bars_per_year`).
    """
    per_year = bars_per_year_of(frames)
    if per_year is None:
        return f"{bars} bars"
    years = bars / per_year
    span = f"{years:.1f} years" if years >= 1.0 else f"{years * 365.25:.0f} days"
    return f"{bars} bars (~{span} of these bars, ~{per_year:,.0f} a year)"
