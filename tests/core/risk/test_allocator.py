"""Regime-aware allocator (T8): shadow reports only, full applies inside the current limits."""

from __future__ import annotations

import math

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from aistock_actors.core.risk.allocator import (
    AllocatorMode,
    AllocatorParams,
    RegimeProfile,
    allocate,
    apply_profile,
)
from aistock_actors.core.risk.ceilings import (
    HARD_CEILING_NOTIONAL_CAP,
    HARD_CEILING_POSITION_FRACTION,
)
from aistock_actors.core.risk.policy import RiskLimits, clamp_to_ceilings

LIMITS = RiskLimits(max_position_fraction=0.20, max_notional_per_symbol=100_000.0)
PROFILES = {
    "volatile_down": RegimeProfile(position_size_multiplier=0.5, max_gross_exposure=0.6),
    "calm_up": RegimeProfile(position_size_multiplier=1.5, notional_multiplier=2.0),
}


def params(mode: AllocatorMode) -> AllocatorParams:
    return AllocatorParams(mode=mode, profiles=PROFILES)


def test_shadow_mode_reports_but_changes_nothing() -> None:
    decision = allocate("volatile_down", 0.9, LIMITS, params("shadow"))
    assert decision.applied_limits == LIMITS
    assert decision.changed is False
    assert decision.would_change is True
    assert decision.proposed_limits.max_position_fraction == 0.10
    assert decision.proposed_limits.max_gross_exposure == 0.6
    assert decision.profile_name == "volatile_down"
    assert "mode_shadow" in decision.reasons


def test_full_mode_applies_the_regime_profile() -> None:
    decision = allocate("volatile_down", 0.9, LIMITS, params("full"))
    assert decision.changed is True
    assert decision.applied_limits == decision.proposed_limits
    assert decision.applied_limits.max_position_fraction == 0.10
    assert decision.applied_limits.max_notional_per_symbol == 100_000.0


def test_multiplier_above_one_never_loosens_limits() -> None:
    decision = allocate("calm_up", None, LIMITS, params("full"))
    assert decision.applied_limits == LIMITS
    assert decision.changed is False
    wild = RiskLimits(max_position_fraction=0.9, max_notional_per_symbol=1e9)
    applied = allocate("calm_up", 1.0, wild, params("full")).applied_limits
    assert applied.max_position_fraction == HARD_CEILING_POSITION_FRACTION
    assert applied.max_notional_per_symbol == HARD_CEILING_NOTIONAL_CAP


def test_unknown_regime_or_low_confidence_uses_the_default_profile() -> None:
    p = AllocatorParams(mode="full", profiles=PROFILES, min_confidence=0.6)
    for regime, confidence, reason in [
        ("martian", 0.9, "unknown_regime"),
        ("volatile_down", 0.3, "low_confidence"),
        ("volatile_down", math.nan, "low_confidence"),
    ]:
        decision = allocate(regime, confidence, LIMITS, p)
        assert decision.profile_name == "default"
        assert reason in decision.reasons
        assert decision.applied_limits == LIMITS
    assert allocate("volatile_down", None, LIMITS, p).profile_name == "volatile_down"


def test_non_finite_or_negative_multipliers_fail_closed() -> None:
    nan_profile = RegimeProfile(position_size_multiplier=math.nan, notional_multiplier=-1.0)
    limits = apply_profile(LIMITS, nan_profile)
    assert limits.max_position_fraction == 0.0
    assert limits.max_notional_per_symbol == 0.0


def test_params_decode_from_json_config() -> None:
    raw = b'{"mode": "full", "profiles": {"volatile_down": {"position_size_multiplier": 0.5}}}'
    decoded = msgspec.json.decode(raw, type=AllocatorParams)
    assert decoded.profiles["volatile_down"].position_size_multiplier == 0.5
    assert decoded.default_profile == RegimeProfile()


floats = st.floats(allow_nan=True, allow_infinity=True)


@given(
    fraction=floats,
    notional=floats,
    gross=floats,
    mult=floats,
    nmult=floats,
    cap=st.none() | floats,
)
def test_full_mode_never_exceeds_current_limits_or_ceilings(
    fraction: float, notional: float, gross: float, mult: float, nmult: float, cap: float | None
) -> None:
    limits = RiskLimits(
        max_position_fraction=fraction, max_notional_per_symbol=notional, max_gross_exposure=gross
    )
    profile = RegimeProfile(
        position_size_multiplier=mult, notional_multiplier=nmult, max_gross_exposure=cap
    )
    p = AllocatorParams(mode="full", profiles={"r": profile})
    applied = allocate("r", 1.0, limits, p).applied_limits
    base = clamp_to_ceilings(limits)
    assert 0.0 <= applied.max_position_fraction <= base.max_position_fraction
    assert 0.0 <= applied.max_notional_per_symbol <= base.max_notional_per_symbol
    assert 0.0 <= applied.max_gross_exposure <= base.max_gross_exposure
    assert applied.max_position_fraction <= HARD_CEILING_POSITION_FRACTION
    assert applied.max_notional_per_symbol <= HARD_CEILING_NOTIONAL_CAP
