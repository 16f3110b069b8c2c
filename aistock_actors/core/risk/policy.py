"""Adaptive risk policy (the RiskGovernor's logic), always inside the hard ceilings.

Manual §3: tighten aggressively, expand conservatively, never below ``min_risk_floor``, never above
the hard ceilings of :mod:`aistock_actors.core.risk.ceilings`. Choices this module makes and
documents:

- **Several tightening triggers multiply.** Each of Sharpe < 0.5, drawdown > 15 % and win rate
  < 45 % is an independent warning, so each one cuts the position fraction by ``tighten_factor``:
  two triggers give ``x (1 - 0.2) ** 2``, three ``x 0.512``. The floor still bounds the result.
- **Expansion is relative**: ``fraction x (1 + max_risk_increase_pct)`` (3 % of 20 % is 20.6 %),
  the more conservative reading of "increase by 3-5 %"; only when all three expansion tests pass.
- **Only the position fraction adapts** ("position size" in the manual); the notional cap and the
  gross exposure are only clamped.
- **Non-finite performance never expands.** A NaN metric is *unknown*: it fires no tightening
  trigger on its own (a cold start with no trades must not ratchet risk down every cycle) and blocks
  expansion. ``-inf`` Sharpe or ``+inf`` drawdown compare as poor and tighten. Drawdown's sign is
  ignored (``-0.2`` and ``0.2`` are both a 20 % drawdown).
- **The floor only stops reductions**: a limit already below ``min(floor, ceiling)`` is never
  tightened further and never raised to the floor. So limits that start inside
  ``[min(floor, ceiling), ceiling]`` stay there for any performance and any parameters.
- Non-finite or negative limits fail closed (0); parameters are sanitised, never trusted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import msgspec
import numpy as np

from aistock_actors.core.backtest import metrics
from aistock_actors.core.risk.ceilings import (
    HARD_CEILING_NOTIONAL_CAP,
    HARD_CEILING_POSITION_FRACTION,
    clamp_notional,
    clamp_position_fraction,
)

RiskAction = Literal["tightened", "expanded", "unchanged", "clamped"]
_MAX_INCREASE = 100.0
"""Arithmetic guard on ``max_risk_increase_pct``; the hard ceiling bounds the result anyway."""
_QTY_MARGIN = 1e-9
"""Relative safety margin so that float rounding can never land a fill above a limit."""


class RiskLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Risk limits in force; read them through :func:`clamp_to_ceilings`."""

    max_position_fraction: float = 0.10
    """Largest single position as a fraction of equity (hard ceiling 0.30)."""
    max_notional_per_symbol: float = 100_000.0
    """Largest absolute notional per symbol in dollars (hard ceiling $500K)."""
    max_gross_exposure: float = 1.0
    """Sum of absolute position weights (1.0 = unlevered); no hard ceiling in the manual."""


class RiskPolicyParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Knobs of the adaptive policy (``headless`` config section plus the manual's thresholds)."""

    enable_auto_adjustment: bool = True
    """Off: limits stay as given (still clamped to the hard ceilings)."""
    max_risk_increase_pct: float = 0.03
    """Relative increase of the position fraction per expansion step."""
    min_risk_floor: float = 0.10
    """Tightening never takes the position fraction below ``min(floor, ceiling)``."""
    tighten_factor: float = 0.20
    """Cut per tightening trigger (triggers multiply)."""
    sharpe_tighten_below: float = 0.5
    drawdown_tighten_above: float = 0.15
    win_rate_tighten_below: float = 0.45
    expand_sharpe_above: float = 1.0
    expand_drawdown_below: float = 0.10
    expand_win_rate_above: float = 0.55
    min_observations: int = 1
    """Fewer observations than this: limits unchanged (metrics of nothing mean nothing)."""


class PerformanceSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Recent live (paper) performance the policy judges."""

    sharpe: float
    """Annualised Sharpe ratio of recent returns (NaN when unknown)."""
    drawdown: float
    """Maximum drawdown over the window, a positive fraction (sign ignored)."""
    win_rate: float
    """Share of winning closed trades in ``[0, 1]`` (NaN when no trade closed)."""
    observations: int
    """Number of returns the metrics were computed from."""


class RiskDecision(msgspec.Struct, frozen=True, kw_only=True):
    """What the policy proposes and why (audit-logged by the RiskGovernor)."""

    before: RiskLimits
    after: RiskLimits
    action: RiskAction
    reasons: list[str]
    """Summary reason first (``tightened_on_poor_performance``...), then triggers and notes."""
    triggers: list[str]
    """Tightening conditions that fired, e.g. ``sharpe_below_0.5``."""


class OrderCheck(msgspec.Struct, frozen=True, kw_only=True):
    """Result of :func:`check_order_against_limits`."""

    allowed_quantity: float
    """Signed quantity that may be traded (same sign as requested, never larger)."""
    violations: list[str]
    """Why it was cut: ``position_fraction_limit``, ``notional_limit`` or ``invalid_input``."""


def _finite_nonneg(value: float) -> float:
    """NaN and negatives become 0 (fail closed); ``+inf`` is kept for the caller to bound."""
    return value if value >= 0.0 else 0.0


def clamp_to_ceilings(limits: RiskLimits) -> RiskLimits:
    """Return ``limits`` inside the hard ceilings; NaN or negative values become 0."""
    return RiskLimits(
        max_position_fraction=clamp_position_fraction(_finite_nonneg(limits.max_position_fraction)),
        max_notional_per_symbol=clamp_notional(_finite_nonneg(limits.max_notional_per_symbol)),
        max_gross_exposure=_finite_nonneg(limits.max_gross_exposure),
    )


_HARD_LIMITS = RiskLimits(
    max_position_fraction=HARD_CEILING_POSITION_FRACTION,
    max_notional_per_symbol=HARD_CEILING_NOTIONAL_CAP,
    max_gross_exposure=math.inf,
)
"""The hard ceilings as limits (no gross ceiling): used when a caller passes no limits."""


def effective_floor(params: RiskPolicyParams) -> float:
    """The floor actually enforced: ``min(floor, ceiling)``, NaN or negative floor -> 0."""
    return min(_finite_nonneg(params.min_risk_floor), HARD_CEILING_POSITION_FRACTION)


def tightening_triggers(perf: PerformanceSnapshot, params: RiskPolicyParams) -> list[str]:
    """The tightening conditions that fire (NaN metrics fire none)."""
    fired: list[str] = []
    if perf.sharpe < params.sharpe_tighten_below:
        fired.append(f"sharpe_below_{params.sharpe_tighten_below:g}")
    if abs(perf.drawdown) > params.drawdown_tighten_above:
        fired.append(f"drawdown_above_{params.drawdown_tighten_above:g}")
    if perf.win_rate < params.win_rate_tighten_below:
        fired.append(f"win_rate_below_{params.win_rate_tighten_below:g}")
    return fired


def expansion_allowed(perf: PerformanceSnapshot, params: RiskPolicyParams) -> bool:
    """All three expansion tests pass and every metric is finite."""
    metrics = (perf.sharpe, perf.drawdown, perf.win_rate)
    if not all(math.isfinite(m) for m in metrics):
        return False
    return (
        perf.sharpe > params.expand_sharpe_above
        and abs(perf.drawdown) < params.expand_drawdown_below
        and perf.win_rate > params.expand_win_rate_above
    )


def _non_finite_notes(perf: PerformanceSnapshot) -> list[str]:
    named = (("sharpe", perf.sharpe), ("drawdown", perf.drawdown), ("win_rate", perf.win_rate))
    return [f"{name}_not_finite" for name, value in named if not math.isfinite(value)]


def _tightened(fraction: float, n_triggers: int, params: RiskPolicyParams) -> float:
    floor = effective_floor(params)
    if fraction <= floor:
        return fraction
    cut = params.tighten_factor if not math.isnan(params.tighten_factor) else 0.20
    keep = (1.0 - min(max(cut, 0.0), 1.0)) ** n_triggers
    return max(fraction * keep, floor)


def _expanded(fraction: float, params: RiskPolicyParams) -> float:
    step = min(_finite_nonneg(params.max_risk_increase_pct), _MAX_INCREASE)
    return clamp_position_fraction(fraction * (1.0 + step))


def _decide(current: RiskLimits, base: RiskLimits, after: RiskLimits) -> RiskAction:
    if after.max_position_fraction < base.max_position_fraction:
        return "tightened"
    if after.max_position_fraction > base.max_position_fraction:
        return "expanded"
    return "unchanged" if after == current else "clamped"


def propose_limits(
    current: RiskLimits, perf: PerformanceSnapshot, params: RiskPolicyParams
) -> RiskDecision:
    """Propose the next limits from recent performance (see module docstring for the rules)."""
    base = clamp_to_ceilings(current)
    notes = ["clamped_to_hard_ceiling"] if base != current else []
    notes += _non_finite_notes(perf)
    triggers: list[str] = []
    after = base
    if not params.enable_auto_adjustment:
        summary = "auto_adjustment_disabled"
    elif perf.observations < params.min_observations:
        summary = "insufficient_observations"
    elif triggers := tightening_triggers(perf, params):
        fraction = _tightened(base.max_position_fraction, len(triggers), params)
        after = msgspec.structs.replace(base, max_position_fraction=fraction)
        tighter = fraction < base.max_position_fraction
        summary = "tightened_on_poor_performance" if tighter else "held_at_risk_floor"
    elif expansion_allowed(perf, params):
        fraction = _expanded(base.max_position_fraction, params)
        after = msgspec.structs.replace(base, max_position_fraction=fraction)
        wider = fraction > base.max_position_fraction
        summary = "expanded_on_strong_performance" if wider else "held_at_hard_ceiling"
    else:
        summary = "performance_neutral"
    return RiskDecision(
        before=current,
        after=after,
        action=_decide(current, base, after),
        reasons=[summary, *triggers, *notes],
        triggers=triggers,
    )


def is_tightening(before: RiskLimits, after: RiskLimits) -> bool:
    """True when ``after`` is nowhere looser than ``before`` and stricter somewhere.

    The actor applies such a change at once; anything else (an expansion, a mixed change) is held
    for approval in supervised mode. Both sides are clamped first, so NaN counts as 0.
    """
    b, a = clamp_to_ceilings(before), clamp_to_ceilings(after)
    pairs = (
        (b.max_position_fraction, a.max_position_fraction),
        (b.max_notional_per_symbol, a.max_notional_per_symbol),
        (b.max_gross_exposure, a.max_gross_exposure),
    )
    return all(y <= x for x, y in pairs) and any(y < x for x, y in pairs)


def _new_exposure_cap(
    existing: float, equity: float, price: float, fraction: float, notional: float, cost: float
) -> tuple[float, str]:
    """Largest extra quantity on top of ``existing`` (same side) and the limit that binds.

    Solves ``(existing + x) * price <= fraction * (equity - x * cost)`` (equity after costs)
    and ``(existing + x) * price <= notional``.
    """
    by_fraction = (fraction * equity - existing * price) / (price + fraction * cost)
    by_notional = notional / price - existing
    binding = "position_fraction_limit" if by_fraction <= by_notional else "notional_limit"
    return max(min(by_fraction, by_notional), 0.0) * (1.0 - _QTY_MARGIN), binding


def check_order_against_limits(
    *,
    current_quantity: float,
    order_quantity: float,
    price: float,
    equity: float,
    limits: RiskLimits | None = None,
    cost_per_unit: float = 0.0,
) -> OrderCheck:
    """Cut an order so the resulting position respects the limits and the hard ceilings.

    Reducing a position is always allowed; only exposure added on a side is capped, against
    ``equity`` (valued at ``price``) minus the order's costs (``cost_per_unit`` per unit traded,
    an upper bound is fine). The hard ceilings apply even when ``limits`` is None or above them.
    """
    values = (current_quantity, order_quantity, price, equity, cost_per_unit)
    if not all(math.isfinite(v) for v in values) or price <= 0.0:
        return OrderCheck(allowed_quantity=0.0, violations=["invalid_input"])
    if order_quantity == 0.0:
        return OrderCheck(allowed_quantity=0.0, violations=[])
    eff = clamp_to_ceilings(limits) if limits is not None else _HARD_LIMITS
    same_side = current_quantity * order_quantity > 0.0
    free = 0.0 if same_side else abs(current_quantity)
    existing = abs(current_quantity) if same_side else 0.0
    extra, binding = _new_exposure_cap(
        existing,
        equity - free * max(cost_per_unit, 0.0),
        price,
        eff.max_position_fraction,
        eff.max_notional_per_symbol,
        max(cost_per_unit, 0.0),
    )
    allowed = min(abs(order_quantity), free + extra)
    if allowed >= abs(order_quantity):
        return OrderCheck(allowed_quantity=order_quantity, violations=[])
    return OrderCheck(allowed_quantity=math.copysign(allowed, order_quantity), violations=[binding])


def exposure_scale(effective: RiskLimits, configured: RiskLimits) -> float:
    """Share of the configured exposure the effective limits allow, in ``[0, 1]`` (#17).

    The tighter of position size and gross exposure; the rollback rule scales the backtest's
    expectation by it (the backtest ran at the configured limits).
    """
    eff, cfg = clamp_to_ceilings(effective), clamp_to_ceilings(configured)
    ratios = [
        eff.max_position_fraction / cfg.max_position_fraction
        if cfg.max_position_fraction > 0 else 1.0,
        eff.max_gross_exposure / cfg.max_gross_exposure if cfg.max_gross_exposure > 0 else 1.0,
    ]
    scale = min(1.0, *ratios)
    return max(0.0, scale) if math.isfinite(scale) else 1.0


def cap_target_weights(
    weights: Mapping[str, float],
    equity: float,
    prices: Mapping[str, float],
    limits: RiskLimits,
) -> dict[str, float]:
    """Cap target weights: per position ``|w| <= fraction`` and ``|w| x equity <= notional``.

    The hard ceilings are applied again whatever ``limits`` says (defence in depth). A symbol
    without a valid (finite, positive) price or with a non-finite weight gets weight 0; if the
    gross ``sum |w|`` then exceeds ``max_gross_exposure`` all weights are scaled down together.
    Non-positive or non-finite equity gives all zeros.
    """
    eff = clamp_to_ceilings(limits)
    if not (math.isfinite(equity) and equity > 0.0):
        return {symbol: 0.0 for symbol in weights}
    cap = min(eff.max_position_fraction, eff.max_notional_per_symbol / equity)
    capped: dict[str, float] = {}
    for symbol, weight in weights.items():
        price = prices.get(symbol, math.nan)
        if not (math.isfinite(weight) and math.isfinite(price) and price > 0.0):
            capped[symbol] = 0.0
            continue
        capped[symbol] = math.copysign(min(abs(weight), cap), weight)
    gross = math.fsum(abs(w) for w in capped.values())
    if gross > eff.max_gross_exposure:
        scale = eff.max_gross_exposure / gross
        capped = {symbol: w * scale for symbol, w in capped.items()}
    return capped


def performance_from_equity(
    equity: Sequence[float], trade_pnls: Sequence[float], periods_per_year: int = 252
) -> PerformanceSnapshot:
    """Summarise an equity curve and closed-trade P&Ls for :func:`propose_limits`.

    Sharpe is NaN (unknown) with fewer than two returns or flat returns: "no dispersion" is not
    evidence of poor performance. Win rate is NaN when no trade closed.
    """
    returns = metrics.simple_returns(list(equity))
    known = returns[np.isfinite(returns)]
    sharpe = math.nan
    if known.size >= 2 and float(np.std(known, ddof=1)) > 1e-15:
        sharpe = metrics.sharpe(known, periods_per_year)
    pnls = [p for p in trade_pnls if math.isfinite(p)]
    win_rate = sum(1 for p in pnls if p > 0.0) / len(pnls) if pnls else math.nan
    return PerformanceSnapshot(
        sharpe=sharpe,
        drawdown=metrics.max_drawdown(list(equity)),
        win_rate=win_rate,
        observations=int(returns.size),
    )
