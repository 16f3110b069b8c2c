"""The built-in rules: features are causal (future bars never change a past value), the
autocorrelation rule's estimator and strength-sized hysteresis, and its cost-aware ``fit``, which
learns only from the training rows it is given; bad parameters are one error naming each."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _support.lifecycle_support import planted_frames
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from aistock_actors.core.data.sample_data import generate_universe
from aistock_actors.core.strategy.rules import (
    AutocorrelationFit,
    AutocorrelationStrategy,
    SmaCross,
    TimeSeriesMomentum,
    ew_autocorrelation,
    hysteresis,
    net_pnl,
    unstack,
)
from aistock_actors.core.strategy.walkforward import tradable_forward_returns
from aistock_actors.errors import StrategyError
from aistock_actors.services.strategy_loader import load_strategy

RULES = (AutocorrelationStrategy(), TimeSeriesMomentum(), SmaCross())


def perturbed_after(
    frames: dict[str, pd.DataFrame], cut: int, seed: int
) -> dict[str, pd.DataFrame]:
    """The same bars up to position ``cut``; every later bar scaled by random factors."""
    rng = np.random.default_rng(seed)
    out = {}
    for symbol, frame in frames.items():
        changed = frame.copy()
        factor = np.exp(rng.normal(0.0, 0.05, len(frame) - cut - 1))
        for column in ("open", "high", "low", "close"):
            values = changed[column].to_numpy(dtype=float).copy()
            values[cut + 1:] *= factor
            changed[column] = values
        out[symbol] = changed
    return out


@settings(max_examples=12, deadline=None)
@given(cut=st.integers(min_value=60, max_value=230), seed=st.integers(0, 10_000))
def test_perturbing_future_bars_never_changes_a_past_feature(cut: int, seed: int) -> None:
    frames = generate_universe(4, 240, 11)
    changed = perturbed_after(frames, cut, seed)
    last_kept = next(iter(frames.values())).index[cut]
    for rule in RULES:
        before = rule.features(frames).loc[:last_kept]
        after = rule.features(changed).loc[:last_kept]
        pd.testing.assert_frame_equal(before, after, obj=rule.name)
        # ... nor a past weight: positions are decided bar by bar, from the past only.
        state = rule.fit(before, pd.Series(0.001, index=before.index))
        past_weights = rule.weights(rule.features(frames), state).loc[:last_kept]
        changed_weights = rule.weights(rule.features(changed), state).loc[:last_kept]
        pd.testing.assert_frame_equal(past_weights, changed_weights, obj=rule.name)


def test_the_ew_autocorrelation_finds_the_sign_and_size_of_an_ar1() -> None:
    rng = np.random.default_rng(3)
    n = 4_000
    noise = rng.normal(0.0, 0.01, (n, 2))
    series = np.zeros((n, 2))
    for t in range(1, n):
        series[t] = np.array([0.4, -0.4]) * series[t - 1] + noise[t]
    ac = ew_autocorrelation(pd.DataFrame(series, columns=["up", "down"]), halflife=200)
    # The first lagged product is at row 1, so 2 x halflife of them are seen at row 400.
    assert ac["up"].iloc[:400].isna().all() and ac["up"].iloc[400:].notna().all()
    assert ac["up"].iloc[-1000:].mean() == pytest.approx(0.4, abs=0.07)
    assert ac["down"].iloc[-1000:].mean() == pytest.approx(-0.4, abs=0.07)
    flat = ew_autocorrelation(pd.DataFrame({"zero": np.zeros(100)}), halflife=5)
    assert flat["zero"].isna().all()  # no variance: unknown, never a division by zero


def test_hysteresis_sizes_at_entry_by_strength_and_never_resizes_while_held() -> None:
    forecast = np.array([[0.001], [0.006], [0.012], [0.002], [-0.003], [np.nan], [-0.0001],
                         [0.0]]) * 1.0
    held = hysteresis(forecast, entry=0.004, exit_=0.0, full=0.012)[:, 0]
    # 0.001: below entry, flat; 0.006: enter long at 0.006/0.012 = half; 0.012: same side, no
    # resize; 0.002: weaker but still long, hold; -0.003: against the long, below entry: exit;
    # NaN: hold (flat); tiny negative while flat: flat.
    assert held.tolist() == [0.0, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0]
    flipped = hysteresis(np.array([[0.02], [-0.006]]), entry=0.004, exit_=0.0, full=0.012)
    assert flipped[:, 0].tolist() == [1.0, -0.5]  # a strong opposite signal flips and resizes
    unit = hysteresis(np.array([[0.005], [-0.02]]), entry=0.004, exit_=0.0)
    assert unit[:, 0].tolist() == [1.0, -1.0]  # without ``full``: always a full position


@settings(max_examples=60, deadline=None)
@given(forecast=arrays(np.float64, (30, 3), elements=st.floats(-0.05, 0.05) | st.just(np.nan)))
def test_hysteresis_weights_stay_within_a_full_position_and_hold_their_size(
    forecast: np.ndarray,
) -> None:
    held = hysteresis(forecast, entry=0.004, exit_=0.0, full=0.012)
    assert np.isfinite(held).all() and np.abs(held).max(initial=0.0) <= 1.0
    previous = np.vstack([np.zeros((1, 3)), held[:-1]])
    changed = held != previous
    # A weight changes only to go flat or to open a side the forecast points to, beyond entry.
    opening = changed & (held != 0.0)
    assert (np.abs(forecast[opening]) > 0.004).all()
    assert (np.sign(held[opening]) == np.sign(forecast[opening])).all()
    same_side_resize = changed & (held != 0.0) & (np.sign(held) == np.sign(previous))
    assert not same_side_resize.any()


def test_net_pnl_charges_every_change_of_position() -> None:
    held = np.array([[1.0], [1.0], [0.0], [-0.5]])
    forward = np.array([[0.01], [np.nan], [0.5], [-0.02]])
    # gross 0.01 + 0 + 0 + 0.01; turnover 1 + 0 + 1 + 0.5
    assert net_pnl(held, forward, 0.001) == pytest.approx(0.02 - 0.0025)


def test_fit_learns_on_the_training_rows_whether_the_rule_is_worth_trading() -> None:
    """The same features: with the true forward returns the rule earns more than its costs and
    trades; with those returns reversed (an anti-edge in the training rows) the fold stays flat.
    Only the rows passed in matter: the decision on the first 300 bars ignores the rest."""
    rule = AutocorrelationStrategy()
    frames = planted_frames(n_symbols=6, n_bars=600, phi=-0.3, seed=2)
    features = rule.features(frames)
    fwd, _ = tradable_forward_returns(frames, features.index, rule.horizon)  # type: ignore[arg-type]
    good = rule.fit(features, fwd)
    assert isinstance(good, AutocorrelationFit) and good.trade and good.train_net_pnl > 0.0
    bad = rule.fit(features, -fwd)
    assert not bad.trade and bad.train_net_pnl < 0.0
    assert (rule.weights(features, bad).to_numpy() == 0.0).all()
    assert (rule.weights(features, good).to_numpy() != 0.0).any()
    early = features.index.get_level_values("timestamp") <= features.index.levels[0][300]
    scrambled = fwd.copy()
    scrambled[~early] = -scrambled[~early] * 100.0
    assert rule.fit(features[early], fwd[early]) == rule.fit(features[early], scrambled[early])


def test_the_strength_sized_weights_are_fractions_of_a_full_position() -> None:
    rule = AutocorrelationStrategy()
    features = rule.features(generate_universe(6, 400, 5))
    weights = rule.weights(features, None)
    sizes = np.abs(weights.to_numpy())
    assert sizes.max() == 1.0 and ((sizes > 0.0) & (sizes < 1.0)).any()
    smallest_entry = rule.entry_bps / (rule.full_at * rule.entry_bps)
    assert sizes[sizes > 0.0].min() >= smallest_entry - 1e-12
    assert weights.columns.tolist() == sorted(unstack(features, "forecast").columns)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"halflife": 0}, "autocorrelation: halflife must be an int >= 1, got 0"),
        ({"halflife": 2.5}, "halflife must be an int >= 1, got 2.5"),
        ({"entry_bps": -1.0}, "entry_bps must be a number > 0, got -1.0"),
        ({"entry_bps": float("nan")}, "entry_bps must be a number > 0, got nan"),
        ({"full_at": 0.5, "cost_bps": -2}, "full_at must be a number >= 1, got 0.5; "
                                           "cost_bps must be a number >= 0, got -2"),
    ],
)
def test_bad_autocorrelation_params_are_one_error_naming_each(
    params: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        AutocorrelationStrategy(**params)  # type: ignore[arg-type]


def test_the_loader_names_the_rule_and_the_bad_param() -> None:
    path = "aistock_actors.core.strategy.rules:AutocorrelationStrategy"
    with pytest.raises(StrategyError, match=r"strategy '.*rules:AutocorrelationStrategy': "
                       r"constructor raised ValueError\('autocorrelation: halflife must be an "
                       r"int >= 1, got 0'\)"):
        load_strategy(path, {"halflife": 0})
    assert load_strategy(path, {"halflife": 10}).name == "autocorrelation"
