"""Exact accounting of the portfolio simulator (hand-computed cases) and its invariants."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.core.backtest.metrics import RETURN_OVER_DRAWDOWN_CAP
from aistock_actors.core.backtest.simulator import CostModel, simulate, simulate_frame

NAN = math.nan


def col(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)[:, None]


def test_three_bar_long_then_flat_with_commission_and_spread_to_the_cent() -> None:
    # cash 10,000; commission 0.1 %; half-spread 10 bps; fills at the NEXT bar's open.
    # bar 0: target 1.0 decided, nothing filled yet            -> equity 10,000.00
    # bar 1: buy 10,000 / 100 = 100 sh @ open 100 = 10,000.00 notional
    #        commission 10.00 + spread 10.00 = 20.00            -> cash -20.00
    #        close 105: equity = -20 + 100 * 105                -> 10,480.00
    #        target 0.0 decided
    # bar 2: sell 100 sh @ open 110 = 11,000.00 notional
    #        commission 11.00 + spread 11.00 = 22.00            -> cash -20 + 11,000 - 22
    #        equity                                             -> 10,958.00
    # trade: pnl = 11,000 - 10,000 - 20 - 22 = 958.00; return 958 / 10,000 = 9.58 %
    res = simulate(
        col(100, 105, 108),
        col(1.0, 0.0, 0.0),
        open_=col(99, 100, 110),
        costs=CostModel(commission_rate=0.001, half_spread_bps=10.0, impact_bps=0.0),
        initial_cash=10_000.0,
    )
    assert np.round(res.equity, 2).tolist() == [10_000.00, 10_480.00, 10_958.00]
    assert res.fills[:, 0].tolist() == [0.0, 100.0, -100.0]
    assert res.positions[:, 0].tolist() == [0.0, 100.0, 0.0]
    assert np.round(res.costs[:, 0], 2).tolist() == [0.0, 20.00, 22.00]
    tr = res.trades
    assert len(tr) == 1
    assert (tr.symbol[0], tr.side[0], tr.entry_bar[0], tr.exit_bar[0]) == (0, 1, 1, 2)
    assert (tr.entry_price[0], tr.exit_price[0]) == (100.0, 110.0)
    assert tr.pnl[0] == pytest.approx(958.00, abs=0.005)
    assert tr.ret[0] == pytest.approx(0.0958, abs=1e-12)
    assert bool(tr.closed[0])
    m = res.metrics
    assert m.total_return == pytest.approx(0.0958, abs=1e-12)
    assert m.total_costs == pytest.approx(42.00, abs=0.005)
    assert (m.trade_count, m.win_rate, m.max_drawdown) == (1, 1.0, 0.0)
    assert m.return_over_drawdown == RETURN_OVER_DRAWDOWN_CAP
    # per-bar returns against the previous equity (bar 0 against initial cash)
    assert res.returns == pytest.approx([0.0, 0.048, 10_958 / 10_480 - 1], abs=1e-12)
    r = np.array([0.0, 0.048, 10_958 / 10_480 - 1])
    assert m.sharpe == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252), rel=1e-12)
    # turnover: (10,000 + 11,000) traded / mean equity of [10,000, 10,000, 10,480, 10,958],
    # annualised over 3 bars
    assert m.turnover == pytest.approx(21_000 / 10_359.5 * 252 / 3, rel=1e-12)


def test_three_bar_fill_at_close() -> None:
    # bar 0: buy 100 sh @ close 100, costs 10 + 10 -> cash -20, equity 9,980
    # bar 1: sell 100 sh @ close 105, costs 10.50 + 10.50 -> cash -20 + 10,500 - 21 = 10,459
    res = simulate(
        col(100, 105, 110),
        col(1.0, 0.0, 0.0),
        fill="close",
        costs=CostModel(commission_rate=0.001, half_spread_bps=10.0, impact_bps=0.0),
        initial_cash=10_000.0,
    )
    assert np.round(res.equity, 2).tolist() == [9_980.00, 10_459.00, 10_459.00]
    assert res.trades.pnl[0] == pytest.approx(459.00, abs=0.005)
    assert (res.trades.entry_bar[0], res.trades.exit_bar[0]) == (0, 1)


def test_short_round_trip() -> None:
    # bar 1: short 100 sh @ 100 -> cash 10,000 + 10,000 - 10 = 19,990; close 95: 19,990 - 9,500
    # bar 2: cover 100 sh @ 90 -> cash 19,990 - 9,000 - 9 = 10,981
    res = simulate(
        col(100, 95, 92),
        col(-1.0, 0.0, 0.0),
        open_=col(99, 100, 90),
        costs=CostModel(commission_rate=0.001, half_spread_bps=0.0, impact_bps=0.0),
        initial_cash=10_000.0,
    )
    assert np.round(res.equity, 2).tolist() == [10_000.00, 10_490.00, 10_981.00]
    assert res.trades.side[0] == -1
    assert res.trades.pnl[0] == pytest.approx(981.00, abs=0.005)
    assert res.trades.ret[0] == pytest.approx(0.0981, abs=1e-12)


def test_flip_splits_the_reversal_cost_between_the_two_trades() -> None:
    # whole shares, commission 0.1 %:
    # bar 1: buy 100 @ 100, cost 10 -> cash -10
    # bar 2: open 110, equity -10 + 11,000 = 10,990 -> -10,990 / 110 = -99.9 -> -99 sh
    #        sell 199 @ 110 = 21,890, cost 21.89 -> cash 21,858.11; close 108 -> 11,166.11
    # bar 3: buy 99 @ 100 = 9,900, cost 9.90 -> cash 11,948.21
    # long:  1,000 - 10 - 21.89 * 100/199 (= 11.00) = 979.00
    # short:   990 - 21.89 * 99/199 (= 10.89) - 9.90 = 969.21
    res = simulate(
        col(100, 105, 108, 101),
        col(1.0, -1.0, 0.0, 0.0),
        open_=col(99, 100, 110, 100),
        costs=CostModel(commission_rate=0.001, half_spread_bps=0.0, impact_bps=0.0),
        initial_cash=10_000.0,
        integer_shares=True,
    )
    assert np.round(res.equity, 2).tolist() == [10_000.00, 10_490.00, 11_166.11, 11_948.21]
    tr = res.trades
    assert tr.side.tolist() == [1, -1]
    assert tr.entry_bar.tolist() == [1, 2] and tr.exit_bar.tolist() == [2, 3]
    assert tr.pnl == pytest.approx([979.00, 969.21], abs=0.005)
    assert tr.costs == pytest.approx([21.00, 20.79], abs=0.005)
    assert tr.exit_price.tolist() == [110.0, 100.0]


def test_resizing_on_the_same_side_is_one_trade_with_average_entry() -> None:
    # no costs. bar 1: 0.5 * 10,000 / 100 = 50 sh, cash 5,000
    # bar 2: equity @ open 125 = 11,250 -> 90 sh: buy 40 @ 125 = 5,000, cash 0
    # bar 3: sell 90 @ 110 = 9,900.  entry notional 10,000 over 90 sh; pnl -100; return -1 %
    res = simulate(
        col(100, 120, 130, 111),
        col(0.5, 1.0, 0.0, 0.0),
        open_=col(99, 100, 125, 110),
        costs=CostModel(commission_rate=0.0, half_spread_bps=0.0, impact_bps=0.0),
        initial_cash=10_000.0,
    )
    assert res.fills[:, 0] == pytest.approx([0, 50, 40, -90])
    tr = res.trades
    assert len(tr) == 1
    assert tr.entry_price[0] == pytest.approx(10_000 / 90)
    assert tr.exit_price[0] == pytest.approx(110.0)
    assert tr.pnl[0] == pytest.approx(-100.0)
    assert tr.ret[0] == pytest.approx(-0.01)
    assert res.equity[-1] == pytest.approx(9_900.0)


def test_constant_target_is_buy_and_hold_without_rebalancing() -> None:
    rng = np.random.default_rng(3)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (300, 2)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.003, close.shape))
    res = simulate(
        close,
        np.full(close.shape, 0.5),
        open_=open_,
        costs=CostModel(commission_rate=0.001, half_spread_bps=0.0, impact_bps=0.0),
        initial_cash=100_000.0,
    )
    assert np.count_nonzero(res.fills) == 2  # one entry per symbol, never rebalanced
    shares = 0.5 * 100_000.0 / open_[1]
    assert res.positions[-1] == pytest.approx(shares)
    cash = 100_000.0 - 100_000.0 - 0.001 * 100_000.0
    assert res.equity[1:] == pytest.approx(cash + close[1:] @ shares)
    assert res.metrics.exposure > 0.9
    assert res.metrics.trade_count == 0 and len(res.trades) == 2
    assert not res.trades.closed.any()


def test_nan_prices_defer_orders_and_value_at_last_known_price() -> None:
    # symbol 0 is listed at bar 2; its open is missing at bar 4, its close at bar 4
    close = np.array([[NAN, 20], [NAN, 20], [10, 20], [11, 20], [NAN, 20], [12, 20]])
    open_ = np.array([[NAN, 20], [NAN, 20], [10, 20], [10.5, 20], [NAN, 20], [12.5, 20]])
    target = np.array([[1.0, 0], [1.0, 0], [1.0, 0], [0.0, 0], [0.0, 0], [0.0, 0]])
    res = simulate(
        close, target, open_=open_, costs=CostModel(
            commission_rate=0.0,
            half_spread_bps=0.0,
            impact_bps=0.0,
        ), initial_cash=10_000.0
    )
    assert res.fills[:, 0].tolist() == [0, 0, 1_000, 0, 0, -1_000]  # buy at bar 2, sell at bar 5
    assert res.equity.tolist() == [10_000, 10_000, 10_000, 11_000, 11_000, 12_500]
    assert res.trades.entry_bar.tolist() == [2] and res.trades.exit_bar.tolist() == [5]
    assert not np.isnan(res.equity).any()


def test_pending_order_dropped_when_target_reverts_before_a_price_appears() -> None:
    close = col(NAN, NAN, 10, 10)
    res = simulate(close, col(1.0, 0.0, 0.0, 0.0), open_=close)
    assert not res.fills.any() and res.equity.tolist() == [100_000.0] * 4


def test_per_symbol_bps_override_and_negative_costs() -> None:
    close = np.full((3, 2), 100.0)
    target = np.array([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
    res = simulate(
        close,
        target,
        open_=close,
        initial_cash=10_000.0,
        costs=CostModel(
            commission_rate=0.0,
            half_spread_bps=10.0,
            impact_bps=0.0,
            symbol_bps=(NAN, -5.0),
        ),
    )
    # 5,000 notional each: default 10 bps -> 5.00; override -5 bps (price improvement) -> -2.50
    assert res.costs[1] == pytest.approx([5.0, -2.5])
    assert res.equity[-1] == pytest.approx(10_000 - 2.5)


def test_sqrt_participation_impact() -> None:
    close = col(100, 100, 100)
    volume = np.array([[1_000.0], [1_000.0], [NAN]])
    costs = CostModel(commission_rate=0.0, half_spread_bps=0.0, impact_bps=1000.0)
    res = simulate(
        close, col(1.0, 0.0, 0.0), open_=close, volume=volume, initial_cash=10_000.0, costs=costs
    )
    # bar 1: 100 sh of 1,000 traded -> 0.1 * sqrt(0.1) of 10,000 notional
    assert res.costs[1, 0] == pytest.approx(10_000 * 0.1 * math.sqrt(0.1))
    # bar 2: sell ~100 sh, volume unknown -> participation 1 -> 10 % of notional
    assert res.costs[2, 0] == pytest.approx(0.1 * abs(res.fills[2, 0]) * 100)
    with pytest.raises(ValueError, match="volume"):
        simulate(close, col(1.0, 0.0, 0.0), open_=close, costs=costs)


def test_integer_shares_truncate_toward_zero() -> None:
    res = simulate(
        col(30, 30),
        col(-1.0, -1.0),
        open_=col(30, 30),
        initial_cash=1_000.0,
        costs=CostModel(commission_rate=0.0, half_spread_bps=0.0, impact_bps=0.0),
        integer_shares=True,
    )
    assert res.positions[1, 0] == -33.0  # -1,000 / 30 = -33.3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": np.full((3, 1), 1.5)}, "target"),
        ({"target": np.zeros((2, 1))}, "target"),
        ({"open_": None}, "open"),
        ({"fill": "vwap"}, "fill"),
        ({"initial_cash": 0.0}, "initial_cash"),
        ({"costs": CostModel(
            commission_rate=0.001,
            half_spread_bps=0.0,
            impact_bps=0.0,
            symbol_bps=(1.0, 2.0),
        )}, "symbol_bps"),
        ({"symbols": ("a", "b")}, "symbols"),
        ({"index": np.arange(4)}, "index"),
    ],
)
def test_invalid_inputs_raise(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"target": np.zeros((3, 1)), "open_": col(1, 1, 1)} | kwargs
    with pytest.raises(ValueError, match=message):
        simulate(col(1, 1, 1), **args)  # type: ignore[arg-type]


def test_frame_wrapper_aligns_and_labels() -> None:
    idx = pd.bdate_range("2024-01-01", periods=4)
    close = pd.DataFrame({"AAA": [10.0, 11, 12, 13], "BBB": [20.0, 20, 21, 22]}, index=idx)
    target = pd.DataFrame({"BBB": [0.5, 0.5, 0.0, 0.0]}, index=idx)  # AAA missing -> flat
    res = simulate_frame(
        close, target, open_=close, symbol_bps={"BBB": 7.0}, costs=CostModel(
            commission_rate=0.0,
            half_spread_bps=0.0,
            impact_bps=0.0,
        )
    )
    assert res.symbols == ("AAA", "BBB")
    assert res.equity_series().index.equals(idx)
    assert res.costs[1, 1] == pytest.approx(50_000 * 7e-4)
    frame = res.trades_frame()
    assert frame["symbol"].tolist() == ["BBB"]
    assert frame["entry_time"].iloc[0] == idx[1] and frame["exit_time"].iloc[0] == idx[3]


def test_transition_drawdown_metric_uses_given_labels() -> None:
    close = col(100, 100, 75, 75, 75, 75, 75, 75, 75, 75)
    labels = np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 1])
    res = simulate(
        close,
        np.ones_like(close),
        fill="close",
        regime_labels=labels,
        costs=CostModel(commission_rate=0.0, half_spread_bps=0.0, impact_bps=0.0),
    )
    assert res.metrics.transition_max_drawdown == pytest.approx(0.25)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    fill=st.sampled_from(["next_open", "close"]),
    integer=st.booleans(),
)
def test_equity_change_equals_sum_of_trade_pnls(seed: int, fill: str, integer: bool) -> None:
    rng = np.random.default_rng(seed)
    n_bars, n_sym = 60, 4
    close = 20 * np.exp(np.cumsum(rng.normal(0, 0.03, (n_bars, n_sym)), axis=0))
    close[rng.random(close.shape) < 0.1] = NAN
    close[: rng.integers(0, 10), 0] = NAN  # listed late
    open_ = close * np.exp(rng.normal(0, 0.01, close.shape))
    target = np.round(rng.uniform(-1, 1, close.shape) * (rng.random(close.shape) < 0.3), 1) / 2
    target = pd.DataFrame(np.where(target == 0, NAN, target)).ffill().fillna(0).to_numpy()
    res = simulate(
        close,
        target,
        open_=open_,
        fill=fill,  # type: ignore[arg-type]
        costs=CostModel(commission_rate=0.001, half_spread_bps=3.0, impact_bps=0.0),
        integer_shares=integer,
        initial_cash=50_000.0,
    )
    assert np.isfinite(res.equity).all()
    assert res.equity[-1] - 50_000.0 == pytest.approx(res.trades.pnl.sum(), abs=1e-6)
    assert res.trades.costs.sum() == pytest.approx(res.metrics.total_costs, abs=1e-6)
    assert res.metrics.trade_count == int(res.trades.closed.sum())
    assert 0.0 <= res.metrics.max_drawdown <= 1.0


def test_large_panel_runs_fast() -> None:
    rng = np.random.default_rng(0)
    n_bars, n_sym = 2520, 500
    close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, (n_bars, n_sym)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.005, close.shape))
    monthly = np.sign(rng.normal(size=(n_bars // 21 + 1, n_sym))) / n_sym
    target = np.repeat(monthly, 21, axis=0)[:n_bars]
    start = time.perf_counter()
    res = simulate(close, target, open_=open_, costs=CostModel(
        commission_rate=0.001,
        half_spread_bps=5.0,
        impact_bps=0.0,
    ))
    elapsed = time.perf_counter() - start
    assert res.equity.shape == (n_bars,) and res.positions.shape == (n_bars, n_sym)
    assert elapsed < 5.0  # ~0.05 s on a laptop; generous for loaded CI machines


def test_trades_frame_marks_open_trades() -> None:
    idx = pd.bdate_range("2024-01-01", periods=3)
    close = pd.DataFrame({"AAA": [10.0, 11, 12]}, index=idx)
    res = simulate_frame(close, pd.DataFrame({"AAA": [1.0, 1, 1]}, index=idx), open_=close)
    frame = res.trades_frame()
    assert frame["exit_bar"].tolist() == [-1] and pd.isna(frame["exit_time"].iloc[0])
    assert frame["exit_price"].iloc[0] == 12.0 and not frame["closed"].iloc[0]
    empty = simulate(col(1, 1), col(0, 0), open_=col(1, 1)).trades_frame()
    assert len(empty) == 0 and "pnl" in empty.columns
