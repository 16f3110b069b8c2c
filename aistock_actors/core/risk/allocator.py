"""Regime-aware strategy allocator (T8): per-regime sizing inside the current risk limits.

``shadow`` mode only reports what it would change (for audit, to validate before trusting it);
``full`` mode applies the regime's profile. A profile can only make limits stricter: the result is
``min(current, current x multiplier)`` per limit, then clamped to the hard ceilings, so a
multiplier above 1 changes nothing. The adaptive ``min_risk_floor`` does not apply here: a regime
profile may deliberately take sizing to 0 (for instance "no new risk in a crash"). Apply it each
cycle to the risk policy's limits and persist those, never the allocator's output: fed back into
``propose_limits``, regime cuts would compound cycle after cycle.

The regime is :func:`latest_regime`: the newest label of
:func:`~aistock_actors.core.market.regimes.market_regimes` with its default parameters, exactly the
labels the backtester uses for the transition drawdown (T2), so a profile named ``volatile_down``
means the same bars in both places.

Profile selection: an unknown regime name, a NaN confidence, or a confidence below
``min_confidence`` falls back to the default profile; ``confidence=None`` (a classifier without
confidence) trusts the regime label.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
import numpy.typing as npt

from aistock_actors.core.risk.allocator_params import (
    AllocatorMode as AllocatorMode,
)
from aistock_actors.core.risk.allocator_params import (
    AllocatorParams as AllocatorParams,
)
from aistock_actors.core.risk.allocator_params import (
    Multiplier as Multiplier,
)
from aistock_actors.core.risk.allocator_params import (
    RegimeName as RegimeName,
)
from aistock_actors.core.risk.allocator_params import (
    RegimeProfile as RegimeProfile,
)
from aistock_actors.core.risk.policy import RiskLimits, clamp_to_ceilings


class AllocationDecision(msgspec.Struct, frozen=True, kw_only=True):
    """What the allocator proposed and what it applied (both audit-logged each cycle)."""

    regime: str
    confidence: float | None
    profile_name: str
    """The regime whose profile was used, or ``default``."""
    profile: RegimeProfile
    proposed_limits: RiskLimits
    applied_limits: RiskLimits
    """Equal to the input limits in ``shadow`` mode."""
    mode: AllocatorMode
    changed: bool
    """``applied_limits`` differ from the input limits."""
    would_change: bool
    """``proposed_limits`` differ from the input limits (what shadow mode reports)."""
    reasons: list[str]


def select_profile(
    regime: str, confidence: float | None, params: AllocatorParams
) -> tuple[str, RegimeProfile, list[str]]:
    """Pick the profile for ``regime``: ``(name, profile, reasons)``."""
    profile = params.profiles.get(regime)  # type: ignore[call-overload]
    if profile is None:
        return "default", params.default_profile, ["unknown_regime"]
    if confidence is not None and not confidence >= params.min_confidence:
        return "default", params.default_profile, ["low_confidence"]
    return regime, profile, [f"regime_{regime}"]


def _shrink(value: float, multiplier: float) -> float:
    factor = multiplier if multiplier >= 0.0 else 0.0
    return min(value, value * factor) if math.isfinite(factor) else value


def apply_profile(limits: RiskLimits, profile: RegimeProfile) -> RiskLimits:
    """Limits under ``profile``: never looser than ``limits`` nor the hard ceilings."""
    base = clamp_to_ceilings(limits)
    gross = base.max_gross_exposure
    cap = profile.max_gross_exposure
    if cap is not None:
        gross = min(gross, cap) if cap >= 0.0 else 0.0
    return clamp_to_ceilings(
        RiskLimits(
            max_position_fraction=_shrink(
                base.max_position_fraction, profile.position_size_multiplier
            ),
            max_notional_per_symbol=_shrink(
                base.max_notional_per_symbol, profile.notional_multiplier
            ),
            max_gross_exposure=gross,
        )
    )


def allocate(
    regime: str, confidence: float | None, limits: RiskLimits, params: AllocatorParams
) -> AllocationDecision:
    """Propose regime-specific limits; apply them only in ``full`` mode."""
    name, profile, reasons = select_profile(regime, confidence, params)
    proposed = apply_profile(limits, profile)
    applied = proposed if params.mode == "full" else limits
    return AllocationDecision(
        regime=regime,
        confidence=confidence,
        profile_name=name,
        profile=profile,
        proposed_limits=proposed,
        applied_limits=applied,
        mode=params.mode,
        changed=applied != limits,
        would_change=proposed != limits,
        reasons=[*reasons, f"mode_{params.mode}"],
    )


def latest_regime(close_panel: npt.ArrayLike) -> str:
    """Regime name of the newest bar of a ``bars x symbols`` close panel (``unknown`` if none).

    Same labels as the backtester: :func:`~aistock_actors.core.market.regimes.market_regimes` with
    its
    defaults over the universe's equal-weight index.
    """
    panel = np.asarray(close_panel, dtype=np.float64)
    if panel.ndim != 2 or panel.shape[0] == 0 or panel.shape[1] == 0:
        return "unknown"
    from aistock_actors.core.market.regimes import market_regimes, regime_name  # pandas: lazily

    codes = market_regimes(panel)
    return regime_name(int(codes[-1]))
