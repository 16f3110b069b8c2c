"""Tests for the degradation/rollback rule, on recorded paper-trading return series."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aistock_actors.core.promotion.rollback import (
    ExpectedPerformance,
    LivePerformance,
    choose_rollback_target,
    expected_from_backtest,
    should_rollback,
)

# Daily paper-portfolio returns recorded over 40 sessions after a promotion.
HEALTHY = [
    0.0042, -0.0031, 0.0018, 0.0025, -0.0012, 0.0007, 0.0036, -0.0044, 0.0021, 0.0013,
    0.0009, -0.0008, 0.0030, 0.0016, -0.0027, 0.0040, 0.0005, -0.0015, 0.0022, 0.0011,
    -0.0019, 0.0028, 0.0003, 0.0017, -0.0006, 0.0033, -0.0022, 0.0014, 0.0008, 0.0019,
    0.0024, -0.0035, 0.0012, 0.0006, 0.0029, -0.0010, 0.0015, 0.0020, -0.0004, 0.0010,
]  # fmt: skip
DEGRADED = [
    -0.0051, 0.0012, -0.0038, -0.0022, 0.0030, -0.0047, -0.0009, 0.0016, -0.0063, -0.0014,
    0.0021, -0.0035, -0.0028, 0.0008, -0.0041, -0.0017, 0.0025, -0.0052, -0.0006, -0.0030,
    0.0011, -0.0024, -0.0039, 0.0019, -0.0012, -0.0045, 0.0004, -0.0027, -0.0033, 0.0015,
    -0.0020, -0.0008, -0.0036, 0.0010, -0.0043, -0.0016, 0.0007, -0.0029, -0.0011, -0.0021,
]  # fmt: skip

# Backtest: +25 % over 252 bars.
EXPECTED = expected_from_backtest("m2", total_return=0.25, bars=252)


def live(returns: list[float], model_id: str = "m2") -> LivePerformance:
    return LivePerformance(model_id=model_id, bar_returns=returns)


def test_expected_from_backtest_is_geometric() -> None:
    assert (1 + EXPECTED.mean_bar_return) ** 252 == pytest.approx(1.25)
    with pytest.raises(ValueError, match="bars"):
        expected_from_backtest("m", 0.1, 0)
    with pytest.raises(ValueError, match="total_return"):
        expected_from_backtest("m", -1.0, 10)


def test_healthy_series_is_within_tolerance() -> None:
    verdict = should_rollback(EXPECTED, live(HEALTHY), threshold_pct=0.05)
    assert not verdict.rollback
    assert verdict.reason == "within_tolerance"
    assert verdict.observations == 40
    assert verdict.realised_return == pytest.approx(np.prod(1 + np.array(HEALTHY)) - 1)
    assert verdict.expected_return == pytest.approx(1.25 ** (40 / 252) - 1)
    assert abs(verdict.shortfall) < 0.05


def test_degraded_series_rolls_back() -> None:
    verdict = should_rollback(EXPECTED, live(DEGRADED), threshold_pct=0.05)
    assert verdict.rollback
    assert verdict.reason == "degradation_exceeds_threshold"
    assert verdict.realised_return < 0
    assert verdict.shortfall == pytest.approx(verdict.expected_return - verdict.realised_return)
    assert verdict.shortfall > 0.05


def test_a_looser_threshold_tolerates_the_same_series() -> None:
    verdict = should_rollback(EXPECTED, live(DEGRADED), threshold_pct=0.10)
    assert not verdict.rollback
    assert verdict.reason == "within_tolerance"


def test_too_few_bars_never_roll_back() -> None:
    crash = [-0.05] * 19
    verdict = should_rollback(EXPECTED, live(crash), threshold_pct=0.05)
    assert not verdict.rollback
    assert verdict.reason == "insufficient_observations"
    assert verdict.shortfall > 0.05
    assert should_rollback(EXPECTED, live([*crash, -0.05]), threshold_pct=0.05).rollback


def test_shortfall_equal_to_threshold_does_not_roll_back() -> None:
    flat = ExpectedPerformance(model_id="m2", mean_bar_return=0.0)
    verdict = should_rollback(flat, live([-0.5, 0.0]), threshold_pct=0.5, min_observations=2)
    assert verdict.shortfall == 0.5
    assert not verdict.rollback


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -1.5])
def test_unusable_live_data_is_reported_not_acted_on(bad: float) -> None:
    verdict = should_rollback(EXPECTED, live([*DEGRADED, bad]), threshold_pct=0.05)
    assert not verdict.rollback
    assert verdict.reason == "invalid_live_returns"
    assert verdict.observations == 41


def test_total_loss_bar_is_valid_data() -> None:
    verdict = should_rollback(EXPECTED, live([*HEALTHY, -1.0]), threshold_pct=0.05)
    assert verdict.rollback
    assert verdict.realised_return == -1.0


def test_inconsistent_arguments_raise() -> None:
    with pytest.raises(ValueError, match="live data for 'other'"):
        should_rollback(EXPECTED, live(HEALTHY, "other"), threshold_pct=0.05)
    with pytest.raises(ValueError, match="threshold_pct"):
        should_rollback(EXPECTED, live(HEALTHY), threshold_pct=math.nan)
    with pytest.raises(ValueError, match="min_observations"):
        should_rollback(EXPECTED, live(HEALTHY), threshold_pct=0.05, min_observations=0)
    nan_expectation = ExpectedPerformance(model_id="m2", mean_bar_return=math.nan)
    with pytest.raises(ValueError, match="mean_bar_return"):
        should_rollback(nan_expectation, live(HEALTHY), threshold_pct=0.05)


@given(
    st.floats(min_value=-0.01, max_value=0.01),
    st.lists(st.floats(min_value=-0.2, max_value=0.2), max_size=60),
    st.floats(min_value=0.0, max_value=0.3),
    st.integers(min_value=1, max_value=40),
)
def test_rollback_invariants(
    mean: float, returns: list[float], threshold: float, min_obs: int
) -> None:
    expected = ExpectedPerformance(model_id="m", mean_bar_return=mean)
    verdict = should_rollback(expected, live(returns, "m"), threshold, min_obs)
    assert verdict.rollback == (len(returns) >= min_obs and verdict.shortfall > threshold + 1e-9)
    meeting = should_rollback(expected, live([mean] * len(returns), "m"), threshold, min_obs)
    assert not meeting.rollback
    assert meeting.shortfall == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    ("history", "current", "exclude", "target"),
    [
        (["m1", "m2", "m3"], "m3", (), "m2"),
        (["m1"], "m1", (), None),
        ([], "m1", (), None),
        (["m1", "m2", "m1"], "m1", (), "m2"),
        (["m1", "m2", "m1"], "m1", ("m2",), None),
        (["m1", "m2", "m2", "m3", "m3"], "m3", (), "m2"),
        (["m1", "m2", "m3"], "m2", (), "m1"),
        (["m1", "m2"], "m9", (), "m2"),
        (["m1", "m2", "m3"], "m3", ("m2",), "m1"),
    ],
)
def test_choose_rollback_target(
    history: list[str], current: str, exclude: tuple[str, ...], target: str | None
) -> None:
    assert choose_rollback_target(history, current, exclude) == target
