"""The event-driven simulator against a frozen copy of the bar-by-bar one it replaced.

``tests/core/backtest/_reference_backtest_v1.py`` is ``aistock_actors/core/backtest/simulator.py``
as it was before
the rewrite (a Python loop over every bar), kept verbatim as the oracle. Every output of
``simulate`` (equity, returns, positions, fills, costs, gross exposure, the trade log, every metric)
must agree with it within 1e-9 relative on randomized cases: NaN and non-positive prices (late
listings, gaps, delistings), targets with holds, resizes, flips, NaN and -0.0, both fill modes,
commission + spread + impact with missing / zero volumes, per-symbol bps (NaN, negative), whole
shares, supplied or default regime labels, C- and Fortran-ordered, 1-D and list inputs. (On the
machine where it was written the two agree bit for bit; the contract is 1e-9.)
"""

from __future__ import annotations

import importlib.util
import math
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.core.backtest import engine as backtest_engine
from aistock_actors.core.backtest import loop as backtest_loop
from aistock_actors.core.backtest import regime_labels as backtest_regimes
from aistock_actors.core.backtest import simulator as backtest
from aistock_actors.core.market import regimes

NAN = math.nan
RTOL = 1e-9


def _load_oracle() -> ModuleType:
    path = Path(__file__).with_name("_reference_backtest_v1.py")
    spec = importlib.util.spec_from_file_location("_reference_backtest_v1", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module while being created
    spec.loader.exec_module(module)
    return module


ORACLE = _load_oracle()


def make_case(seed: int) -> tuple[Any, Any, dict[str, Any], tuple[Any, ...]]:
    """``(close, target, simulate kwargs, CostModel args)`` of a random case."""
    rng = np.random.default_rng(seed)
    n_bars = int(rng.choice([1, 2, 3, 5, 20, 60, 150]))
    n_sym = int(rng.choice([1, 1, 2, 3, 5, 8, 12, 40]))
    close = 20 * np.exp(np.cumsum(rng.normal(0, 0.03, (n_bars, n_sym)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.01, close.shape))
    if rng.random() < 0.7:  # missing and non-positive prices
        close[rng.random(close.shape) < rng.uniform(0, 0.2)] = NAN
        open_[rng.random(close.shape) < rng.uniform(0, 0.2)] = NAN
        if rng.random() < 0.3:
            close[rng.random(close.shape) < 0.03] = 0.0
            open_[rng.random(close.shape) < 0.03] = -1.0
        late = rng.integers(0, max(1, n_bars // 2))  # listed late
        close[:late, 0] = NAN
        open_[:late, 0] = NAN
        if n_sym > 1 and rng.random() < 0.5:  # delisted
            close[-rng.integers(1, n_bars + 1) :, -1] = NAN
    levels = np.array([-1.0, -0.5, -0.3, 0.0, 0.0, 0.2, 0.5, 1.0])
    scale = float(rng.choice([1, 2, n_sym]))
    wanted = rng.choice(levels, size=(n_bars, n_sym)) / scale
    changes = rng.random((n_bars, n_sym)) < rng.uniform(0.05, 0.6)
    if rng.random() < 0.3:  # rebalances: many symbols change on the same bars
        changes = np.repeat(rng.random((n_bars, 1)) < 0.2, n_sym, axis=1)
    target = np.where(changes, wanted, NAN)
    target[0] = np.nan_to_num(target[0])
    held = pd.DataFrame(target).ffill().to_numpy(copy=True)  # holds between changes
    held[rng.random(held.shape) < 0.05] = NAN  # NaN means 0
    if rng.random() < 0.2:
        held[rng.random(held.shape) < 0.1] = -0.0
    initial_cash = float(rng.choice([1_000.0, 50_000.0, 1e6]))
    volume, impact = None, 0.0
    if rng.random() < 0.4:  # a position is 0.02 to 20 bars' volume
        volume = rng.uniform(0.05, 50, close.shape) * initial_cash / 20
        volume[rng.random(close.shape) < 0.1] = NAN
        volume[rng.random(close.shape) < 0.05] = 0.0
        impact = float(rng.choice([0.0, 0.05, 0.1]))
    bps = None
    if rng.random() < 0.4:
        bps = tuple(float(x) for x in rng.choice([NAN, -5.0, 0.0, 7.5, 20.0], n_sym))
    costs = (
        float(rng.choice([0.0, 0.001, 0.0005])),
        float(rng.choice([0.0, 3.0, 10.0])),
        impact,
        bps,
    )
    kwargs: dict[str, Any] = {
        "open_": open_,
        "volume": volume,
        "fill": str(rng.choice(["next_open", "close"])),
        "integer_shares": bool(rng.random() < 0.3),
        "initial_cash": initial_cash,
        "regime_labels": rng.integers(-1, 4, n_bars) if rng.random() < 0.3 else None,
        "regime_radius": int(rng.choice([0, 3, 5])),
    }
    layout = rng.random()
    if layout < 0.2:  # pandas-style Fortran order
        close, held = np.asfortranarray(close), np.asfortranarray(held)
        kwargs["open_"] = np.asfortranarray(open_)
    elif layout < 0.3 and n_sym == 1:  # 1-D series
        close, held, kwargs["open_"] = close[:, 0], held[:, 0], open_[:, 0]
    elif layout < 0.35:  # nested lists
        close, held = close.tolist(), held.tolist()
    return close, held, kwargs, costs


def _same(name: str, ours: Any, ref: Any) -> None:
    a, b = np.asarray(ours), np.asarray(ref)
    assert a.shape == b.shape and a.dtype == b.dtype, f"{name}: {a.shape} {a.dtype} / {b.dtype}"
    if a.dtype.kind == "f":
        finite = np.abs(b[np.isfinite(b)])
        scale = float(finite.max()) if finite.size else 0.0
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * scale, err_msg=name)
    else:
        np.testing.assert_array_equal(a, b, err_msg=name)


def assert_matches_oracle(ours: backtest.BacktestResult, ref: Any) -> None:
    for field in ("equity", "returns", "positions", "fills", "costs", "gross_exposure", "index"):
        _same(field, getattr(ours, field), getattr(ref, field))
    for field in backtest.TradeLog.__slots__:
        _same(f"trades.{field}", getattr(ours.trades, field), getattr(ref.trades, field))
    mine, theirs = msgspec.structs.asdict(ours.metrics), msgspec.structs.asdict(ref.metrics)
    assert mine.keys() == theirs.keys()
    for key, value in theirs.items():
        assert type(mine[key]) is type(value), key
        assert mine[key] == pytest.approx(value, rel=RTOL, abs=RTOL, nan_ok=True), key
    assert (ours.symbols, ours.initial_cash) == (ref.symbols, ref.initial_cash)


def unified(
    commission_rate: float = 0.001,
    spread_bps: float = 0.0,
    impact_coef: float = 0.0,
    symbol_bps: tuple[float, ...] | None = None,
) -> Any:
    """The oracle's cost arguments (its own CostModel's fields and units) as the system's one
    CostModel: half spread in bps, impact in bps at 100 % participation."""
    return backtest.CostModel(commission_rate=commission_rate, half_spread_bps=spread_bps,
                              impact_bps=impact_coef * 1e4, symbol_bps=symbol_bps)


def run_both(seed: int) -> Any:
    close, target, kwargs, costs = make_case(seed)
    with warnings.catch_warnings():  # a rare case's account blows up: same numbers, not warnings
        warnings.simplefilter("ignore", RuntimeWarning)
        ours = backtest.simulate(close, target, costs=unified(*costs), **kwargs)
        ref = ORACLE.simulate(close, target, costs=ORACLE.CostModel(*costs), **kwargs)
    assert_matches_oracle(ours, ref)
    return ref


def test_seeded_battery_matches_the_bar_by_bar_oracle() -> None:
    fills_per_bar: list[int] = []
    for seed in range(400):
        ref = run_both(seed)
        fills_per_bar.extend(np.count_nonzero(ref.fills, axis=1).tolist())
    # The battery exercises every path: one fill, a few (Python floats), many (numpy) per bar.
    sizes = np.array(fills_per_bar)
    assert (sizes == 1).sum() > 1_000 and ((sizes > 1) & (sizes < 8)).sum() > 1_000
    assert (sizes >= 8).sum() > 100


def test_battery_matches_with_short_bars_on_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Where BLAS / numpy do not add short vectors left to right, bars with 2-7 fills take the
    # numpy path: it must agree as well.
    monkeypatch.setattr(backtest_loop, "short_sums_are_sequential", lambda: False)
    for seed in range(150):
        run_both(seed)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(400, 2**32 - 1))
def test_random_cases_match_the_bar_by_bar_oracle(seed: int) -> None:
    run_both(seed)


def sma_panel(n_bars: int, n_sym: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Long/short SMA(10/30) weights on a random universe with gaps, from pandas (F-ordered)."""
    rng = np.random.default_rng(seed)
    close = pd.DataFrame(100 * np.exp(np.cumsum(rng.normal(2e-4, 0.02, (n_bars, n_sym)), axis=0)))
    open_ = close * np.exp(rng.normal(0, 0.004, close.shape))
    close = close.mask(rng.random(close.shape) < 0.02)
    open_ = open_.mask(rng.random(close.shape) < 0.02)
    fast, slow = close.rolling(10).mean(), close.rolling(30).mean()
    weight = np.where(fast > slow, 1.0, np.where(fast < slow, -0.5, 0.0)) / n_sym
    return close.to_numpy(copy=True), open_.to_numpy(copy=True), weight


@pytest.mark.parametrize(("fill", "integer"), [("next_open", False), ("close", True)])
def test_a_long_multi_symbol_run_matches_the_oracle(fill: str, integer: bool) -> None:
    close, open_, weight = sma_panel(1_000, 40, seed=5)
    volume = np.full(close.shape, 5_000.0)
    args = {"open_": open_, "volume": volume, "fill": fill, "integer_shares": integer}
    cost = (0.001, 2.0, 0.05, tuple([NAN, -1.0] * 20))
    ours = backtest.simulate(close, weight, costs=unified(*cost), **args)
    ref = ORACLE.simulate(close, weight, costs=ORACLE.CostModel(*cost), **args)
    assert len(ref.trades) > 500  # a real workout: many round trips and flips
    assert_matches_oracle(ours, ref)


@pytest.mark.parametrize("shape", [(0, 1), (1, 1), (2, 1), (3, 0), (1, 3), (4, 2)])
@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_degenerate_shapes_match_the_oracle(shape: tuple[int, int], fill: str) -> None:
    close = np.full(shape, 10.0)
    target = np.full(shape, 0.5)
    ours = backtest.simulate(close, target, open_=close, fill=fill)  # type: ignore[arg-type]
    ref = ORACLE.simulate(close, target, open_=close, fill=fill)
    assert_matches_oracle(ours, ref)


def test_frame_wrapper_matches_the_oracle() -> None:
    idx = pd.bdate_range("2024-01-01", periods=80)
    close_np, open_np, weight = sma_panel(80, 3, seed=9)
    close = pd.DataFrame(close_np, index=idx, columns=["A", "B", "C"])
    open_ = pd.DataFrame(open_np, index=idx, columns=["A", "B", "C"])
    target = pd.DataFrame(weight[:, :2], index=idx, columns=["C", "A"])  # B missing -> flat
    kwargs = {"open_": open_, "symbol_bps": {"A": 4.0, "C": -2.0}, "integer_shares": True}
    ours = backtest.simulate_frame(close, target, **kwargs)  # type: ignore[arg-type]
    ref = ORACLE.simulate_frame(close, target, **kwargs)
    assert_matches_oracle(ours, ref)
    pd.testing.assert_frame_equal(ours.trades_frame(), ref.trades_frame())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"target": np.full((3, 1), 1.5)},
        {"target": np.array([[0.5], [-np.inf], [0.0]])},
        {"target": np.array([[0.5], [np.nan], [1.0 + 1e-13]])},
        {"target": np.zeros((2, 1))},
        {"open_": None},
        {"open_": np.ones((2, 1))},
        {"fill": "vwap"},
        {"fill": "vwap", "open_": None},
        {"initial_cash": 0.0},
        {"initial_cash": math.inf},
        {"costs": "symbol_bps"},
        {"costs": "impact"},
        {"volume": np.ones((3, 2))},
        {"symbols": ("a", "b")},
        {"index": np.arange(4)},
    ],
)
def test_invalid_inputs_raise_like_the_oracle(kwargs: dict[str, Any]) -> None:
    def call(module: Any) -> str:
        args: dict[str, Any] = {"target": np.zeros((3, 1)), "open_": np.ones((3, 1))} | kwargs
        if args.get("costs") == "symbol_bps":
            args["costs"] = (unified(0.001, symbol_bps=(1.0, 2.0)) if module is backtest
                             else module.CostModel(symbol_bps=(1.0, 2.0)))
        elif args.get("costs") == "impact":
            args["costs"] = (unified(0.001, impact_coef=0.1) if module is backtest
                             else module.CostModel(impact_coef=0.1))
        try:
            module.simulate(np.ones((3, 1)), **args)
        except ValueError as exc:
            return str(exc)
        return "no error"

    assert call(backtest) == call(ORACLE)


def test_inputs_are_neither_modified_nor_aliased() -> None:
    close, open_, weight = sma_panel(200, 4, seed=3)
    weight[::7] = NAN
    originals = [a.copy() for a in (close, open_, weight)]
    res = backtest.simulate(close, weight, open_=open_, fill="close")
    for before, after in zip(originals, (close, open_, weight), strict=True):
        np.testing.assert_array_equal(before, after)
    equity, positions = res.equity.copy(), res.positions.copy()
    close[:] = open_[:] = weight[:] = 0.0
    np.testing.assert_array_equal(res.equity, equity)
    np.testing.assert_array_equal(res.positions, positions)


def random_panel(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(0, 200)), int(rng.integers(0, 12)))
    panel = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, shape), axis=0))
    if rng.random() < 0.7:
        panel[rng.random(shape) < rng.uniform(0, 0.5)] = NAN
        panel[rng.random(shape) < 0.02] = -1.0
    return np.asfortranarray(panel) if rng.random() < 0.3 else panel


@pytest.mark.parametrize("seed", range(40))
def test_fast_market_regimes_equal_the_regimes_module(seed: int) -> None:
    panel = random_panel(seed)
    ok = backtest_engine.valid_mask(panel)
    np.testing.assert_array_equal(
        backtest_regimes.equal_weight_index(panel, ok), regimes.equal_weight_index(panel)
    )
    np.testing.assert_array_equal(
        backtest_regimes.market_regimes(panel, ok), regimes.market_regimes(panel)
    )


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 300),
    radius=st.integers(0, 8),
    blocky=st.booleans(),
)
def test_fast_transition_drawdown_equals_the_regimes_module(
    seed: int, n: int, radius: int, blocky: bool
) -> None:
    rng = np.random.default_rng(seed)
    equity = 100 * np.exp(np.cumsum(rng.normal(0, 0.05, n)))
    if rng.random() < 0.2:
        equity -= rng.uniform(0, 150)  # peaks at or below zero
    if rng.random() < 0.1 and n:
        equity[rng.integers(0, n)] = NAN  # handled by the regimes module itself
    labels = rng.integers(-1, 4, n)
    if blocky:
        labels = np.repeat(rng.integers(-1, 4, n // 10 + 1), 10)[:n]
    fast = backtest_regimes.transition_drawdown(equity, labels, radius)
    assert fast == regimes.transition_drawdown(equity, labels, radius)
