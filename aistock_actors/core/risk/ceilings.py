"""Hard safety ceilings: fixed in code, never overridable by configuration or adaptive rules."""

from __future__ import annotations

HARD_CEILING_POSITION_FRACTION = 0.30
"""No single position may exceed 30 % of portfolio equity."""

HARD_CEILING_NOTIONAL_CAP = 500_000.0
"""No symbol's notional exposure may exceed $500K."""


def clamp_position_fraction(value: float) -> float:
    """Return ``value`` clamped into ``[0, HARD_CEILING_POSITION_FRACTION]``."""
    return min(max(value, 0.0), HARD_CEILING_POSITION_FRACTION)


def clamp_notional(value: float) -> float:
    """Return ``value`` clamped into ``[0, HARD_CEILING_NOTIONAL_CAP]``."""
    return min(max(value, 0.0), HARD_CEILING_NOTIONAL_CAP)
