"""Causal OHLCV features: the future never changes the past."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.core.model.features import (
    FEATURE_NAMES,
    WARMUP_BARS,
    build_feature_panel,
    build_features,
    latest_features,
)
from aistock_actors.errors import DataError


def make_bars(n: int, seed: int, start: str = "2020-01-01") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    index = pd.date_range(start, periods=n, freq="B", tz="UTC")
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.015, n)))
    open_ = close * np.exp(rng.normal(0.0, 0.003, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.006, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.006, n)))
    volume = rng.integers(10_000, 1_000_000, n).astype(float)
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def perturb_after(df: pd.DataFrame, t: int, seed: int) -> pd.DataFrame:
    """Randomly change every bar after position ``t`` (prices and volume)."""
    rng = np.random.default_rng(seed)
    out = df.copy()
    n_after = len(df) - t - 1
    if n_after <= 0:
        return out
    for col in ("open", "high", "low", "close"):
        shock = np.exp(rng.normal(0.0, 0.2, n_after))
        out.iloc[t + 1 :, out.columns.get_loc(col)] = df[col].to_numpy()[t + 1 :] * shock
    out.iloc[t + 1 :, out.columns.get_loc("volume")] = rng.integers(1, 10_000_000, n_after)
    return out


def assert_rows_identical(a: pd.DataFrame, b: pd.DataFrame, upto: int) -> None:
    left = a.iloc[: upto + 1].to_numpy()
    right = b.iloc[: upto + 1].to_numpy()
    assert np.array_equal(left, right, equal_nan=True)


def test_columns_and_index() -> None:
    df = make_bars(300, seed=1)
    feats = build_features(df)
    assert tuple(feats.columns) == FEATURE_NAMES
    assert feats.index.equals(df.index)
    assert not np.isinf(feats.to_numpy()).any()


@pytest.mark.parametrize("t", [0, 5, 59, WARMUP_BARS - 1, WARMUP_BARS, 150, 298, 399])
def test_perturbing_the_future_leaves_features_at_t_unchanged(t: int) -> None:
    df = make_bars(400, seed=2)
    base = build_features(df)
    for seed in range(3):
        changed = build_features(perturb_after(df, t, seed))
        assert_rows_identical(base, changed, t)
        if t < 398:
            assert not np.array_equal(
                base.iloc[t + 1 :].to_numpy(), changed.iloc[t + 1 :].to_numpy(), equal_nan=True
            ), "perturbation must actually change later features"


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(min_value=2, max_value=220),
    frac=st.floats(min_value=0.0, max_value=1.0),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_future_independence_property(n: int, frac: float, seed: int) -> None:
    df = make_bars(n, seed=seed)
    t = min(int(frac * n), n - 1)
    assert_rows_identical(build_features(df), build_features(perturb_after(df, t, seed + 1)), t)


def test_truncated_history_gives_the_same_features() -> None:
    df = make_bars(250, seed=3)
    full = build_features(df)
    for t in (30, 100, 249):
        assert_rows_identical(full, build_features(df.iloc[: t + 1]), t)


def test_warm_up_ends_at_warmup_bars() -> None:
    feats = build_features(make_bars(200, seed=4))
    complete = feats.notna().all(axis=1).to_numpy()
    assert not complete[: WARMUP_BARS - 1].any()
    assert complete[WARMUP_BARS - 1 :].all()


def test_flat_prices_and_zero_volume_give_no_infinities() -> None:
    df = make_bars(150, seed=5)
    df.loc[df.index[60:120], ["open", "high", "low", "close"]] = 50.0
    df.loc[df.index[60:120], "volume"] = 0.0
    feats = build_features(df)
    assert not np.isinf(feats.to_numpy()).any()
    assert feats["close_loc"].iloc[100] == 0.5
    assert feats["rsi_14"].iloc[100] == 0.0


@pytest.mark.parametrize(
    "mutate",
    [
        lambda df: df.drop(columns=["volume"]),
        lambda df: df.iloc[::-1],
        lambda df: pd.concat([df, df.iloc[-1:]]),
        lambda df: df.assign(close=df["close"].where(df.index != df.index[3], 0.0)),
        lambda df: df.assign(volume=-1.0),
        lambda df: df.reset_index(drop=True),
    ],
)
def test_bad_frames_raise_data_error(mutate: object) -> None:
    df = make_bars(50, seed=6)
    with pytest.raises(DataError):
        build_features(mutate(df))  # type: ignore[operator]


def test_panel_stacks_symbols_and_drops_warm_up() -> None:
    frames = {"BBB": make_bars(200, seed=7), "AAA": make_bars(150, seed=8)}
    panel = build_feature_panel(frames)
    assert list(panel.index.names) == ["timestamp", "symbol"]
    assert panel.index.is_monotonic_increasing
    assert not panel.isna().to_numpy().any()
    counts = panel.groupby(level="symbol").size()
    assert counts["AAA"] == 150 - WARMUP_BARS + 1
    assert counts["BBB"] == 200 - WARMUP_BARS + 1
    one = build_features(frames["AAA"]).dropna()
    from_panel = panel.xs("AAA", level="symbol")
    assert np.array_equal(one.to_numpy(), from_panel.to_numpy())


def test_latest_features_uses_each_symbols_own_last_bar() -> None:
    frames = {
        "AAA": make_bars(200, seed=9),
        "BBB": make_bars(180, seed=10),
        "NEW": make_bars(20, seed=11),  # still in warm-up: no signal rather than a stale row
    }
    latest = latest_features(frames)
    assert list(latest.index) == ["AAA", "BBB"]
    for symbol in ("AAA", "BBB"):
        expected = build_features(frames[symbol]).iloc[-1].to_numpy()
        assert np.array_equal(latest.loc[symbol].to_numpy(), expected)


def test_empty_panel_is_an_error() -> None:
    with pytest.raises(DataError):
        build_feature_panel({})


def _ar1_bars(n: int, phi: float, seed: int) -> pd.DataFrame:
    """Bars whose log returns are an AR(1) with coefficient ``phi``."""
    rng = np.random.default_rng(seed)
    shocks = rng.normal(0.0, 0.01, n)
    ret = np.zeros(n)
    for t in range(1, n):
        ret[t] = phi * ret[t - 1] + shocks[t]
    df = make_bars(n, seed=seed)
    close = 100.0 * np.exp(np.cumsum(ret))
    return df.assign(open=close, high=close * 1.001, low=close * 0.999, close=close)


@pytest.mark.parametrize("phi", [0.4, -0.4])
def test_rolling_autocorrelation_sees_a_planted_ar1(phi: float) -> None:
    feats = build_features(_ar1_bars(2_000, phi, seed=11)).iloc[WARMUP_BARS:]
    assert feats["autocorr_60"].mean() == pytest.approx(phi, abs=0.06)
    assert feats["autocorr_20"].mean() == pytest.approx(phi, abs=0.12)
    # The interaction forecasts the next vol-scaled return: it correlates with it positively.
    nxt = feats["z_ret_1"].shift(-1)
    assert feats["autocorr_x_ret_60"].corr(nxt) > 0.2


def test_edge_features_are_bounded_and_zero_on_flat_prices() -> None:
    df = make_bars(200, seed=5)
    df.loc[df.index[60:150], ["open", "high", "low", "close"]] = 50.0
    feats = build_features(df)
    assert feats["autocorr_20"].iloc[140] == 0.0
    assert feats["z_ret_1"].iloc[140] == 0.0
    ac = feats[["autocorr_20", "autocorr_60"]].to_numpy()
    assert (np.abs(ac[np.isfinite(ac)]) <= 1.0).all()
    assert not np.isinf(feats.to_numpy()).any()
