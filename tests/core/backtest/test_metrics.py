"""Hand-computed values and invariants of the performance metrics."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aistock_actors.core.backtest.metrics import (
    RETURN_OVER_DRAWDOWN_CAP,
    BacktestMetrics,
    cagr,
    drawdown_series,
    max_drawdown,
    return_over_drawdown,
    sharpe,
    simple_returns,
    summarize,
    win_rate,
)

positive = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)


def test_sharpe_hand_computed() -> None:
    # mean 0.005; squared deviations .005², .015², .015², .005² sum to 5e-4; var = 5e-4 / 3
    expected = 0.005 / math.sqrt(5e-4 / 3) * math.sqrt(252)
    assert sharpe([0.01, -0.01, 0.02, 0.0]) == pytest.approx(expected, rel=1e-12)
    assert sharpe([0.01, -0.01, 0.02, 0.0], periods=12) == pytest.approx(
        expected / math.sqrt(252) * math.sqrt(12), rel=1e-12
    )


def test_sharpe_degenerate_cases() -> None:
    assert sharpe([]) == 0.0
    assert sharpe([0.01]) == 0.0
    assert sharpe([0.01, 0.01, 0.01]) == 0.0  # zero volatility
    assert sharpe([0.01, math.nan, -0.01, math.inf]) == 0.0  # non-finite dropped -> mean 0


def test_drawdown_series_and_max_drawdown() -> None:
    equity = [100, 120, 90, 130, 65]
    # peaks 100, 120, 120, 130, 130 -> 0, 0, 30/120, 0, 65/130
    assert drawdown_series(equity).tolist() == [0.0, 0.0, 0.25, 0.0, 0.5]
    assert max_drawdown(equity) == 0.5
    assert max_drawdown([]) == 0.0
    assert max_drawdown([5.0]) == 0.0


def test_drawdown_edge_cases() -> None:
    assert drawdown_series([100, math.nan, 80]).tolist() == pytest.approx([0.0, 0.0, 0.2])
    assert drawdown_series([100, -50]).tolist() == [0.0, 1.0]  # below zero: everything lost
    assert drawdown_series([math.nan, 0.0, 10.0, 5.0]).tolist() == [1.0, 1.0, 0.0, 0.5]


def test_cagr_hand_computed() -> None:
    assert cagr([100, 121], periods=1) == pytest.approx(0.21)
    assert cagr([100, 110, 121], periods=2) == pytest.approx(0.21)  # 2 bars = 1 year
    assert cagr([100, 100 * 1.1**0.5], periods=2) == pytest.approx(0.10)  # 1 bar = half a year
    assert cagr([100, 0.0]) == -1.0
    assert cagr([100]) == 0.0
    assert cagr([0.0, 10.0]) == 0.0


def test_win_rate() -> None:
    assert win_rate([1.0, -1.0, 0.0, 2.0]) == 0.5  # a zero-pnl trade is not a win
    assert win_rate([]) == 0.0
    assert win_rate(np.array([3.0])) == 1.0


def test_return_over_drawdown_is_finite() -> None:
    assert return_over_drawdown(0.3, 0.1) == pytest.approx(3.0)
    assert return_over_drawdown(-0.1, 0.2) == pytest.approx(-0.5)
    assert return_over_drawdown(0.1, 0.0) == RETURN_OVER_DRAWDOWN_CAP
    assert return_over_drawdown(0.0, 0.0) == 0.0
    assert return_over_drawdown(50.0, 1e-9) == RETURN_OVER_DRAWDOWN_CAP
    assert return_over_drawdown(math.nan, 0.1) == 0.0


def test_simple_returns() -> None:
    assert simple_returns([100, 110, 99]).tolist() == pytest.approx([0.1, -0.1])
    assert simple_returns([0.0, 5.0, math.nan, 5.0]).tolist() == [0.0, 0.0, 0.0]
    assert simple_returns([1.0]).size == 0


def test_summarize_and_json_round_trip() -> None:
    m = summarize(
        [110.0, 99.0, 121.0],
        100.0,
        [5.0, -2.0, 1.0],
        gross_exposure=[110.0, 49.5, 0.0],
        traded_notional=215.0,
        total_costs=1.5,
        periods=3,
    )
    # curve 100, 110, 99, 121: total 21 %, drawdown 11/110, one year of 3 bars
    assert m.total_return == pytest.approx(0.21)
    assert m.max_drawdown == pytest.approx(0.1)
    assert m.return_over_drawdown == pytest.approx(2.1)
    assert m.cagr == pytest.approx(0.21)
    assert (m.trade_count, m.win_rate) == (3, pytest.approx(2 / 3))
    assert m.exposure == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    assert m.turnover == pytest.approx(215.0 / 107.5)
    assert m.total_costs == 1.5
    assert msgspec.json.decode(msgspec.json.encode(m), type=BacktestMetrics) == m


def test_summarize_empty_curve() -> None:
    m = summarize([], 100.0, [])
    assert (m.total_return, m.sharpe, m.max_drawdown, m.trade_count) == (0.0, 0.0, 0.0, 0)


@given(st.lists(positive, min_size=1, max_size=200))
def test_max_drawdown_bounded_for_positive_equity(equity: list[float]) -> None:
    dd = drawdown_series(equity)
    assert dd.shape == (len(equity),)
    assert ((dd >= 0) & (dd <= 1)).all()
    assert 0.0 <= max_drawdown(equity) <= 1.0


@given(st.lists(positive, min_size=1, max_size=200))
def test_max_drawdown_zero_for_non_decreasing_equity(equity: list[float]) -> None:
    assert max_drawdown(sorted(equity)) == 0.0


@given(st.lists(st.floats(-0.5, 0.5), min_size=0, max_size=100))
def test_sharpe_is_finite(returns: list[float]) -> None:
    assert math.isfinite(sharpe(returns))
