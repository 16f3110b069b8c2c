"""The backtest fills like the paper trader: volume cap and minimum order notional (issue #14).

``FillLimits`` applies ``paper.max_volume_share`` (a fill takes at most that share of its bar's
volume; the rest is dropped) and ``paper.min_order_notional`` (smaller trades are skipped unless
they close a position) inside the simulator, so a backtest never promises a position paper
trading could not get. Without limits the engine is the bit-identical one the reference checks.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.core.backtest.simulator import CostModel, FillLimits, simulate
from aistock_actors.core.trading.execution import execute_orders
from aistock_actors.core.trading.ledger import new_ledger
from aistock_actors.core.trading.orders import Bar, Order

COSTS = CostModel(commission_rate=0.0005, half_spread_bps=2.0, impact_bps=0.0)


def _prices(n: int) -> np.ndarray:
    return np.linspace(100.0, 110.0, n)[:, None]


def test_a_fill_takes_at_most_the_volume_share_and_the_rest_is_dropped() -> None:
    close = _prices(6)
    volume = np.full((6, 1), 100.0)  # 100 shares a bar; 10 % = 10 shares
    target = np.array([[1.0], [1.0], [1.0], [1.0], [1.0], [1.0]])
    capped = simulate(close, target, open_=close, volume=volume, costs=COSTS,
                      limits=FillLimits(max_volume_share=0.1))
    free = simulate(close, target, open_=close, volume=volume, costs=COSTS)
    assert free.positions[1, 0] > 900  # ~1,000 shares: all of equity
    assert capped.positions[1, 0] == pytest.approx(10.0)
    # The target counts as executed: nothing tops it up on later bars (remainder dropped).
    assert np.allclose(capped.positions[1:, 0], 10.0)
    assert capped.metrics.total_costs < free.metrics.total_costs


def test_no_fill_without_a_valid_volume() -> None:
    close = _prices(4)
    volume = np.array([[100.0], [np.nan], [0.0], [100.0]])
    target = np.array([[1.0], [0.0], [0.0], [0.0]])
    result = simulate(close, target, open_=close, volume=volume, costs=COSTS,
                      limits=FillLimits(max_volume_share=0.5))
    assert np.all(result.positions[:, 0] == 0.0)  # the fill bar (1) has no volume: no fill


def test_small_resizes_are_skipped_but_a_position_is_always_closed() -> None:
    close = np.full((5, 1), 100.0)
    volume = np.full((5, 1), 1e9)
    # Bar 0: open 50 % of $100k; bar 1: resize to 50.05 % (+$50: under the $100 minimum);
    # bar 2: a tiny position would remain... close it at bar 3: always executed.
    target = np.array([[0.5], [0.5005], [0.5005], [0.0], [0.0]])
    result = simulate(close, target, open_=close, volume=volume, costs=COSTS,
                      limits=FillLimits(min_order_notional=100.0))
    shares = result.positions[:, 0]
    assert shares[1] == pytest.approx(500.0)  # opened: $50,000 / $100
    assert shares[2] == shares[1]  # the $50 resize was skipped
    assert shares[4] == 0.0  # closed in full


def test_a_small_opening_trade_is_skipped() -> None:
    close = np.full((3, 1), 100.0)
    target = np.array([[0.0005], [0.0005], [0.0005]])  # $50 of $100k
    result = simulate(close, target, open_=close, costs=COSTS,
                      limits=FillLimits(min_order_notional=100.0))
    assert np.all(result.positions == 0.0)
    assert result.metrics.total_costs == 0.0


def test_no_limits_changes_nothing() -> None:
    rng = np.random.default_rng(3)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, (300, 4)), axis=0))
    volume = rng.uniform(1e3, 1e5, (300, 4))
    target = np.round(rng.uniform(-0.25, 0.25, (300, 4)), 1)
    costs = CostModel(commission_rate=0.0005, half_spread_bps=2.0, impact_bps=200.0)
    plain = simulate(close, target, open_=close, volume=volume, costs=costs)
    inactive = simulate(close, target, open_=close, volume=volume, costs=costs,
                        limits=FillLimits())
    assert np.array_equal(plain.equity, inactive.equity)
    assert np.array_equal(plain.positions, inactive.positions)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    share=st.floats(0.001, 1.0),
    floor=st.sampled_from([0.0, 50.0, 1_000.0]),
    impact=st.sampled_from([0.0, 200.0]),
)
def test_every_fill_stays_inside_the_volume_share(
    seed: int, share: float, floor: float, impact: float
) -> None:
    """Property: no backtest fill is larger than ``max_volume_share`` of its bar's volume, and
    no fill under the minimum notional happens unless it closes the position or the volume cap
    cut it (the minimum applies to the planned trade, as in the paper trader's plan_orders)."""
    rng = np.random.default_rng(seed)
    n_bars, n_sym = 60, 3
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.02, (n_bars, n_sym)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.005, (n_bars, n_sym)))
    volume = rng.choice([np.nan, 0.0, 50.0, 500.0, 5e4], size=(n_bars, n_sym))
    target = rng.choice([-0.3, -0.1, 0.0, 0.1, 0.3], size=(n_bars, n_sym))
    costs = CostModel(commission_rate=0.0005, half_spread_bps=2.0, impact_bps=impact)
    result = simulate(close, target, open_=open_, volume=np.nan_to_num(volume, nan=np.nan),
                      costs=costs, limits=FillLimits(max_volume_share=share,
                                                     min_order_notional=floor))
    fills = np.abs(result.fills)
    valid = np.isfinite(volume) & (volume > 0)
    assert np.all(fills[~valid] == 0.0)
    assert np.all(fills[valid] <= share * volume[valid] * (1 + 1e-12))
    traded = result.fills != 0.0
    notional = fills * open_
    closes = result.positions == 0.0
    cut = np.isclose(fills, share * np.nan_to_num(volume))
    assert np.all((notional[traded] >= floor) | closes[traded] | cut[traded])


def test_the_backtest_cap_matches_the_paper_traders_fill() -> None:
    """One order on a thin bar: the backtest's capped fill is the paper trader's fill."""
    share, bar_volume = 0.1, 300.0
    order = Order(order_id="o1", symbol="AAA", quantity=1_000.0, decision_price=100.0,
                  cycle_id="c", model_id="m")
    bar = Bar(open=100.0, high=100.0, low=100.0, close=100.0, volume=bar_volume)
    paper_state, fills, _ = execute_orders(
        new_ledger(100_000.0), [order], {"AAA": bar}, COSTS, timestamp="t1",
        halted=lambda: False, max_volume_share=share, remainder_policy="cancel",
    )
    close = np.full((2, 1), 100.0)
    result = simulate(close, np.array([[0.999], [0.999]]), open_=close,
                      volume=np.full((2, 1), bar_volume), costs=COSTS,
                      limits=FillLimits(max_volume_share=share))
    assert fills[0].quantity == pytest.approx(result.positions[1, 0]) == pytest.approx(30.0)
    assert paper_state.positions["AAA"].quantity == pytest.approx(30.0)
