"""Forward-looking labels, their end times, and the panel training set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.core.model.features import FEATURE_NAMES, WARMUP_BARS
from aistock_actors.core.model.labels import (
    _symbol_by_symbol_set,
    build_training_set,
    direction_labels,
    forward_log_returns,
    label_end_times,
    tradable_forward_returns,
    tradable_labels,
    triple_barrier_labels,
)
from aistock_actors.errors import DataError


def series(values: list[float]) -> pd.Series:
    index = pd.date_range("2021-03-01", periods=len(values), freq="D", tz="UTC")
    return pd.Series(values, index=index, dtype=float)


def make_bars(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2020-01-01", periods=n, freq="B", tz="UTC")
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    return pd.DataFrame(
        {
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": rng.integers(1_000, 9_000, n).astype(float),
        },
        index=index,
    )


def test_direction_labels_one_bar() -> None:
    labels = direction_labels(series([1.0, 2.0, 1.0, 3.0, 3.0]), horizon=1)
    assert labels.iloc[:4].tolist() == [1.0, 0.0, 1.0, 0.0]  # a flat bar is not "up"
    assert np.isnan(labels.iloc[4])


def test_direction_labels_horizon_and_cost_threshold() -> None:
    close = series([100.0, 101.0, 99.0, 100.5, 103.0, 104.0])
    labels = direction_labels(close, horizon=2)
    assert labels.iloc[:4].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert labels.iloc[4:].isna().all()
    costly = direction_labels(close, horizon=2, cost_threshold=0.036)
    assert costly.iloc[:4].tolist() == [0.0, 0.0, 1.0, 0.0]  # 99 -> 103 clears it, 100.5 -> 104 not


def test_forward_returns_and_end_times() -> None:
    close = series([1.0, 2.0, 4.0, 8.0])
    fwd = forward_log_returns(close, 2)
    assert fwd.iloc[0] == pytest.approx(np.log(4.0))
    assert fwd.iloc[2:].isna().all()
    ends = label_end_times(pd.DatetimeIndex(close.index), 2)
    assert ends.iloc[0] == close.index[2]
    assert ends.iloc[1] == close.index[3]
    assert ends.iloc[2:].isna().all()


def test_horizon_must_be_positive() -> None:
    with pytest.raises(ValueError, match="horizon"):
        direction_labels(series([1.0, 2.0]), horizon=0)


def test_triple_barrier_first_touch_wins_and_ends_there() -> None:
    # 25 quiet bars give a volatility estimate, then a jump up at bar 27 and a crash at bar 31.
    rng = np.random.default_rng(0)
    log_path = np.cumsum(rng.normal(0.0, 0.001, 40))
    log_path[27:] += 0.05
    log_path[31:] -= 0.15
    close = series(list(100.0 * np.exp(log_path)))
    labels, ends = triple_barrier_labels(close, horizon=5, width=2.0, vol_window=20)
    assert labels.iloc[:20].isna().all()  # no volatility yet
    assert labels.iloc[25] == 1.0 and ends.iloc[25] == close.index[27]
    assert labels.iloc[29] == 0.0 and ends.iloc[29] == close.index[31]
    assert labels.iloc[-5:].isna().all() and ends.iloc[-5:].isna().all()
    known = labels.notna()
    assert (ends[known] > close.index[known]).all()
    assert (ends[known] <= close.index.to_series().shift(-5)[known]).all()


def test_tradable_label_is_next_open_to_open_net_of_costs() -> None:
    """A signal at t's close fills at t+1's open and exits at the open ``horizon`` bars later: the
    label is that return's sign, and a move too small to pay the round trip is not labelled."""
    index = pd.date_range("2021-03-01", periods=7, freq="D", tz="UTC")
    open_ = pd.Series([100.0, 100.0, 101.0, 101.05, 99.0, 99.0, 99.0], index=index)
    fwd = tradable_forward_returns(open_, 1)
    assert fwd.iloc[0] == pytest.approx(np.log(101.0 / 100.0))  # open[1] -> open[2]
    assert fwd.iloc[-2:].isna().all()
    labels, ends, fwd2 = tradable_labels(open_, horizon=1, cost_bps=15.0)
    assert fwd2.equals(fwd)
    assert labels.iloc[0] == 1.0  # +1.0 % beats 15 bps
    assert np.isnan(labels.iloc[1])  # +5 bps does not pay the round trip: not trained on
    assert labels.iloc[2] == 0.0  # -2.1 %
    assert np.isnan(labels.iloc[3])  # flat
    assert labels.iloc[-2:].isna().all()
    assert ends.iloc[0] == index[2] and ends.iloc[4] == index[6]  # the exit open's bar
    assert ends.iloc[-2:].isna().all()


def test_tradable_label_never_uses_the_signal_bars_own_close_move() -> None:
    """The label is cut from the opens a fill really gets: a jump in one bar's close (a move
    between a signal and its fill that no order can capture) changes no tradable label."""
    bars = make_bars(120, seed=9)
    bars["open"] = bars["close"].shift(1).fillna(50.0) * 1.001
    base = build_training_set({"X": bars}, horizon=2)
    moved = bars.copy()
    moved.iloc[80, moved.columns.get_loc("close")] *= 1.3  # one close only
    after = build_training_set({"X": moved}, horizon=2)
    common = base.labels.index.intersection(after.labels.index)
    assert base.labels[common].equals(after.labels[common])


