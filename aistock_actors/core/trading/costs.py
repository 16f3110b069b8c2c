"""Execution cost model and cost calibrator (T4: price improvement is never clipped).

Units are basis points of the reference price. The model's *slippage* (half spread plus a
square-root market impact) is what a fill price deviates from its reference; the commission is a
known fee charged on top and is not calibrated. Realised cost is signed: paying more than the
reference on a buy (or receiving less on a sell) is positive, price improvement is NEGATIVE and
reaches the calibrator as it is, so the measured cost surprise is unbiased.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt

Side = Literal["buy", "sell"]
BPS = 10_000.0
MAX_SLIPPAGE_BPS = 5_000.0
"""Modelled slippage is capped at 50 % so a simulated sell price always stays positive."""


class CostModel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Predicts the cost of a trade from its size relative to the bar's traded value.

    The one cost model of the system: the paper trader's fills and the backtest simulator
    (:mod:`aistock_actors.core.backtest.simulator`, which charges ``commission_rate`` plus the
    half spread plus ``impact_bps x sqrt(participation)`` on each fill's notional) both take it.
    """

    commission_rate: float = 0.0005
    """Commission as a fraction of traded notional (5 bps)."""
    half_spread_bps: float = 2.0
    """Half the quoted spread, paid on every fill."""
    impact_bps: float = 50.0
    """Impact in bps at 100 % participation; impact = ``impact_bps x sqrt(participation)``."""
    symbol_bps: tuple[float, ...] | None = None
    """Per-symbol replacement of ``half_spread_bps`` in the backtest (calibrated bps; NaN keeps
    the default; negative = price improvement)."""

    @property
    def impact_fraction(self) -> float:
        """``impact_bps`` as a fraction of notional (the simulator's unit)."""
        return self.impact_bps / BPS

    def slippage_rates(self, n_symbols: int) -> npt.NDArray[np.float64]:
        """Per-symbol half spread as a fraction of notional (``half_spread_bps`` or its
        ``symbol_bps`` override); ``ValueError`` if the override has the wrong length."""
        rates = np.full(n_symbols, self.half_spread_bps / BPS, dtype=np.float64)
        if self.symbol_bps is not None:
            override = np.asarray(self.symbol_bps, dtype=np.float64)
            if override.shape != (n_symbols,):
                raise ValueError(f"symbol_bps needs {n_symbols} values, got {override.shape}")
            known = np.isfinite(override)
            rates[known] = override[known] / BPS
        return rates

    def slippage_bps(self, notional: float, bar_volume_notional: float) -> float:
        """Modelled price slippage (half spread + impact), in ``[0, MAX_SLIPPAGE_BPS]``.

        Unknown or zero bar volume is taken as 100 % participation (worst case).
        """
        notional = abs(notional) if math.isfinite(notional) else 0.0
        if math.isfinite(bar_volume_notional) and bar_volume_notional > 0.0:
            participation = notional / bar_volume_notional
        else:
            participation = 1.0
        spread = self.half_spread_bps if self.half_spread_bps > 0.0 else 0.0
        coef = self.impact_bps if self.impact_bps > 0.0 else 0.0
        return min(spread + coef * math.sqrt(participation), MAX_SLIPPAGE_BPS)

    def predicted_cost_bps(self, notional: float, bar_volume_notional: float) -> float:
        """Predicted cost comparable with :func:`realised_cost_bps` (slippage, no commission)."""
        return self.slippage_bps(notional, bar_volume_notional)

    def total_cost_bps(self, notional: float, bar_volume_notional: float) -> float:
        """Slippage plus commission: the all-in predicted cost of a trade."""
        commission = self.commission_rate if self.commission_rate > 0.0 else 0.0
        return self.slippage_bps(notional, bar_volume_notional) + commission * BPS

    def fill_price(
        self, side: Side, reference_price: float, notional: float, bar_volume_notional: float
    ) -> float:
        """Simulated fill price: the reference moved against the trader by the slippage."""
        slip = self.slippage_bps(notional, bar_volume_notional) / BPS
        return reference_price * (1.0 + slip if side == "buy" else 1.0 - slip)

    def commission(self, quantity: float, fill_price: float) -> float:
        """Commission charged on a fill (never negative)."""
        rate = self.commission_rate if self.commission_rate > 0.0 else 0.0
        return rate * abs(quantity) * fill_price


