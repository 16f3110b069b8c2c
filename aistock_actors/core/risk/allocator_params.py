"""The allocator's configuration (T8): per-regime sizing profiles. numpy-free, so that loading the
config (e.g. for ``--kill``) stays fast."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

AllocatorMode = Literal["shadow", "full"]


RegimeName = Literal["calm_up", "calm_down", "volatile_up", "volatile_down", "unknown"]
"""The names ``core.regimes.regime_name`` gives; a typo in the config is an error."""


Multiplier = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class RegimeProfile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Sizing overrides for one market regime (multipliers > 1 have no effect)."""

    position_size_multiplier: Multiplier = 1.0
    """Scales ``max_position_fraction``; NaN or negative -> 0 (fail closed)."""
    notional_multiplier: Multiplier = 1.0
    """Scales ``max_notional_per_symbol``; NaN or negative -> 0."""
    max_gross_exposure: Annotated[float, msgspec.Meta(ge=0.0, le=3.0)] | None = None
    """Upper bound on gross exposure in this regime; None = keep the current limit."""
    description: str = ""


class AllocatorParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Allocator configuration."""

    mode: AllocatorMode = "shadow"
    profiles: dict[RegimeName, RegimeProfile] = {}
    """Profiles by regime name (``core.regimes`` names, e.g. ``volatile_down``)."""
    default_profile: RegimeProfile = msgspec.field(default_factory=RegimeProfile)
    """Used for unknown regimes and low-confidence labels; the default changes nothing."""
    min_confidence: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.0
    """A label with a lower confidence uses the default profile."""
