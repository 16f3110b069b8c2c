"""Paper-trading targets of an active strategy artifact: its weights on the latest bar, sized
and capped exactly like a model's signals.

A built-in rule's weights come from
:class:`~aistock_actors.core.strategy.live_rules.LiveRuleWeights` (O(new bars) a cycle, the same
bits as the full computation); any other strategy runs its full ``features`` and ``weights`` on
the whole history.

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
from aistock_actors.core.data.bars import bars_frame
from aistock_actors.core.risk.policy import RiskLimits, cap_target_weights, clamp_to_ceilings
from aistock_actors.core.strategy.artifact import StrategyModel
from aistock_actors.core.strategy.live_rules import LiveRuleWeights
from aistock_actors.core.strategy.protocol import Strategy, per_name_weight
from aistock_actors.core.strategy.walkforward import latest_weights
from aistock_actors.core.trading.cycle import BarArrays
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
    return sized_weights(latest_weights(frames, strategy, state), len(frames), equity, prices,
                         limits)


def sized_weights(
    raw: Mapping[str, float],
    n_symbols: int,
    equity: float,
    prices: Mapping[str, float],
    limits: RiskLimits,
) -> dict[str, float]:
    """Weights in fractions of a full position -> capped fractions of equity (the one sizing
    of :func:`sized_targets` and the live path)."""
    eff = clamp_to_ceilings(limits)
    per_name = min(
        per_name_weight(n_symbols, eff.max_position_fraction, eff.max_gross_exposure), 1.0
    )
    weights = {s: math.copysign(per_name * abs(w), w) for s, w in sorted(raw.items()) if w != 0.0}
    return cap_target_weights(weights, equity, prices, limits)


def strategy_targets(
    artifact: StrategyModel,
    loaded: LoadedConfig,
    arrays: Mapping[str, BarArrays],
    equity: float,
    prices: Mapping[str, float],
    limits: RiskLimits,
    live: LiveRuleWeights | None = None,
) -> dict[str, float]:
    """:func:`sized_targets` of the artifact's strategy on ``arrays`` (the bar store's
    ``{symbol: (timestamps, OHLCV)}``). With ``live``, a built-in rule's weights are carried
    from the previous call (:class:`LiveRuleWeights`); other strategies, and every strategy
    without ``live``, run in full (a user strategy is loaded from its source and refused if
    that changed: ``ModelIntegrityError``); a failing strategy raises
    :class:`~aistock_actors.errors.StrategyError` naming it."""
    strategy = resolve_strategy(artifact, loaded)
    nonempty = {s: a for s, a in arrays.items() if len(a[0])}
    if not nonempty:
        return {}
    raw = live.latest(artifact.model_id, strategy, artifact.state, nonempty) if live else None
    if raw is None:
        frames = {s: bars_frame(ts, values) for s, (ts, values) in sorted(nonempty.items())}
        return sized_targets(strategy, artifact.state, frames, equity, prices, limits)
    return sized_weights(raw, len(nonempty), equity, prices, limits)
