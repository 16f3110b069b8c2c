"""The live rule weights (issue #13): bar by bar, after a restart, with gaps, NaN closes, flat
spells and a symbol appearing, they are exactly the full computation's newest weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.core.data.bars import bars_frame
from aistock_actors.core.strategy.live_rules import BarArrays, EwmCarry, LiveRuleWeights
from aistock_actors.core.strategy.rules import (
    AutocorrelationFit,
    AutocorrelationStrategy,
    SmaCross,
    TimeSeriesMomentum,
)
from aistock_actors.core.strategy.walkforward import latest_weights

DAY = 86_400 * 10**9
START = 1_600_000_000 * 10**9 // DAY * DAY


def universe(seed: int, n_symbols: int, n_bars: int, gaps: float, nans: float,
             new_at: int) -> dict[str, BarArrays]:
    """Random closes on a daily grid: bars dropped (gaps), NaN closes, flat spells, and a
    symbol ``NEW`` whose history starts at bar ``new_at``."""
    rng = np.random.default_rng(seed)
    grid = START + DAY * np.arange(n_bars, dtype=np.int64)
    out: dict[str, BarArrays] = {}
    for j in range(n_symbols + 1):
        moves = rng.normal(0.0, 0.02, n_bars) * (rng.random(n_bars) > 0.15)  # flat spells
        close = 100.0 * np.exp(np.cumsum(moves))
        close[rng.random(n_bars) < nans] = np.nan
        keep = rng.random(n_bars) >= gaps
        if j == n_symbols:
            keep[:new_at] = False
        values = np.repeat(close[keep][:, None], 5, axis=1)
        out["NEW" if j == n_symbols else f"S{j}"] = (grid[keep], values)
    return out


def up_to(arrays: dict[str, BarArrays], ts: int) -> dict[str, BarArrays]:
    cut = {s: (t[t <= ts], v[t <= ts]) for s, (t, v) in arrays.items()}
    return {s: a for s, a in cut.items() if len(a[0])}


def full(arrays: dict[str, BarArrays], strategy: object, state: object) -> dict[str, float]:
    frames = {s: bars_frame(t, v) for s, (t, v) in arrays.items()}
    return latest_weights(frames, strategy, state)  # type: ignore[arg-type]


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_symbols=st.integers(1, 4),
    gaps=st.sampled_from([0.0, 0.1, 0.3]),
    nans=st.sampled_from([0.0, 0.05]),
    new_at=st.integers(5, 35),
    restart_at=st.integers(5, 35),
    halflife=st.integers(1, 4),
    trade=st.booleans(),
)
def test_live_autocorrelation_weights_are_the_full_computations(
    seed: int, n_symbols: int, gaps: float, nans: float, new_at: int, restart_at: int,
    halflife: int, trade: bool,
) -> None:
    strategy = AutocorrelationStrategy(halflife=halflife, entry_bps=5.0, full_at=2.0)
    state = AutocorrelationFit(trade=trade, train_net_pnl=1.0 if trade else -1.0)
    arrays = universe(seed, n_symbols, 40, gaps, nans, new_at)
    live = LiveRuleWeights()
    held = 0
    for t in range(40):
        now = up_to(arrays, START + t * DAY)
        if not now:
            continue
        if t == restart_at:
            live = LiveRuleWeights()  # a restart: the carry is rebuilt from the whole history
        got = live.latest("m1", strategy, state, now)
        assert got == full(now, strategy, state), f"bar {t}"
        held += sum(w != 0.0 for w in got.values())
    assert trade or held == 0


def test_the_carry_is_rebuilt_for_a_new_model_a_late_bar_or_a_changed_close() -> None:
    strategy = AutocorrelationStrategy(halflife=2, entry_bps=5.0, full_at=2.0)
    arrays = universe(3, 3, 40, 0.0, 0.0, 100)
    live = LiveRuleWeights()
    for t in range(30):
        live.latest("m1", strategy, None, up_to(arrays, START + t * DAY))
    assert live.rebuilds == 1  # one build, then only new bars
    now = up_to(arrays, START + 30 * DAY)
    live.latest("m2", strategy, None, now)
    assert live.rebuilds == 2  # another model
    late = dict(now)
    ts, values = late["S0"]
    late["S0"] = (np.delete(ts, 20), np.delete(values, 20, axis=0))  # bar 20 missing...
    live.latest("m2", strategy, None, late)
    assert live.rebuilds == 3
    assert live.latest("m2", strategy, None, now) == full(now, strategy, None)  # ...then late
    assert live.rebuilds == 4
    changed = dict(now)
    ts, values = changed["S1"]
    changed["S1"] = (ts, np.where(np.arange(len(ts))[:, None] == len(ts) - 1, values * 1.01,
                                  values))
    assert live.latest("m2", strategy, None, changed) == full(changed, strategy, None)
    assert live.rebuilds == 5


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    gaps=st.sampled_from([0.0, 0.2, 0.5]),
    nans=st.sampled_from([0.0, 0.1]),
    lookback=st.integers(1, 6),
)
def test_live_momentum_weights_are_the_full_computations(
    seed: int, gaps: float, nans: float, lookback: int
) -> None:
    strategy = TimeSeriesMomentum(lookback=lookback)
    arrays = universe(seed, 3, 30, gaps, nans, 12)
    live = LiveRuleWeights()
    for t in range(30):
        now = up_to(arrays, START + t * DAY)
        if now:
            assert live.latest("m1", strategy, None, now) == full(now, strategy, None)


def test_other_strategies_get_the_full_computation() -> None:
    arrays = universe(1, 2, 20, 0.0, 0.0, 100)
    assert LiveRuleWeights().latest("m1", SmaCross(), None, arrays) is None
    assert LiveRuleWeights().latest("m1", object(), None, arrays) is None


@pytest.mark.parametrize("halflife", [1, 3, 20])
def test_the_ewm_carry_is_pandas_ewm(halflife: int) -> None:
    rng = np.random.default_rng(halflife)
    values = rng.normal(size=(200, 3))
    values[rng.random((200, 3)) < 0.2] = np.nan
    values[50:60, 1] = 0.5  # a flat spell
    carry = EwmCarry(3, halflife, 2 * halflife)
    got = np.array([carry.step(row) for row in values])
    want = pd.DataFrame(values).ewm(halflife=halflife, min_periods=2 * halflife).mean()
    assert np.array_equal(got, want.to_numpy(), equal_nan=True)