def realised_cost_bps(side: Side, fill_price: float, reference_price: float) -> float:
    """Signed realised cost in bps: positive = paid more (buy) / got less (sell) than reference.

    Price improvement is negative and is NOT clipped (T4). An invalid reference (non-finite or not
    positive) or fill price gives NaN, which the calibrator ignores.
    """
    valid = math.isfinite(fill_price) and math.isfinite(reference_price)
    if not valid or reference_price <= 0.0:
        return math.nan
    sign = 1.0 if side == "buy" else -1.0
    return sign * (fill_price - reference_price) / reference_price * BPS


class CostStats(msgspec.Struct, frozen=True, kw_only=True):
    """Running cost surprise of one key (a symbol or a liquidity bucket)."""

    ewma_surprise_bps: float
    """EWMA of ``realised - predicted``; negative = executions better than predicted."""
    count: int
    min_surprise_bps: float
    max_surprise_bps: float
    price_improvements: int = 0
    """Fills whose realised cost was negative."""
    last_realised_bps: float = 0.0


class CostCalibratorState(msgspec.Struct, frozen=True, kw_only=True):
    """Per-key cost-surprise statistics; persisted as JSON by the owning actor."""

    stats: dict[str, CostStats] = {}


class CostNote(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`record_fill` did, for the actor's log (price improvement is flagged)."""

    key: str
    predicted_bps: float
    realised_bps: float
    surprise_bps: float
    price_improvement: bool
    """True when ``realised_bps < 0``: the fill beat its reference price."""
    ignored: str | None = None
    """Why the observation was not recorded (``non_finite_cost``), else None."""


def _alpha(alpha: float) -> float:
    return min(max(alpha, 0.0), 1.0) if not math.isnan(alpha) else 0.1


def record_fill(
    state: CostCalibratorState, key: str, predicted_bps: float, realised_bps: float, alpha: float
) -> tuple[CostCalibratorState, CostNote]:
    """Fold one fill's cost surprise into ``key``'s EWMA (the first fill seeds it).

    ``alpha`` is clamped into ``[0, 1]`` (NaN -> 0.1); the EWMA therefore always lies between the
    smallest and largest surprise observed for the key. Non-finite costs leave the state unchanged.
    """
    surprise = realised_bps - predicted_bps
    note = CostNote(
        key=key,
        predicted_bps=predicted_bps,
        realised_bps=realised_bps,
        surprise_bps=surprise,
        price_improvement=realised_bps < 0.0,
    )
    if not math.isfinite(surprise):
        return state, msgspec.structs.replace(note, ignored="non_finite_cost")
    old = state.stats.get(key)
    if old is None:
        ewma, lo, hi, count, improvements = surprise, surprise, surprise, 0, 0
    else:
        lo = min(old.min_surprise_bps, surprise)
        hi = max(old.max_surprise_bps, surprise)
        a = _alpha(alpha)
        ewma = min(max((1.0 - a) * old.ewma_surprise_bps + a * surprise, lo), hi)
        count, improvements = old.count, old.price_improvements
    stats = CostStats(
        ewma_surprise_bps=ewma,
        count=count + 1,
        min_surprise_bps=lo,
        max_surprise_bps=hi,
        price_improvements=improvements + (1 if realised_bps < 0.0 else 0),
        last_realised_bps=realised_bps,
    )
    return CostCalibratorState(stats={**state.stats, key: stats}), note


def calibrated_bps(
    state: CostCalibratorState,
    key: str,
    base_bps: float,
    *,
    min_count: int = 1,
    floor_bps: float | None = 0.0,
) -> float:
    """The backtester's cost assumption for ``key``: ``base_bps`` plus the learned surprise.

    With fewer than ``min_count`` observations ``base_bps`` is returned. The surprise itself is
    never clipped; only the final assumption is floored at ``floor_bps`` (default 0, so a backtest
    is never paid for trading; pass None for no floor).
    """
    stats = state.stats.get(key)
    value = base_bps
    if stats is not None and stats.count >= min_count:
        value = base_bps + stats.ewma_surprise_bps
    return value if floor_bps is None else max(value, floor_bps)


def liquidity_bucket(bar_volume_notional: float, edges: Sequence[float] = (1e6, 1e7, 1e8)) -> str:
    """Calibrator key for a liquidity class: ``liq0`` (thinnest) ... ``liq<len(edges)>``."""
    if not math.isfinite(bar_volume_notional) or bar_volume_notional <= 0.0:
        return "liq0"
    return f"liq{sum(1 for edge in edges if bar_volume_notional >= edge)}"
