"""Which bars a candidate is trained on, how many it needs, and the window they span."""

from __future__ import annotations

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
    embargo plus the label horizon), on top of the features' warm-up. With the defaults
    (horizon 5, embargo 5, 5 inner and 4 outer splits) that is 495 bars, about two years of
    daily data.
    """
    gap = params.embargo + params.horizon
    inner = (params.n_splits + 1) * (gap + 2)
    return WARMUP_BARS + params.horizon + (outer_splits + 1) * (inner + gap)


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
    longest = max(frames.values(), key=len, default=None)
    if longest is None or len(longest) < 2:
        return f"{bars} bars"
    per_year = infer_bars_per_year(longest.index)
    years = bars / per_year
    span = f"{years:.1f} years" if years >= 1.0 else f"{years * 365.25:.0f} days"
    return f"{bars} bars (~{span} of these bars, ~{per_year:,.0f} a year)"
