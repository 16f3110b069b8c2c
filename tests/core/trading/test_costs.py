"""Cost model and calibrator (T4): signed realised costs, price improvement never clipped."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aistock_actors.core.trading.costs import (
    CostCalibratorState,
    CostModel,
    calibrated_bps,
    liquidity_bucket,
    realised_cost_bps,
    record_fill,
)

MODEL = CostModel(commission_rate=0.0005, half_spread_bps=2.0, impact_bps=50.0)


def test_predicted_cost_is_spread_plus_square_root_impact() -> None:
    assert MODEL.predicted_cost_bps(0.0, 1e6) == pytest.approx(2.0)
    assert MODEL.predicted_cost_bps(1e5, 1e6) == pytest.approx(2.0 + 50.0 * math.sqrt(0.1))
    assert MODEL.predicted_cost_bps(1e5, 0.0) == pytest.approx(52.0)
    assert MODEL.total_cost_bps(0.0, 1e6) == pytest.approx(7.0)
    sizes = [0.0, 1e3, 1e4, 1e5, 1e6]
    costs = [MODEL.predicted_cost_bps(n, 1e6) for n in sizes]
    assert costs == sorted(costs)


def test_fill_price_moves_against_the_trader() -> None:
    assert MODEL.fill_price("buy", 100.0, 0.0, 1e6) == pytest.approx(100.02)
    assert MODEL.fill_price("sell", 100.0, 0.0, 1e6) == pytest.approx(99.98)
    assert MODEL.commission(-10.0, 100.0) == pytest.approx(0.5)
    absurd = CostModel(impact_bps=1e9)
    assert absurd.fill_price("sell", 100.0, 1e6, 1.0) > 0.0


def test_realised_cost_is_signed_and_never_clipped() -> None:
    assert realised_cost_bps("buy", 101.0, 100.0) == pytest.approx(100.0)
    assert realised_cost_bps("buy", 99.0, 100.0) == pytest.approx(-100.0)
    assert realised_cost_bps("sell", 99.0, 100.0) == pytest.approx(100.0)
    assert realised_cost_bps("sell", 101.0, 100.0) == pytest.approx(-100.0)
    assert math.isnan(realised_cost_bps("buy", 101.0, 0.0))
    assert math.isnan(realised_cost_bps("buy", math.nan, 100.0))


def test_price_improvement_reaches_the_calibrator_unclipped() -> None:
    predicted = 5.0
    state, note = record_fill(CostCalibratorState(), "AAA", predicted, predicted, alpha=0.5)
    assert state.stats["AAA"].ewma_surprise_bps == 0.0
    assert note.price_improvement is False
    state, note = record_fill(state, "AAA", predicted, -12.0, alpha=0.5)
    assert note.price_improvement is True
    assert note.surprise_bps == pytest.approx(-17.0)
    stats = state.stats["AAA"]
    assert stats.ewma_surprise_bps == pytest.approx(-8.5)
    assert stats.min_surprise_bps == pytest.approx(-17.0)
    assert stats.price_improvements == 1
    assert stats.count == 2
    assert calibrated_bps(state, "AAA", predicted, floor_bps=None) < predicted
    assert calibrated_bps(state, "AAA", predicted, floor_bps=None) == pytest.approx(-3.5)


def test_non_finite_costs_are_ignored_and_flagged() -> None:
    start = CostCalibratorState()
    state, note = record_fill(start, "AAA", 5.0, math.nan, alpha=0.1)
    assert state == start
    assert note.ignored == "non_finite_cost"


def test_calibrated_bps_defaults_and_floor() -> None:
    state, _ = record_fill(CostCalibratorState(), "AAA", 5.0, -20.0, alpha=0.1)
    assert calibrated_bps(state, "BBB", 7.0) == 7.0
    assert calibrated_bps(state, "AAA", 7.0, min_count=2) == 7.0
    assert calibrated_bps(state, "AAA", 7.0) == 0.0
    assert calibrated_bps(state, "AAA", 7.0, floor_bps=None) == pytest.approx(-18.0)


def test_liquidity_buckets() -> None:
    assert liquidity_bucket(5e5) == "liq0"
    assert liquidity_bucket(5e6) == "liq1"
    assert liquidity_bucket(5e8) == "liq3"
    assert liquidity_bucket(math.nan) == "liq0"


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(
    observations=st.lists(st.tuples(finite, finite), min_size=1, max_size=50),
    alpha=st.floats(allow_nan=True, allow_infinity=True),
)
def test_ewma_stays_within_the_observed_surprises(
    observations: list[tuple[float, float]], alpha: float
) -> None:
    state = CostCalibratorState()
    surprises = []
    for predicted, realised in observations:
        state, note = record_fill(state, "K", predicted, realised, alpha)
        surprises.append(note.surprise_bps)
        assert note.price_improvement == (realised < 0.0)
    stats = state.stats["K"]
    assert min(surprises) <= stats.ewma_surprise_bps <= max(surprises)
    assert stats.count == len(observations)
    assert stats.price_improvements == sum(1 for _, r in observations if r < 0.0)
