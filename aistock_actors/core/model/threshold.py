"""The meta-labeler's confidence threshold: the most significant edge over the base rate.

Split from :mod:`aistock_actors.core.model.models`, which calls :func:`choose_threshold` on the
meta-labeler's purged out-of-fold predictions and stores the result in the model.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from aistock_actors.core.model.models import ModelParams

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class ThresholdChoice(NamedTuple):
    """Outcome of :func:`choose_threshold` on held-out meta-labeler predictions."""

    threshold: float
    precision: float
    """Share of kept signals whose side was right (0 if none kept)."""
    coverage: float
    """Share of signals kept."""
    score: float
    """Best edge found over the majority-side base rate (:func:`edge_z`), in standard errors."""


def edge_z(precision: float, kept: int, base_rate: float) -> float:
    """Edge of ``precision`` over ``base_rate`` in standard errors of a ``kept``-signal sample.

    ``(precision - base) / sqrt(base (1 - base) / kept)``; with a base rate of 0.5 this is the
    coin-flip test ``2 (precision - 0.5) sqrt(kept)``. A degenerate base (0 or 1) gives 0.
    """
    base = min(max(base_rate, 0.5), 1.0)
    if kept <= 0 or base >= 1.0:
        return 0.0
    return (precision - base) * math.sqrt(kept) / math.sqrt(base * (1.0 - base))


def choose_threshold(
    confidence: FloatArray,
    correct: npt.NDArray[np.bool_],
    params: ModelParams,
    *,
    base_rate: float,
) -> ThresholdChoice:
    """Pick the threshold in ``[threshold_min, threshold_max]`` with the most significant edge.

    ``correct[i]`` says whether acting on held-out signal ``i`` paid. The edge is measured
    against ``base_rate``, the precision of always betting the majority side of the held-out
    labels (``max(p_up, 1 - p_up)``, see :func:`majority_rate`), not against a coin flip: in a
    drifting market "always long" is right more than half of the time without any skill.
    Eligible thresholds keep at least ``min_selected_fraction`` of the signals (and 10). If no
    threshold's edge reaches ``min_edge_z`` the strictest threshold is returned, so a useless
    model barely trades.
    """
    grid = np.round(
        np.arange(
            params.threshold_min,
            params.threshold_max + params.threshold_step / 2,
            params.threshold_step,
        ),
        6,
    )
    min_kept = max(10, math.ceil(params.min_selected_fraction * len(confidence)))
    best = ThresholdChoice(float(params.threshold_max), 0.0, 0.0, -math.inf)
    for tau in grid:
        kept = confidence >= tau
        n = int(kept.sum())
        if n < min_kept:
            continue
        precision = float(correct[kept].mean())
        score = edge_z(precision, n, base_rate)
        if score > best.score:
            best = ThresholdChoice(float(tau), precision, n / len(confidence), score)
    if best.score >= params.min_edge_z:
        return best
    tau = float(params.threshold_max)
    kept = confidence >= tau
    precision = float(correct[kept].mean()) if kept.any() else 0.0
    score = best.score if math.isfinite(best.score) else 0.0
    return ThresholdChoice(tau, precision, float(kept.mean()) if len(kept) else 0.0, score)


def majority_rate(labels: IntArray) -> float:
    """``max(p_up, 1 - p_up)`` of 0/1 ``labels``: the no-skill precision (0.5 when empty)."""
    if len(labels) == 0:
        return 0.5
    p_up = float(np.mean(labels))
    return max(p_up, 1.0 - p_up)
