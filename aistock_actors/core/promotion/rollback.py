"""Degradation rule: has the active model's live (paper) performance fallen short of its backtest?

The rule, for ``n`` bars of live data since promotion (the newest returns in full, the older ones
folded into their count and growth, #18: the same numbers):

* expected cumulative return ``E = (1 + mu) ** n - 1``, where ``mu`` is the backtest's geometric
  mean return per bar (:func:`expected_from_backtest` derives it from total return and bar count);
* realised cumulative return ``R = prod(1 + r_i) - 1`` over the live per-bar returns ``r_i``;
* ``shortfall = E - R``, a fraction of starting equity (0.05 = live is 5 percentage points behind
  where the backtest said it would be after the same number of bars);
* roll back iff ``n >= min_observations`` and ``shortfall > threshold_pct + 1e-9`` (the config's
  ``headless.degradation_threshold_pct``; the tolerance keeps float rounding from rolling back a
  model that exactly meets its expectation).

Per unit of the exposure actually allowed (#17): when the risk governor held the model under
tighter limits than its backtest ran with, ``mu`` is scaled by ``exposure_scale`` (the allowed
share of the backtest's exposure, in ``[0, 1]``), so the governor's own cut does not count as the
model's shortfall.

Too few bars never roll back (one bad day is noise). Unusable live data (NaN, inf, a bar return
below -100 %) never rolls back either -- it is reported with its own reason so the actor can
alert; rolling back on corrupt data would only swap models for no reason.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Literal

import msgspec

from aistock_actors.core.trading.orders import ReturnsRecord

EPSILON = 1e-9
"""Shortfalls within this of the threshold do not count as exceeding it."""

RollbackReason = Literal[
    "degradation_exceeds_threshold",
    "within_tolerance",
    "insufficient_observations",
    "invalid_live_returns",
]


class ExpectedPerformance(msgspec.Struct, frozen=True, kw_only=True):
    """What the backtest promised for a model."""

    model_id: str
    mean_bar_return: float
    """Geometric mean return per bar in the backtest (0.001 = 0.1 % per bar)."""


class LivePerformance(msgspec.Struct, frozen=True, kw_only=True):
    """The model's paper-trading record since it was promoted: ``earlier`` followed by
    ``bar_returns``."""

    model_id: str
    bar_returns: list[float]
    """Per-bar simple returns of the paper portfolio, oldest first."""
    earlier: ReturnsRecord | None = None
    """The record's older returns, folded (#18: ``state/paper/performance.json`` keeps only the
    newest ones in full); None: ``bar_returns`` is the whole record."""


class RollbackVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """Whether to roll back, and the numbers behind it."""

    rollback: bool
    reason: RollbackReason
    shortfall: float
    """``expected_return - realised_return``; 0.0 when the live data are unusable."""
    observations: int
    expected_return: float
    """Expected cumulative return over ``observations`` bars (0.0 when unusable)."""
    realised_return: float
    """Realised cumulative return over ``observations`` bars (0.0 when unusable)."""
    threshold_pct: float
    exposure_scale: float = 1.0
    """Share of the backtest's exposure the limits allowed; the expectation was scaled by it."""


def expected_from_backtest(model_id: str, total_return: float, bars: int) -> ExpectedPerformance:
    """Expectation from a backtest's total return over ``bars`` bars (geometric per-bar mean)."""
    if bars < 1:
        raise ValueError(f"bars must be >= 1, got {bars}")
    if not math.isfinite(total_return) or total_return <= -1.0:
        raise ValueError(f"total_return must be finite and > -1, got {total_return!r}")
    return ExpectedPerformance(
        model_id=model_id, mean_bar_return=(1.0 + total_return) ** (1.0 / bars) - 1.0
    )


def _validate(
    expected: ExpectedPerformance,
    live: LivePerformance,
    threshold_pct: float,
    min_observations: int,
) -> None:
    if expected.model_id != live.model_id:
        raise ValueError(
            f"expectation is for model {expected.model_id!r} but live data for {live.model_id!r}"
        )
    if not math.isfinite(expected.mean_bar_return) or expected.mean_bar_return <= -1.0:
        raise ValueError(f"mean_bar_return must be finite and > -1, got {expected.mean_bar_return}")
    if not math.isfinite(threshold_pct) or threshold_pct < 0.0:
        raise ValueError(f"threshold_pct must be finite and >= 0, got {threshold_pct!r}")
    if min_observations < 1:
        raise ValueError(f"min_observations must be >= 1, got {min_observations}")


def should_rollback(
    expected: ExpectedPerformance,
    live: LivePerformance,
    threshold_pct: float,
    min_observations: int = 20,
    exposure_scale: float = 1.0,
) -> RollbackVerdict:
    """Apply the module's degradation rule; raises ``ValueError`` on inconsistent arguments."""
    _validate(expected, live, threshold_pct, min_observations)
    if not (math.isfinite(exposure_scale) and 0.0 <= exposure_scale <= 1.0):
        raise ValueError(f"exposure_scale must lie in [0, 1], got {exposure_scale!r}")
    earlier = live.earlier if live.earlier is not None else ReturnsRecord()
    n = earlier.count + len(live.bar_returns)
    if not earlier.valid or not all(math.isfinite(r) and r >= -1.0 for r in live.bar_returns):
        return RollbackVerdict(
            rollback=False,
            reason="invalid_live_returns",
            shortfall=0.0,
            observations=n,
            expected_return=0.0,
            realised_return=0.0,
            threshold_pct=threshold_pct,
            exposure_scale=exposure_scale,
        )
    expected_return = (1.0 + expected.mean_bar_return * exposure_scale) ** n - 1.0
    # multiplied in order from the folded growth: the same float as over the whole record
    realised_return = math.prod((1.0 + r for r in live.bar_returns), start=earlier.growth) - 1.0
    shortfall = expected_return - realised_return
    reason: RollbackReason
    if n < min_observations:
        reason = "insufficient_observations"
    elif shortfall > threshold_pct + EPSILON:
        reason = "degradation_exceeds_threshold"
    else:
        reason = "within_tolerance"
    return RollbackVerdict(
        rollback=reason == "degradation_exceeds_threshold",
        reason=reason,
        shortfall=shortfall,
        observations=n,
        expected_return=expected_return,
        realised_return=realised_return,
        threshold_pct=threshold_pct,
        exposure_scale=exposure_scale,
    )


def choose_rollback_target(
    history: Sequence[str], current: str, exclude: Collection[str] = ()
) -> str | None:
    """The most recent previously active model other than ``current``, or ``None``.

    ``history`` lists active models oldest first. If ``current`` occurs in it, only entries
    before its last occurrence are considered. Models in ``exclude`` (e.g. ones already rolled
    back for degradation) are skipped so that two bad models cannot ping-pong.
    """
    end = len(history)
    for index in range(len(history) - 1, -1, -1):
        if history[index] == current:
            end = index
            break
    for model_id in reversed(history[:end]):
        if model_id != current and model_id not in exclude:
            return model_id
    return None
