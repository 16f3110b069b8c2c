"""Paper-trading targets of an active strategy artifact: its weights on the latest bar, sized
and capped exactly like a model's signals.

``weights()`` on the newest bar (fractions of a full position, refused if NaN, infinite or above
1) x :func:`~aistock_actors.core.strategy.protocol.per_name_weight` of the universe inside the
effective limits (the hard ceilings applied first), then
:func:`~aistock_actors.core.risk.policy.cap_target_weights`: no strategy can exceed the ceilings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from aistock_actors.config import LoadedConfig
from aistock_actors.core.risk.policy import RiskLimits, cap_target_weights, clamp_to_ceilings
from aistock_actors.core.strategy.artifact import StrategyModel
from aistock_actors.core.strategy.protocol import Strategy, per_name_weight
from aistock_actors.core.strategy.walkforward import latest_weights
from aistock_actors.services.strategy_candidates import resolve_strategy


def sized_targets(
    strategy: Strategy,
    state: object,
    frames: dict[str, pd.DataFrame],
    equity: float,
    prices: Mapping[str, float],
    limits: RiskLimits,
) -> dict[str, float]:
    """The fitted ``strategy``'s capped target weights (fractions of equity) at the newest bar."""
    if not frames:
        return {}
    raw = latest_weights(frames, strategy, state)
    eff = clamp_to_ceilings(limits)
    per_name = min(
        per_name_weight(len(frames), eff.max_position_fraction, eff.max_gross_exposure), 1.0
    )
    weights = {s: math.copysign(per_name * abs(w), w) for s, w in sorted(raw.items()) if w != 0.0}
    return cap_target_weights(weights, equity, prices, limits)


def strategy_targets(
    artifact: StrategyModel,
    loaded: LoadedConfig,
    frames: dict[str, pd.DataFrame],
    equity: float,
    prices: Mapping[str, float],
    limits: RiskLimits,
) -> dict[str, float]:
    """:func:`sized_targets` of the artifact's strategy (a user strategy is loaded from its
    source and refused if that changed: ``ModelIntegrityError``); a failing strategy raises
    :class:`~aistock_actors.errors.StrategyError` naming it."""
    return sized_targets(resolve_strategy(artifact, loaded), artifact.state, frames, equity,
                         prices, limits)
