"""Adaptive risk policy: manual §3 rules, hard ceilings, NaN handling and order/weight caps."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.core.risk.ceilings import (
    HARD_CEILING_NOTIONAL_CAP,
    HARD_CEILING_POSITION_FRACTION,
)
from aistock_actors.core.risk.policy import (
    PerformanceSnapshot,
    RiskLimits,
    RiskPolicyParams,
    cap_target_weights,
    check_order_against_limits,
    is_tightening,
    performance_from_equity,
    propose_limits,
)

LIMITS = RiskLimits(max_position_fraction=0.20, max_notional_per_symbol=100_000.0)
PARAMS = RiskPolicyParams(min_risk_floor=0.05)
NEUTRAL = dict(sharpe=0.8, drawdown=0.12, win_rate=0.50, observations=30)
STRONG = PerformanceSnapshot(sharpe=1.5, drawdown=0.05, win_rate=0.60, observations=30)


def perf(**overrides: float) -> PerformanceSnapshot:
    values = {**NEUTRAL, **overrides}
    return PerformanceSnapshot(
        sharpe=values["sharpe"],
        drawdown=values["drawdown"],
        win_rate=values["win_rate"],
        observations=int(values["observations"]),
    )


@pytest.mark.parametrize(
    ("overrides", "triggers"),
    [
        ({"sharpe": 0.4}, ["sharpe_below_0.5"]),
        ({"drawdown": 0.2}, ["drawdown_above_0.15"]),
        ({"win_rate": 0.4}, ["win_rate_below_0.45"]),
        ({"sharpe": 0.4, "drawdown": 0.2}, ["sharpe_below_0.5", "drawdown_above_0.15"]),
        (
            {"sharpe": 0.4, "drawdown": 0.2, "win_rate": 0.4},
            ["sharpe_below_0.5", "drawdown_above_0.15", "win_rate_below_0.45"],
        ),
    ],
)
def test_each_trigger_cuts_twenty_percent_and_triggers_multiply(
    overrides: dict[str, float], triggers: list[str]
) -> None:
    decision = propose_limits(LIMITS, perf(**overrides), PARAMS)
    assert decision.action == "tightened"
    assert decision.triggers == triggers
    assert decision.reasons[0] == "tightened_on_poor_performance"
    assert set(triggers) <= set(decision.reasons)
    expected = 0.20 * 0.8 ** len(triggers)
    assert decision.after.max_position_fraction == pytest.approx(expected)
    assert decision.after.max_notional_per_symbol == LIMITS.max_notional_per_symbol


def test_tightening_stops_at_the_floor_and_never_goes_below_it() -> None:
    params = RiskPolicyParams(min_risk_floor=0.15)
    poor = perf(sharpe=-1.0, drawdown=0.3, win_rate=0.2)
    first = propose_limits(LIMITS, poor, params)
    assert first.after.max_position_fraction == pytest.approx(0.15)
    second = propose_limits(first.after, poor, params)
    assert second.action == "unchanged"
    assert second.reasons[0] == "held_at_risk_floor"
    below = RiskLimits(max_position_fraction=0.05)
    assert propose_limits(below, poor, params).after.max_position_fraction == 0.05


def test_expansion_is_relative_and_needs_all_three_conditions() -> None:
    decision = propose_limits(LIMITS, STRONG, PARAMS)
    assert decision.action == "expanded"
    assert decision.after.max_position_fraction == pytest.approx(0.20 * 1.03)
    assert is_tightening(decision.before, decision.after) is False
    for weak in ({"sharpe": 1.0}, {"drawdown": 0.10}, {"win_rate": 0.55}):
        values = {"sharpe": 1.5, "drawdown": 0.05, "win_rate": 0.60, **weak}
        assert propose_limits(LIMITS, perf(**values), PARAMS).action == "unchanged"


def test_expansion_never_passes_the_hard_ceiling() -> None:
    params = RiskPolicyParams(max_risk_increase_pct=5.0)
    decision = propose_limits(LIMITS, STRONG, params)
    assert decision.after.max_position_fraction == HARD_CEILING_POSITION_FRACTION
    again = propose_limits(decision.after, STRONG, params)
    assert again.action == "unchanged"
    assert again.reasons[0] == "held_at_hard_ceiling"


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_metrics_never_expand(bad: float) -> None:
    for field in ("sharpe", "win_rate"):
        values = {"sharpe": 1.5, "drawdown": 0.05, "win_rate": 0.60, field: bad}
        decision = propose_limits(LIMITS, perf(**values), PARAMS)
        assert decision.after.max_position_fraction <= LIMITS.max_position_fraction
        assert f"{field}_not_finite" in decision.reasons


def test_nan_is_unknown_but_minus_inf_sharpe_is_poor() -> None:
    unknown = propose_limits(LIMITS, perf(sharpe=math.nan, win_rate=math.nan), PARAMS)
    assert unknown.action == "unchanged"
    assert propose_limits(LIMITS, perf(sharpe=-math.inf), PARAMS).action == "tightened"


def test_drawdown_sign_is_ignored() -> None:
    assert propose_limits(LIMITS, perf(drawdown=-0.2), PARAMS).action == "tightened"


def test_disabled_adjustment_keeps_limits_but_still_clamps_to_ceilings() -> None:
    params = RiskPolicyParams(enable_auto_adjustment=False)
    poor = perf(sharpe=-1.0)
    assert propose_limits(LIMITS, poor, params).action == "unchanged"
    wild = RiskLimits(max_position_fraction=0.9, max_notional_per_symbol=5e6)
    decision = propose_limits(wild, STRONG, params)
    assert decision.action == "clamped"
    assert decision.after.max_position_fraction == HARD_CEILING_POSITION_FRACTION
    assert decision.after.max_notional_per_symbol == HARD_CEILING_NOTIONAL_CAP
    assert "clamped_to_hard_ceiling" in decision.reasons


def test_too_few_observations_change_nothing() -> None:
    decision = propose_limits(LIMITS, perf(sharpe=0.0, observations=0), PARAMS)
    assert decision.action == "unchanged"
    assert decision.reasons[0] == "insufficient_observations"


def test_is_tightening() -> None:
    tighter = RiskLimits(max_position_fraction=0.16, max_notional_per_symbol=100_000.0)
    looser = RiskLimits(max_position_fraction=0.25, max_notional_per_symbol=100_000.0)
    mixed = RiskLimits(max_position_fraction=0.16, max_notional_per_symbol=200_000.0)
    assert is_tightening(LIMITS, tighter)
    assert not is_tightening(LIMITS, looser)
    assert not is_tightening(LIMITS, mixed)
    assert not is_tightening(LIMITS, LIMITS)
    assert not is_tightening(RiskLimits(max_position_fraction=math.nan), LIMITS)


floats = st.floats(allow_nan=True, allow_infinity=True)
performances = st.builds(
    PerformanceSnapshot,
    sharpe=floats,
    drawdown=floats,
    win_rate=floats,
    observations=st.integers(-5, 1000),
)
any_params = st.builds(
    RiskPolicyParams,
    enable_auto_adjustment=st.booleans(),
    max_risk_increase_pct=floats,
    min_risk_floor=floats,
    tighten_factor=floats,
    sharpe_tighten_below=floats,
    drawdown_tighten_above=floats,
    win_rate_tighten_below=floats,
    expand_sharpe_above=floats,
    expand_drawdown_below=floats,
    expand_win_rate_above=floats,
    min_observations=st.integers(-5, 50),
)


def floor_of(params: RiskPolicyParams) -> float:
    floor = params.min_risk_floor
    return min(floor, HARD_CEILING_POSITION_FRACTION) if floor >= 0.0 else 0.0


@settings(max_examples=300)
@given(params=any_params, perfs=st.lists(performances, max_size=30), data=st.data())
def test_limits_stay_between_floor_and_ceiling_for_any_inputs(
    params: RiskPolicyParams, perfs: list[PerformanceSnapshot], data: st.DataObject
) -> None:
    floor = floor_of(params)
    start = data.draw(st.floats(floor, HARD_CEILING_POSITION_FRACTION))
    limits = RiskLimits(
        max_position_fraction=start,
        max_notional_per_symbol=data.draw(floats),
        max_gross_exposure=data.draw(floats),
    )
    for snapshot in perfs:
        limits = propose_limits(limits, snapshot, params).after
        assert floor <= limits.max_position_fraction <= HARD_CEILING_POSITION_FRACTION
        assert 0.0 <= limits.max_notional_per_symbol <= HARD_CEILING_NOTIONAL_CAP
        assert limits.max_gross_exposure >= 0.0


@settings(max_examples=300)
@given(params=any_params, snapshot=performances, fraction=floats, notional=floats)
def test_any_start_is_clamped_and_never_pushed_below_itself_or_the_floor(
    params: RiskPolicyParams, snapshot: PerformanceSnapshot, fraction: float, notional: float
) -> None:
    current = RiskLimits(max_position_fraction=fraction, max_notional_per_symbol=notional)
    after = propose_limits(current, snapshot, params).after
    start = min(max(fraction, 0.0), HARD_CEILING_POSITION_FRACTION) if fraction >= 0 else 0.0
    assert min(floor_of(params), start) <= after.max_position_fraction
    assert after.max_position_fraction <= HARD_CEILING_POSITION_FRACTION
    assert 0.0 <= after.max_notional_per_symbol <= HARD_CEILING_NOTIONAL_CAP


def test_order_check_caps_added_exposure_only() -> None:
    check = check_order_against_limits(
        current_quantity=0.0, order_quantity=5_000.0, price=10.0, equity=100_000.0, limits=LIMITS
    )
    assert check.violations == ["position_fraction_limit"]
    assert check.allowed_quantity == pytest.approx(2_000.0)
    reduce = check_order_against_limits(
        current_quantity=5_000.0, order_quantity=-5_000.0, price=10.0, equity=1.0, limits=LIMITS
    )
    assert reduce.allowed_quantity == -5_000.0
    assert reduce.violations == []


def test_order_check_applies_hard_ceilings_whatever_the_limits() -> None:
    wild = RiskLimits(max_position_fraction=0.9, max_notional_per_symbol=1e9)
    by_fraction = check_order_against_limits(
        current_quantity=0.0, order_quantity=1e6, price=10.0, equity=100_000.0, limits=wild
    )
    assert by_fraction.allowed_quantity * 10.0 <= 0.30 * 100_000.0
    by_notional = check_order_against_limits(
        current_quantity=0.0, order_quantity=1e6, price=10.0, equity=1e8, limits=None
    )
    assert by_notional.violations == ["notional_limit"]
    assert by_notional.allowed_quantity * 10.0 <= HARD_CEILING_NOTIONAL_CAP
    invalid = check_order_against_limits(
        current_quantity=0.0, order_quantity=10.0, price=math.nan, equity=1e5
    )
    assert invalid.allowed_quantity == 0.0


def test_order_check_counts_costs_against_equity() -> None:
    check = check_order_against_limits(
        current_quantity=0.0,
        order_quantity=1e6,
        price=10.0,
        equity=100_000.0,
        limits=LIMITS,
        cost_per_unit=0.5,
    )
    qty = check.allowed_quantity
    assert qty * 10.0 <= 0.20 * (100_000.0 - qty * 0.5)


def test_cap_target_weights_defence_in_depth() -> None:
    wild = RiskLimits(max_position_fraction=0.9, max_notional_per_symbol=1e9, max_gross_exposure=5)
    prices = {"A": 10.0, "B": 20.0, "C": math.nan}
    capped = cap_target_weights({"A": 0.5, "B": -0.5, "C": 0.1}, 100_000.0, prices, wild)
    assert capped == {"A": 0.30, "B": -0.30, "C": 0.0}
    rich = cap_target_weights({"A": 0.3}, 1e7, prices, wild)
    assert rich["A"] * 1e7 == pytest.approx(HARD_CEILING_NOTIONAL_CAP)
    assert cap_target_weights({"A": 0.3}, -5.0, prices, wild) == {"A": 0.0}


def test_cap_target_weights_scales_to_gross_exposure() -> None:
    limits = RiskLimits(max_position_fraction=0.3, max_notional_per_symbol=1e6)
    weights = {s: 0.3 for s in "ABCD"}
    capped = cap_target_weights(weights, 100_000.0, {s: 1.0 for s in "ABCD"}, limits)
    assert sum(capped.values()) == pytest.approx(1.0)
    assert all(w == pytest.approx(0.25) for w in capped.values())


@given(
    weights=st.dictionaries(st.sampled_from("ABCDEF"), floats, max_size=6),
    equity=floats,
    fraction=floats,
    notional=floats,
    gross=floats,
)
def test_capped_weights_never_exceed_the_ceilings(
    weights: dict[str, float], equity: float, fraction: float, notional: float, gross: float
) -> None:
    limits = RiskLimits(
        max_position_fraction=fraction, max_notional_per_symbol=notional, max_gross_exposure=gross
    )
    capped = cap_target_weights(weights, equity, dict.fromkeys("ABCDEF", 10.0), limits)
    for w in capped.values():
        assert abs(w) <= HARD_CEILING_POSITION_FRACTION
        if math.isfinite(equity) and equity > 0:
            assert abs(w) * equity <= HARD_CEILING_NOTIONAL_CAP * (1 + 1e-12)
    if gross >= 0 and capped:
        assert sum(abs(w) for w in capped.values()) <= gross * (1 + 1e-9) + 1e-12


def test_performance_from_equity() -> None:
    flat = performance_from_equity([100.0] * 10, [])
    assert math.isnan(flat.sharpe)
    assert math.isnan(flat.win_rate)
    assert flat.observations == 9
    assert flat.drawdown == 0.0
    curve = [100.0, 102.0, 101.0, 104.0, 103.0, 107.0]
    snap = performance_from_equity(curve, [5.0, -1.0, 2.0, math.nan])
    assert snap.sharpe > 0
    assert snap.win_rate == pytest.approx(2 / 3)
    assert snap.drawdown == pytest.approx(1 - 101.0 / 102.0)
