"""The no-trade band (issue #14): the backtest and the paper trader execute the same targets into
the same fills (a Hypothesis property), a position that only drifts inside the band is never
resized, one that drifts out of it is, and a drift never holds a position above its limit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.core.backtest.simulator import CostModel, FillLimits, simulate
from aistock_actors.core.trading.band import holds_in_band
from aistock_actors.core.trading.execution import execute_orders
from aistock_actors.core.trading.ledger import mark_to_market, new_ledger, plan_orders
from aistock_actors.core.trading.orders import Bar

COSTS = CostModel(commission_rate=0.0005, half_spread_bps=0.0, impact_bps=0.0)
VOLUME = 1e12  # never binding: the parity is about sizing, band and minimum notional


def paper_fills(close: np.ndarray, target: np.ndarray, band: float, floor: float,
                max_weight: float = math.inf) -> np.ndarray:
    """The paper trader's path, bar by bar: mark at the close, plan toward the bar's targets at
    that close (``plan_orders``), fill at the next bar's open (``execute_orders``), which is the
    previous close here. Returns the shares filled per bar and symbol."""
    n_bars, n_sym = close.shape
    symbols = [f"S{j}" for j in range(n_sym)]
    state, orders = new_ledger(100_000.0), []
    filled = np.zeros_like(close)
    for t in range(n_bars):
        if orders:
            bars = {s: Bar(open=close[t - 1, j], high=close[t - 1, j], low=close[t - 1, j],
                           close=close[t, j], volume=VOLUME) for j, s in enumerate(symbols)}
            state, fills, _ = execute_orders(
                state, orders, bars, COSTS, timestamp=f"t{t}", halted=lambda: False,
                max_volume_share=1.0, remainder_policy="cancel")
            for fill in fills:
                filled[t, symbols.index(fill.symbol)] += fill.quantity
        state, _ = mark_to_market(state, dict(zip(symbols, close[t], strict=True)), f"t{t}")
        weights = dict(zip(symbols, target[t], strict=True))
        orders = plan_orders(state, weights, dict(zip(symbols, close[t], strict=True)),
                             cycle_id=f"t{t}", model_id="m", min_order_notional=floor,
                             rebalance_band=band, max_weight=max_weight)
    return filled


def backtest_fills(close: np.ndarray, target: np.ndarray, band: float, floor: float,
                   max_weight: float = math.inf) -> np.ndarray:
    open_ = np.vstack([close[:1], close[:-1]])  # each bar opens at the previous close
    result = simulate(close, target, open_=open_, volume=np.full(close.shape, VOLUME),
                      costs=COSTS, limits=FillLimits(min_order_notional=floor,
                                                     rebalance_band=band, max_weight=max_weight))
    return result.fills


def spells(rng: np.random.Generator, n_bars: int, n_sym: int) -> np.ndarray:
    """Targets held for spells of 1-15 bars (as a rule strategy's are)."""
    target = np.zeros((n_bars, n_sym))
    for j in range(n_sym):
        t = 0
        while t < n_bars:
            length = int(rng.integers(1, 16))
            target[t:t + length, j] = rng.choice([-0.2, -0.1, 0.0, 0.0, 0.15, 0.2])
            t += length
    return target


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    band=st.sampled_from([0.0, 0.05, 0.25, 0.5]),
    floor=st.sampled_from([0.0, 100.0, 2_000.0]),
    vol=st.sampled_from([0.005, 0.03]),
)
def test_backtest_and_paper_trader_fill_the_same_targets_alike(
    seed: int, band: float, floor: float, vol: float
) -> None:
    """Property: the same targets, executed by the backtest and by the paper trader's
    ``plan_orders`` + ``execute_orders``, give the same fills, bar by bar and symbol by symbol."""
    rng = np.random.default_rng(seed)
    n_bars, n_sym = 80, 3
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, vol, (n_bars, n_sym)), axis=0))
    target = spells(rng, n_bars, n_sym)
    paper = paper_fills(close, target, band, floor)
    backtest = backtest_fills(close, target, band, floor)
    np.testing.assert_allclose(backtest, paper, rtol=1e-9, atol=1e-6)


def _drifting(n_bars: int, step: float) -> tuple[np.ndarray, np.ndarray]:
    close = 100.0 * (1.0 + step) ** np.arange(n_bars, dtype=float)[:, None]
    return close, np.full((n_bars, 1), 0.2)


def test_a_position_drifting_inside_the_band_is_never_resized() -> None:
    close, target = _drifting(20, 0.005)  # +10 % over the spell: the weight drifts ~0.2 -> 0.22
    for fills in (paper_fills(close, target, 0.25, 50.0),
                  backtest_fills(close, target, 0.25, 50.0)):
        assert np.count_nonzero(fills) == 1  # the opening fill only
    # With a zero band (the paper trader before the band) the drift is resized every bar
    # (~$100 each), in both.
    assert np.count_nonzero(paper_fills(close, target, 0.0, 50.0)) == 19
    assert np.count_nonzero(backtest_fills(close, target, 0.0, 50.0)) == 19


def test_a_drift_out_of_the_band_is_resized_in_both() -> None:
    close, target = _drifting(30, 0.02)  # the weight leaves the 10 % band after a few bars
    paper = paper_fills(close, target, 0.1, 100.0)
    backtest = backtest_fills(close, target, 0.1, 100.0)
    assert 2 <= np.count_nonzero(paper) < 29
    assert np.all(paper[2:][paper[2:] != 0.0] < 0.0)  # each resize trims the grown position
    np.testing.assert_allclose(backtest, paper, rtol=1e-9, atol=1e-6)


def test_a_drift_never_holds_a_position_above_its_limit() -> None:
    close, target = _drifting(12, 0.01)
    # target 0.2 at a 0.205 limit: held while inside the limit, trimmed once above it.
    for fills in (paper_fills(close, target, 0.5, 0.0, max_weight=0.205),
                  backtest_fills(close, target, 0.5, 0.0, max_weight=0.205)):
        assert np.count_nonzero(fills[1:4]) == 1  # opened, then held at 0.202
        assert np.count_nonzero(fills[4:]) >= 1  # at 0.2041... 0.206 > 0.205: trimmed


@pytest.mark.parametrize(("current", "target", "band", "held"), [
    (0.21, 0.2, 0.1, True),
    (0.17, 0.2, 0.1, False),
    (-0.19, -0.2, 0.1, True),
    (0.0, 0.2, 0.5, False),  # opening
    (0.1, 0.0, 0.5, False),  # closing
    (-0.2, 0.2, 5.0, False),  # flipping
    (0.21, 0.2, 0.0, False),  # no band
    (0.21, 0.2, 0.1, True),
])
def test_holds_in_band(current: float, target: float, band: float, held: bool) -> None:
    assert holds_in_band(current, target, band) is held
    assert not holds_in_band(current, target, band, max_weight=abs(current) * 0.99)
