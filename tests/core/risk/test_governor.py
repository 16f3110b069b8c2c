"""The RiskGovernor's rules (core/governor.py): when adapted limits apply, wait, are superseded."""

from __future__ import annotations

import math

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aistock_actors.core.risk.allocator import AllocatorParams, RegimeProfile, allocate
from aistock_actors.core.risk.ceilings import (
    HARD_CEILING_NOTIONAL_CAP,
    HARD_CEILING_POSITION_FRACTION,
)
from aistock_actors.core.risk.governor import (
    HISTORY_LIMIT,
    Governed,
    Mode,
    OperatorDecision,
    RiskState,
    govern,
    initial_state,
)
from aistock_actors.core.risk.policy import PerformanceSnapshot, RiskLimits, RiskPolicyParams

CONFIG = RiskLimits(max_position_fraction=0.2, max_notional_per_symbol=100_000.0)
PARAMS = RiskPolicyParams(max_risk_increase_pct=0.05, min_risk_floor=0.1)
POOR = PerformanceSnapshot(sharpe=0.1, drawdown=0.05, win_rate=0.5, observations=30)
STRONG = PerformanceSnapshot(sharpe=2.0, drawdown=0.02, win_rate=0.7, observations=30)
NEUTRAL = PerformanceSnapshot(sharpe=0.8, drawdown=0.05, win_rate=0.5, observations=30)


def step(
    state: RiskState,
    perf: PerformanceSnapshot,
    evidence: str,
    *,
    mode: Mode = "headless",
    decisions: list[OperatorDecision] | None = None,
    config: RiskLimits = CONFIG,
    params: RiskPolicyParams = PARAMS,
) -> Governed:
    return govern(state, config_limits=config, perf=perf, evidence=evidence, params=params,
                  mode=mode, decisions=decisions or [], cycle_id=f"c-{evidence}", now=evidence)


def approve(change_id: str, ok: bool = True) -> OperatorDecision:
    return OperatorDecision(id=change_id, decision="approved" if ok else "rejected",
                            decided_at="2024-01-01T00:00:00Z")


def test_tightening_applies_at_once_and_is_audited_with_before_after_and_reason() -> None:
    result = step(initial_state(CONFIG), POOR, "t1", mode="supervised")
    assert result.state.limits.max_position_fraction == 0.2 * 0.8
    (event,) = result.events
    assert event.action == "risk_limits_adjusted"
    assert event.details["reason"] == "tightened_on_poor_performance"
    assert event.details["before"]["max_position_fraction"] == 0.2
    assert event.details["after"]["max_position_fraction"] == 0.2 * 0.8
    assert result.summary == "tightened"
    assert result.state.history[-1].reason == "tightened_on_poor_performance"


def test_no_new_evidence_changes_nothing() -> None:
    first = step(initial_state(CONFIG), POOR, "t1")
    again = step(first.state, POOR, "t1")
    assert again.state.limits == first.state.limits
    assert again.events == [] and again.summary == "no_new_observations"
    assert step(again.state, POOR, "t2").state.limits.max_position_fraction < 0.2 * 0.8


def test_headless_expansion_applies_supervised_waits_for_approval() -> None:
    headless = step(initial_state(CONFIG), STRONG, "t1")
    assert headless.state.limits.max_position_fraction == 0.2 * 1.05
    held = step(initial_state(CONFIG), STRONG, "t1", mode="supervised")
    assert held.state.limits == initial_state(CONFIG).limits
    assert held.summary == "pending"
    pending = held.state.pending
    assert pending is not None and pending.id == "risk-1"
    assert [e.action for e in held.events] == ["risk_change_pending"]
    # The same proposal next cycle keeps its id instead of opening risk-2.
    same = step(held.state, STRONG, "t2", mode="supervised")
    assert same.state.pending == pending and same.events == []
    applied = step(same.state, NEUTRAL, "t3", mode="supervised", decisions=[approve("risk-1")])
    assert applied.state.limits.max_position_fraction == 0.2 * 1.05
    assert applied.state.pending is None
    assert applied.events[0].details["reason"] == "expansion_approved_by_operator"
    assert applied.state.history[-1].applied_by == "operator"


def test_approval_after_a_tightening_is_superseded() -> None:
    held = step(initial_state(CONFIG), STRONG, "t1", mode="supervised")
    tightened = step(held.state, POOR, "t2", mode="supervised")
    assert tightened.state.pending is None
    assert "risk_change_superseded" in [e.action for e in tightened.events]
    late = step(tightened.state, NEUTRAL, "t3", mode="supervised", decisions=[approve("risk-1")])
    assert late.state.limits == tightened.state.limits


def test_rejection_sticks_until_the_limits_change() -> None:
    held = step(initial_state(CONFIG), STRONG, "t1", mode="supervised")
    rejected = step(held.state, STRONG, "t2", mode="supervised",
                    decisions=[approve("risk-1", ok=False)])
    assert rejected.state.pending is not None and rejected.state.pending.status == "rejected"
    again = step(rejected.state, STRONG, "t3", mode="supervised")
    assert again.state.pending == rejected.state.pending  # not re-opened as risk-2
    assert again.state.limits == initial_state(CONFIG).limits


