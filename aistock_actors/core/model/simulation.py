"""How the walk-forward backtest turns signals into target weights and simulates a window.

Split from :mod:`aistock_actors.core.model.pipeline` (rules 3 and 4 of its module docstring):
one fixed weight per position over the universe
(:func:`~aistock_actors.core.strategy.protocol.per_name_weight`, the paper trader's rule too),
next-open fills, costs, the paper trader's fill limits, and the bars per year of the timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from aistock_actors.core.backtest.frequency import annualisation_periods, infer_bars_per_year
from aistock_actors.core.backtest.loop import NO_LIMITS
from aistock_actors.core.backtest.simulator import (
    BacktestResult,
    CostModel,
    FillLimits,
    FillMode,
    simulate_frame,
)
from aistock_actors.core.market.regimes import market_regimes
from aistock_actors.core.strategy.protocol import per_name_weight

Int8Array = npt.NDArray[np.int8]


@dataclass(frozen=True, kw_only=True)
class Sizing:
    """How signals become target weights (rule 3 of the module docstring)."""

    max_position_fraction: float
    max_gross_exposure: float


@dataclass(frozen=True, kw_only=True)
class SimulationSpec:
    """The walk-forward split and the simulator's settings."""

    n_splits: int
    """Walk-forward folds (test blocks)."""
    embargo: int
    """Bars between a training label's end and the test block."""
    fill: FillMode
    costs: CostModel
    initial_cash: float
    limits: FillLimits = NO_LIMITS
    """The paper trader's volume cap and minimum order notional (none by default)."""


def target_weights(index: pd.MultiIndex, direction: Int8Array, sizing: Sizing) -> pd.DataFrame:
    """Fixed-weight, capped target weights (rule 3), as a ``timestamps x symbols`` frame."""
    signal = pd.Series(np.asarray(direction, dtype=np.float64), index=index)
    n_symbols = max(1, int(index.get_level_values("symbol").nunique()))
    per_name = min(
        per_name_weight(n_symbols, sizing.max_position_fraction, sizing.max_gross_exposure), 1.0
    )
    return (signal * per_name).unstack("symbol").fillna(0.0)


def _panel(frames: dict[str, pd.DataFrame], column: str) -> pd.DataFrame:
    return pd.DataFrame({symbol: frame[column] for symbol, frame in frames.items()}).sort_index()


def simulate_window(
    frames: dict[str, pd.DataFrame],
    targets: pd.DataFrame,
    window: tuple[pd.Timestamp, pd.Timestamp],
    spec: SimulationSpec,
) -> BacktestResult:
    """Simulate ``targets`` over the bars of ``window`` (rule 4), regimes from all history.

    Sharpe, CAGR and turnover are annualised with the bars per year of the whole history's
    timestamps (``metrics.bars_per_year``): sessions for daily equities, 24/7 for crypto.
    """
    close = _panel(frames, "close")
    periods = annualisation_periods(infer_bars_per_year(close.index))
    regimes = market_regimes(close.to_numpy(dtype=np.float64, na_value=np.nan))
    inside = (close.index >= window[0]) & (close.index <= window[1])
    return simulate_frame(
        close.loc[inside],
        targets,
        open_=_panel(frames, "open").loc[inside],
        volume=_panel(frames, "volume").loc[inside],
        costs=spec.costs,
        fill=spec.fill,
        initial_cash=spec.initial_cash,
        regime_labels=regimes[inside],
        periods_per_year=periods,
        limits=spec.limits,
    )
