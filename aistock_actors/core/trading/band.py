"""The no-trade band (issue #14): when a held position is left alone although its weight drifted
from its target; one rule for the paper trader's order planning and the backtest's fills."""

from __future__ import annotations

import math


def holds_in_band(
    current_weight: float, target_weight: float, band: float, max_weight: float = math.inf
) -> bool:
    """Whether a position of ``current_weight`` (signed fraction of equity) is kept as it is
    instead of being resized to ``target_weight``.

    Kept when it is on the target's side and ``|target - current| <= band x |target|``, unless
    it is above ``max_weight`` in magnitude (the live position limit: a drift never holds a
    position above it). Opening, closing and flipping are never held; ``band = 0`` holds
    nothing (every drift is resized).
    """
    if not band > 0.0 or current_weight * target_weight <= 0.0:
        return False
    if abs(current_weight) > max_weight:
        return False
    return abs(target_weight - current_weight) <= band * abs(target_weight)