def test_auto_adjustment_off_keeps_limits_fixed() -> None:
    params = msgspec.structs.replace(PARAMS, enable_auto_adjustment=False)
    state = initial_state(CONFIG)
    for i, perf in enumerate([POOR, STRONG, POOR]):
        state = step(state, perf, f"t{i}", params=params).state
    assert state.limits == initial_state(CONFIG).limits and state.history == []


def test_config_change_resets_the_limits_in_force() -> None:
    tightened = step(initial_state(CONFIG), POOR, "t1").state
    new_config = RiskLimits(max_position_fraction=0.15, max_notional_per_symbol=900_000.0)
    reset = step(tightened, NEUTRAL, "t2", config=new_config)
    assert reset.state.limits == RiskLimits(max_position_fraction=0.15,
                                            max_notional_per_symbol=HARD_CEILING_NOTIONAL_CAP)
    assert reset.events[0].details["reason"] == "config_changed"


def test_history_is_bounded() -> None:
    state = initial_state(CONFIG)
    for i in range(HISTORY_LIMIT + 20):
        state = step(state, POOR if i % 2 else STRONG, f"t{i:05d}",
                     params=msgspec.structs.replace(PARAMS, min_risk_floor=0.0)).state
    assert len(state.history) == HISTORY_LIMIT


finite = st.floats(-5.0, 5.0)
perfs = st.builds(
    PerformanceSnapshot,
    sharpe=st.one_of(finite, st.just(math.nan), st.just(-math.inf), st.just(math.inf)),
    drawdown=st.one_of(st.floats(-1.0, 2.0), st.just(math.nan), st.just(math.inf)),
    win_rate=st.one_of(st.floats(0.0, 1.0), st.just(math.nan)),
    observations=st.integers(0, 100),
)
limits_st = st.builds(
    RiskLimits,
    max_position_fraction=st.floats(0.001, 1.0),
    max_notional_per_symbol=st.floats(1.0, 2e6),
    max_gross_exposure=st.floats(0.01, 3.0),
)
params_st = st.builds(
    RiskPolicyParams,
    enable_auto_adjustment=st.booleans(),
    max_risk_increase_pct=st.floats(0.0, 1.0),
    min_risk_floor=st.floats(0.0, 1.0),
    min_observations=st.integers(1, 30),
)
profiles_st = st.builds(
    RegimeProfile,
    position_size_multiplier=st.floats(0.0, 1.0),
    notional_multiplier=st.floats(0.0, 1.0),
    max_gross_exposure=st.none() | st.floats(0.0, 3.0),
)
steps_st = st.lists(
    st.tuples(perfs, st.booleans(), st.booleans(), st.sampled_from(["approved", "rejected"]),
              st.booleans()),
    min_size=1, max_size=25,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=limits_st, new_config=limits_st, params=params_st, steps=steps_st,
       mode=st.sampled_from(["manual", "supervised", "headless"]),
       profile=profiles_st, alloc_mode=st.sampled_from(["shadow", "full"]))
def test_limits_stay_between_floor_and_ceiling_for_any_sequence_and_config(
    config: RiskLimits, new_config: RiskLimits, params: RiskPolicyParams,
    steps: list[tuple[PerformanceSnapshot, bool, bool, str, bool]], mode: Mode,
    profile: RegimeProfile, alloc_mode: str,
) -> None:
    """The actor's exact path: govern(), then the allocator on the policy's limits."""
    allocator = msgspec.convert(
        {"mode": alloc_mode, "default_profile": msgspec.to_builtins(profile)}, AllocatorParams)
    state = initial_state(config)
    floor = min(params.min_risk_floor, HARD_CEILING_POSITION_FRACTION)
    current_config = config
    for i, (perf, new_evidence, decide, verdict, switch_config) in enumerate(steps):
        if switch_config:
            current_config = new_config if current_config is config else config
        pending = state.pending
        decisions = ([OperatorDecision(id=pending.id, decision=verdict, decided_at="x")]  # type: ignore[arg-type]
                     if decide and pending is not None else [])
        result = step(state, perf, f"t{i}" if new_evidence else state.evaluated_through or "",
                      mode=mode, decisions=decisions, config=current_config, params=params)
        allocation = allocate("volatile_down", None, result.state.limits, allocator)
        state = msgspec.structs.replace(result.state, effective=allocation.applied_limits)
        lim, eff = state.limits, state.effective
        baseline = state.baseline.max_position_fraction
        assert lim.max_position_fraction <= HARD_CEILING_POSITION_FRACTION
        assert lim.max_position_fraction >= min(floor, baseline) - 1e-12
        assert lim.max_notional_per_symbol <= HARD_CEILING_NOTIONAL_CAP
        assert eff.max_position_fraction <= lim.max_position_fraction
        assert eff.max_notional_per_symbol <= lim.max_notional_per_symbol
        assert eff.max_gross_exposure <= lim.max_gross_exposure
        for change in state.history:
            assert change.after.max_position_fraction <= HARD_CEILING_POSITION_FRACTION
        if mode != "headless" and not result.events:
            assert result.summary in ("unchanged", "no_new_observations", "pending", "rejected")
    assert msgspec.json.decode(msgspec.json.encode(state), type=RiskState) == state