def test_training_set_is_aligned_and_complete() -> None:
    frames = {"X": make_bars(160, seed=1), "Y": make_bars(140, seed=2)}
    ts = build_training_set(frames, horizon=3, method="direction")
    assert tuple(ts.features.columns) == FEATURE_NAMES
    for part in (ts.labels, ts.label_end_times, ts.forward_returns):
        assert part.index.equals(ts.features.index)
    assert not ts.features.isna().to_numpy().any()
    assert set(np.unique(ts.labels)) <= {0, 1}
    assert ts.labels.dtype == np.int64
    times = ts.features.index.get_level_values("timestamp")
    assert (ts.label_end_times.to_numpy() > times.to_numpy()).all()
    n_x = 160 - (WARMUP_BARS - 1) - 3
    assert len(ts.features.xs("X", level="symbol")) == n_x
    assert ((ts.forward_returns > 0).astype(int) == ts.labels).all()


def test_default_training_set_has_tradable_labels() -> None:
    """The default recipe learns the tradable, cost-netted move: rows too small to pay are out,
    each label's window ends at its exit open (1 + horizon bars on), and labels match returns."""
    bars = make_bars(160, seed=1)
    bars["open"] = bars["close"].shift(1).fillna(50.0)
    ts = build_training_set({"X": bars}, horizon=3)
    times = ts.features.index.get_level_values("timestamp")
    assert len(ts.labels) < 160 - (WARMUP_BARS - 1) - 4  # small moves dropped
    assert (ts.forward_returns.abs() > 15.0 / 1e4).all()
    assert ((ts.forward_returns > 0).astype(int) == ts.labels).all()
    position = {t: i for i, t in enumerate(bars.index)}
    ends = ts.label_end_times.to_numpy()
    assert all(position[e] == position[t] + 4 for t, e in zip(times, ends, strict=True))


def test_training_set_triple_barrier_and_errors() -> None:
    ts = build_training_set({"X": make_bars(160, seed=3)}, horizon=4, method="triple_barrier")
    assert len(ts.labels) > 0
    with pytest.raises(DataError):
        build_training_set({}, horizon=3)
    with pytest.raises(DataError):
        build_training_set({"X": make_bars(50, seed=4)}, horizon=3)


def _bars_with_quirks(n: int, seed: int, flat: tuple[int, int], dead_volume: int) -> pd.DataFrame:
    df = make_bars(n, seed)
    rng = np.random.default_rng(seed + 1)
    df["open"] = df["close"] * np.exp(rng.normal(0.0, 0.004, n))  # open != close: real labels
    df["high"] = df[["open", "close"]].max(axis=1) * 1.002
    df["low"] = df[["open", "close"]].min(axis=1) * 0.998
    lo, hi = flat
    df.iloc[lo:hi, :4] = 40.0  # a halted stretch: flat prices, zero-vol masks
    df.iloc[dead_volume : dead_volume + 25, 4] = 0.0
    return df


@settings(max_examples=25, deadline=None)
@given(
    n_symbols=st.integers(1, 6),
    bars=st.integers(WARMUP_BARS + 10, 260),
    seed=st.integers(0, 10_000),
    horizon=st.integers(1, 8),
    flat_at=st.integers(0, 200),
)
def test_symbols_on_one_index_give_exactly_the_symbol_by_symbol_rows(
    n_symbols: int, bars: int, seed: int, horizon: int, flat_at: int
) -> None:
    """#18: the side-by-side build (one pandas call per formula for the whole panel) is the
    same training set, bit for bit, as building each symbol alone and stacking."""
    frames = {
        f"S{i}": _bars_with_quirks(bars, seed + i, (flat_at, flat_at + 30 * (i % 2)), 90 + i)
        for i in range(n_symbols)
    }
    try:
        fast = build_training_set(frames, horizon=horizon)
    except DataError:
        with pytest.raises(DataError):
            _symbol_by_symbol_set(frames, horizon, 0.0, "tradable")
        return
    slow = _symbol_by_symbol_set(dict(sorted(frames.items())), horizon, 0.0, "tradable")
    pd.testing.assert_frame_equal(fast.features, slow.features, check_exact=True, check_freq=False)
    for name in ("labels", "label_end_times", "forward_returns"):
        pd.testing.assert_series_equal(
            getattr(fast, name), getattr(slow, name), check_exact=True, check_freq=False
        )


def test_symbols_on_different_indexes_are_built_one_by_one_and_stay_correct() -> None:
    frames = {"A": make_bars(200, 1), "B": make_bars(230, 2).iloc[30:]}  # B starts later
    built = build_training_set(frames, horizon=3)
    for symbol, df in frames.items():
        alone = build_training_set({symbol: df}, horizon=3)
        mine = built.features.xs(symbol, level="symbol", drop_level=False)
        pd.testing.assert_frame_equal(mine, alone.features, check_exact=True, check_freq=False)
    assert built.features.index.is_monotonic_increasing
