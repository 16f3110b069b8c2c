"""Bars per year inferred from timestamps: within 10 % of the truth at every common frequency."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aistock_actors.core.backtest.frequency import (
    DEFAULT_BARS_PER_YEAR,
    annualisation_periods,
    infer_bars_per_year,
)
from aistock_actors.core.backtest.simulator import CostModel
from aistock_actors.core.model.simulation import SimulationSpec, simulate_window
from aistock_actors.errors import DataError


def fx_hours(n_weeks: int) -> pd.DatetimeIndex:
    """Hourly FX bars: 24 hours a day, Monday to Friday."""
    hours = pd.date_range("2023-01-02", periods=n_weeks * 7 * 24, freq="h", tz="UTC")
    return hours[hours.day_of_week < 5]


def equity_hours(n_days: int) -> pd.DatetimeIndex:
    """Hourly equity bars: 7 bars per business day (09:30 .. 15:30)."""
    days = pd.bdate_range("2023-01-02", periods=n_days, tz="UTC")
    return pd.DatetimeIndex(
        [d + pd.Timedelta(hours=9, minutes=30) + pd.Timedelta(hours=h) for d in days
         for h in range(7)]
    )


@pytest.mark.parametrize(
    ("index", "truth"),
    [
        (pd.bdate_range("2015-01-02", periods=1_500, tz="UTC"), 261.0),  # business days
        (pd.date_range("2020-01-01", periods=900, freq="D", tz="UTC"), 365.25),  # crypto
        (fx_hours(60), 24 * 5 * 52.18),
        (equity_hours(300), 7 * 261.0),
        (pd.date_range("1985-01-31", periods=495, freq="ME", tz="UTC"), 12.0),  # monthly
        (pd.date_range("2024-01-01", periods=40, freq="h", tz="UTC"), 8766.0),  # < MIN_SPAN
        (pd.date_range("2024-01-01", periods=2_000, freq="min"), 525_960.0),  # naive, minutes
    ],
    ids=["daily-equity", "daily-crypto", "hourly-fx", "hourly-equity", "monthly", "short",
         "minute"],
)
def test_bars_per_year_within_ten_percent(index: pd.DatetimeIndex, truth: float) -> None:
    assert infer_bars_per_year(index) == pytest.approx(truth, rel=0.10)


def test_daily_equity_sessions_with_holidays_are_about_252() -> None:
    days = pd.bdate_range("2010-01-04", "2019-12-31", tz="UTC")
    rng = np.random.default_rng(0)
    sessions = days.delete(rng.choice(len(days), size=9 * 10, replace=False))  # 9 holidays/yr
    assert infer_bars_per_year(sessions) == pytest.approx(252.0, rel=0.02)


def test_a_panel_counts_each_timestamp_once_and_degenerate_input() -> None:
    days = pd.bdate_range("2015-01-02", periods=600, tz="UTC")
    panel = pd.MultiIndex.from_product([days, ["A", "B", "C"]], names=["timestamp", "symbol"])
    assert infer_bars_per_year(panel) == pytest.approx(infer_bars_per_year(days))
    assert infer_bars_per_year(days[:1]) == DEFAULT_BARS_PER_YEAR
    with pytest.raises(DataError, match="DatetimeIndex"):
        infer_bars_per_year(pd.RangeIndex(10))
    assert annualisation_periods(11.6) == 12
    with pytest.raises(ValueError, match="positive"):
        annualisation_periods(float("nan"))


def test_the_backtest_annualises_with_the_inferred_frequency() -> None:
    """The same returns sampled hourly have a Sharpe sqrt(bars per year / 252) times larger
    than if they were assumed daily; the metrics record which frequency was used."""
    index = fx_hours(30)
    rng = np.random.default_rng(3)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0002, 0.002, len(index))))
    frame = pd.DataFrame({"open": close, "high": close, "low": close, "close": close,
                          "volume": 1e6}, index=index)
    targets = pd.DataFrame({"X": 1.0}, index=index)
    spec = SimulationSpec(n_splits=2, embargo=0, fill="close", costs=CostModel(
        commission_rate=0.0,
        half_spread_bps=0.0,
        impact_bps=0.0,
    ),
                          initial_cash=100_000.0)
    result = simulate_window({"X": frame}, targets, (index[0], index[-1]), spec)
    bpy = result.metrics.bars_per_year
    assert bpy == pytest.approx(6_260.0, rel=0.10)
    returns = result.returns[1:]
    daily_assumed = returns.mean() / returns.std(ddof=1) * np.sqrt(252.0)
    assert result.metrics.sharpe == pytest.approx(
        daily_assumed * np.sqrt(bpy / 252.0), rel=0.02
    )
