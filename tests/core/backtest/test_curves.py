"""Downsampling a backtest's equity curve (``core.curves``) and carrying it out of the pipeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _support.lifecycle_support import planted_frames
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.core.backtest.curves import (
    MAX_CURVE_POINTS,
    downsample_curve,
    downsample_indices,
)
from aistock_actors.core.backtest.metrics import max_drawdown
from aistock_actors.core.backtest.simulator import CostModel
from aistock_actors.core.model import pipeline
from aistock_actors.core.model.models import ModelParams

curves = st.lists(st.floats(1.0, 1e6, allow_nan=False), min_size=1, max_size=2_000)


@settings(max_examples=200, deadline=None)
@given(curves, st.integers(6, 300))
def test_downsampling_keeps_ends_extremes_and_the_exact_max_drawdown(
        values: list[float], max_points: int) -> None:
    v = np.array(values)
    kept = downsample_indices(v, max_points)
    assert len(kept) <= max_points
    assert (np.diff(kept) > 0).all()  # time order, no duplicates
    assert kept[0] == 0 and kept[-1] == len(v) - 1
    assert v[kept].min() == v.min() and v[kept].max() == v.max()
    assert max_drawdown(v[kept]) == max_drawdown(v)
    if len(v) <= max_points:
        assert len(kept) == len(v)


def test_a_long_curve_is_cut_to_the_budget_and_its_crash_survives() -> None:
    rng = np.random.default_rng(0)
    equity = 100_000.0 * np.cumprod(1.0 + rng.normal(0.0005, 0.01, 5_000))
    equity[3_210] *= 0.7  # a one-bar crash: one point among 5,000
    times = pd.date_range("2015-01-02", periods=equity.size, freq="D", tz="UTC")
    curve = downsample_curve(times.to_numpy(), equity)
    assert MAX_CURVE_POINTS - 4 <= len(curve) <= MAX_CURVE_POINTS
    assert curve[0] == (times[0].isoformat(), equity[0])
    assert curve[-1] == (times[-1].isoformat(), equity[-1])
    assert (times[3_210].isoformat(), equity[3_210]) in curve
    assert max_drawdown([v for _, v in curve]) == max_drawdown(equity)
    assert [pd.Timestamp(t) for t, _ in curve] == sorted(pd.Timestamp(t) for t, _ in curve)


def test_non_finite_values_are_dropped_and_bad_input_is_refused() -> None:
    times = ["2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00",
             "2024-01-03T00:00:00+00:00"]
    assert downsample_curve(times, [1.0, float("nan"), 2.0]) == [(times[0], 1.0), (times[2], 2.0)]
    assert downsample_curve([], []) == []
    with pytest.raises(ValueError, match="2 times for 3 values"):
        downsample_curve(times[:2], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="at least 6"):
        downsample_indices([1.0, 2.0], 5)


def test_walk_forward_backtest_carries_the_downsampled_oos_equity_curve() -> None:
    spec = pipeline.SimulationSpec(n_splits=4, embargo=5, fill="next_open",
                                   costs=CostModel(
                                       commission_rate=0.0005,
                                       half_spread_bps=2.0,
                                       impact_bps=0.0,
                                   ), initial_cash=100_000.0)
    report = pipeline.walk_forward_backtest(
        planted_frames(n_symbols=4, n_bars=560), model_id="c", params=ModelParams(horizon=1),
        seed=0, spec=spec, sizing=pipeline.Sizing(max_position_fraction=0.2,
                                                  max_gross_exposure=1.0))
    curve = report.candidate.equity_curve
    assert report.candidate.bars > MAX_CURVE_POINTS >= len(curve) > 100
    assert curve[0][0] == report.start and curve[-1][0] == report.end
    values = [v for _, v in curve]
    assert values[-1] == pytest.approx(100_000.0 * (1.0 + report.candidate.metrics.total_return))
    assert max_drawdown(values) == pytest.approx(report.candidate.metrics.max_drawdown)
