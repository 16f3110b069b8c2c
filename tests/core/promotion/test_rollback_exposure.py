"""#17: the rollback rule compares returns per unit of the exposure actually allowed, so the risk
governor's own cut does not push a model toward a rollback."""

from __future__ import annotations

import pytest

from aistock_actors.core.promotion.rollback import (
    LivePerformance,
    expected_from_backtest,
    should_rollback,
)
from aistock_actors.core.risk.policy import RiskLimits, exposure_scale

# Backtest at full limits: +40 % over 252 bars. Paper traded under a governor that halved the
# position size: it earned half the per-bar return, exactly on plan for the exposure allowed.
EXPECTED = expected_from_backtest("m1", total_return=0.40, bars=252)
HALF = [EXPECTED.mean_bar_return * 0.5] * 60
LIVE = LivePerformance(model_id="m1", bar_returns=HALF)


def test_a_model_earning_its_expectation_per_unit_exposure_is_not_rolled_back() -> None:
    at_full = should_rollback(EXPECTED, LIVE, threshold_pct=0.02)
    assert at_full.rollback  # the old comparison blamed the model for the governor's cut
    scaled = should_rollback(EXPECTED, LIVE, threshold_pct=0.02, exposure_scale=0.5)
    assert not scaled.rollback and scaled.reason == "within_tolerance"
    assert scaled.shortfall == pytest.approx(0.0, abs=1e-12) and scaled.exposure_scale == 0.5


def test_a_real_shortfall_still_rolls_back_when_scaled() -> None:
    losing = LivePerformance(model_id="m1", bar_returns=[-0.002] * 60)
    assert should_rollback(EXPECTED, losing, threshold_pct=0.02, exposure_scale=0.5).rollback


def test_exposure_scale_is_the_tighter_ratio_and_bounded() -> None:
    config = RiskLimits(max_position_fraction=0.10, max_notional_per_symbol=1e5,
                        max_gross_exposure=1.0)
    cut = RiskLimits(max_position_fraction=0.05, max_notional_per_symbol=1e5,
                     max_gross_exposure=0.8)
    assert exposure_scale(cut, config) == pytest.approx(0.5)
    looser = RiskLimits(max_position_fraction=0.2, max_notional_per_symbol=1e5,
                        max_gross_exposure=1.0)
    assert exposure_scale(looser, config) == 1.0
    with pytest.raises(ValueError, match="exposure_scale"):
        should_rollback(EXPECTED, LIVE, threshold_pct=0.02, exposure_scale=1.5)
