"""Causal regime labels, transition windows and transition drawdown (T2 acceptance)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.core.market.regimes import (
    CALM_UP,
    REGIME_NAMES,
    UNKNOWN,
    VOLATILE_DOWN,
    VOLATILE_UP,
    equal_weight_index,
    label_regimes,
    market_regimes,
    regime_changes,
    regime_name,
    transition_drawdown,
    transition_windows,
)


def two_regime_prices(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    calm_up = rng.normal(0.002, 0.004, 300)
    volatile_down = rng.normal(-0.004, 0.03, 300)
    return 100 * np.exp(np.cumsum(np.concatenate((calm_up, volatile_down))))


def test_labels_follow_the_generating_regimes() -> None:
    labels = label_regimes(two_regime_prices())
    assert labels.dtype == np.int64 and labels.shape == (600,)
    assert (labels[:49] == UNKNOWN).all() and labels[49] != UNKNOWN  # warm-up: 50-bar SMA
    assert set(np.unique(labels).tolist()) <= set(REGIME_NAMES)
    calm, wild = labels[100:300], labels[350:]
    assert np.mean(np.isin(calm, [CALM_UP, VOLATILE_UP])) > 0.95  # up-trend
    assert np.mean(calm == CALM_UP) > 0.6
    assert np.mean(np.isin(wild, [VOLATILE_UP, VOLATILE_DOWN])) > 0.95  # 7x the calm volatility
    assert np.mean(wild == VOLATILE_DOWN) > 0.6
    assert regime_name(VOLATILE_DOWN) == "volatile_down" and regime_name(99) == "unknown"


def test_labels_accept_series_and_missing_prices() -> None:
    prices = two_regime_prices()
    prices[[100, 101, 400]] = np.nan
    from_series = label_regimes(pd.Series(prices))
    assert np.array_equal(from_series, label_regimes(prices))
    with pytest.raises(ValueError):
        label_regimes(prices, vol_window=1)
    with pytest.raises(ValueError):
        label_regimes(prices, vol_threshold=0.0)


def test_persistence_suppresses_flicker() -> None:
    prices = two_regime_prices(5)
    raw = len(regime_changes(label_regimes(prices, min_persistence=1)))
    smooth = len(regime_changes(label_regimes(prices, min_persistence=5)))
    assert smooth < raw


def test_regime_changes_and_windows_by_hand() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1])
    assert regime_changes(labels).tolist() == [4]
    assert np.flatnonzero(transition_windows(labels, radius=3)).tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert np.flatnonzero(transition_windows(labels, radius=0)).tolist() == [4]
    # unknown bars are skipped: a return to the same regime after a gap is no change
    gappy = np.array([-1, -1, 0, 0, -1, 0, 2])
    assert regime_changes(gappy).tolist() == [6]
    assert np.flatnonzero(transition_windows(gappy, radius=1)).tolist() == [5, 6]
    assert not transition_windows(np.zeros(5, dtype=np.int64)).any()
    with pytest.raises(ValueError):
        transition_windows(labels, radius=-1)


def acceptance_case(drop_at: int) -> tuple[np.ndarray, np.ndarray]:
    """200 bars, regime change at bar 100, small moves, one 25 % drop at ``drop_at``."""
    rng = np.random.default_rng(11)
    steps = 1 + rng.uniform(-0.003, 0.003, 200)
    steps[drop_at] = 0.75
    equity = 100_000 * np.cumprod(steps)
    labels = np.where(np.arange(200) < 100, CALM_UP, VOLATILE_DOWN).astype(np.int64)
    return equity, labels


def test_t2_drop_inside_a_transition_window_is_measured() -> None:
    equity, labels = acceptance_case(drop_at=101)  # between bars 100 and 101: inside [97, 103]
    dd = transition_drawdown(equity, labels, radius=3)
    assert dd == pytest.approx(0.25, abs=0.02)
    assert dd > 0.20  # rejected by a max_transition_drawdown = 0.20 gate


def test_t2_drop_at_the_window_edge_is_measured() -> None:
    equity, labels = acceptance_case(drop_at=103)  # last step inside the window
    assert transition_drawdown(equity, labels, radius=3) > 0.20
    equity, labels = acceptance_case(drop_at=97)  # the step INTO the window is not inside it
    assert transition_drawdown(equity, labels, radius=3) < 0.05


def test_t2_drop_far_from_any_change_is_not_counted() -> None:
    equity, labels = acceptance_case(drop_at=30)
    assert transition_drawdown(equity, labels, radius=3) < 0.05


def test_transition_drawdown_uses_each_window_own_peak() -> None:
    # the account fell 50 % long before the window; inside it, it only dipped 10 % from 60
    equity = np.array([100, 50, 50, 50, 50, 60, 54, 60, 60, 60, 60, 60], dtype=np.float64)
    labels = np.array([0] * 6 + [1] * 6)
    assert transition_drawdown(equity, labels, radius=3) == pytest.approx(0.1)
    assert transition_drawdown(equity, np.zeros(12, dtype=np.int64)) == 0.0
    with pytest.raises(ValueError):
        transition_drawdown(equity, labels[:-1])


def test_equal_weight_index_by_hand() -> None:
    panel = np.array([[10.0, math.nan], [11.0, 20.0], [11.0, 22.0]])
    # bar 1: only symbol 0 priced at both bars -> +10 %; bar 2: mean(0 %, +10 %) = +5 %
    assert equal_weight_index(panel) == pytest.approx([1.0, 1.1, 1.155])
    leading = equal_weight_index(np.array([[math.nan], [10.0], [11.0]]))
    assert math.isnan(leading[0]) and leading[1:] == pytest.approx([1.0, 1.1])
    with pytest.raises(ValueError):
        equal_weight_index(np.ones(3))


def test_market_regimes_of_a_panel() -> None:
    prices = np.column_stack([two_regime_prices(s) for s in (1, 2, 3)])
    frame = pd.DataFrame(prices)
    labels = market_regimes(frame)
    assert labels.shape == (600,)
    assert np.mean(np.isin(labels[100:300], [CALM_UP, VOLATILE_UP])) > 0.95
    assert np.mean(np.isin(labels[350:], [VOLATILE_UP, VOLATILE_DOWN])) > 0.95


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    cut=st.integers(0, 299),
    persistence=st.integers(1, 6),
)
def test_labels_have_no_look_ahead(seed: int, cut: int, persistence: int) -> None:
    rng = np.random.default_rng(seed)
    prices = 50 * np.exp(np.cumsum(rng.normal(0, rng.uniform(0.005, 0.04), 300)))
    changed = prices.copy()
    changed[cut + 1 :] *= np.exp(rng.normal(0, 0.2, 299 - cut))
    a = label_regimes(prices, vol_window=10, trend_window=20, min_persistence=persistence)
    b = label_regimes(changed, vol_window=10, trend_window=20, min_persistence=persistence)
    assert np.array_equal(a[: cut + 1], b[: cut + 1])


@settings(max_examples=100, deadline=None)
@given(
    equity=st.lists(st.floats(1e-3, 1e6), min_size=1, max_size=120),
    seed=st.integers(0, 2**32 - 1),
    radius=st.integers(0, 5),
)
def test_transition_drawdown_is_a_fraction(equity: list[float], seed: int, radius: int) -> None:
    labels = np.random.default_rng(seed).integers(-1, 4, len(equity))
    dd = transition_drawdown(equity, labels, radius=radius)
    assert 0.0 <= dd <= 1.0
