"""The Strategy protocol (bars -> features -> optional fit -> target weights) and its output checks.

A strategy is any object with these three methods (a ``typing.Protocol``: no base class needed):

``features(frames)``
    ``{symbol: OHLCV bars}`` -> a frame indexed by ``(timestamp, symbol)``. Every value at bar
    ``t`` must come from bars ``<= t`` (the walk-forward test cannot detect a leak; stage 8 of the
    gate holds an implausible result as ``leak_suspected``).
``fit(features, forward_returns)``
    Called once per walk-forward fold with the purged training rows only, and the tradable
    forward return of each row over ``horizon`` bars; returns a picklable state (plain data or
    scikit-learn objects), or ``None`` for a rule that learns nothing.
``weights(features, state)``
    -> target weights, a ``timestamps x symbols`` frame: the fraction of a full position each
    symbol should hold after the bar's close, in ``[-1, 1]`` (negative = short). The walk-forward
    test sizes them with :func:`per_name_weight` (one sizing path: the risk limits cannot be
    exceeded) and :func:`check_weights` refuses NaN, infinite, or above-1 weights with one error
    naming the strategy.

``name`` and ``horizon`` (bars a position is meant to be held; it sets the label windows that
are purged) are attributes.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from aistock_actors.errors import StrategyError

REQUIRED_METHODS: tuple[str, ...] = ("features", "fit", "weights")
"""Methods every strategy must have (the loader names the missing ones)."""
WEIGHT_TOLERANCE = 1e-9
"""Rounding slack allowed above a weight limit."""


@runtime_checkable
class Strategy(Protocol):
    """See the module docstring."""

    @property
    def name(self) -> str: ...

    @property
    def horizon(self) -> int: ...

    def features(self, frames: dict[str, pd.DataFrame]) -> pd.DataFrame: ...

    def fit(self, features: pd.DataFrame, forward_returns: pd.Series) -> object: ...

    def weights(self, features: pd.DataFrame, state: object) -> pd.DataFrame: ...


def missing_methods(candidate: object) -> list[str]:
    """The :data:`REQUIRED_METHODS` that ``candidate`` lacks or has as non-callables."""
    return [name for name in REQUIRED_METHODS if not callable(getattr(candidate, name, None))]


def per_name_weight(n_symbols: int, max_position_fraction: float, max_gross: float) -> float:
    """The fixed weight of one full position: ``min(max_position_fraction, max_gross / n)``.

    Fixed, not renormalised every bar over the names that happen to have a signal, so a held
    position is never resized because another symbol's signal came or went (those resizes were
    75 % of the orders and ate the edge, issue #14), and the gross exposure can never exceed
    ``max_gross`` even with every symbol at a full position.
    """
    if n_symbols < 1:
        raise ValueError("need at least one symbol")
    return float(min(max_position_fraction, max_gross / n_symbols))


def check_weights(name: str, weights: object) -> pd.DataFrame:
    """Return a strategy's ``weights()`` output as a float frame, or raise :class:`StrategyError`
    naming ``name``.

    A strategy's weights are fractions of a full position, in ``[-1, 1]``
    (:func:`per_name_weight` turns them into fractions of equity, so no strategy can exceed the
    risk limits). Refused: not a DataFrame, a NaN or infinite weight, a weight above 1 in
    magnitude. Nothing is clipped: a strategy that breaks the limits is wrong and is told so.
    """
    if not isinstance(weights, pd.DataFrame):
        raise StrategyError(
            f"strategy {name!r}: weights() returned {type(weights).__name__}, "
            "expected a timestamps x symbols DataFrame"
        )
    try:
        values = weights.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise StrategyError(f"strategy {name!r}: weights are not numbers ({exc})") from exc
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise StrategyError(f"strategy {name!r}: {bad} weights are NaN or infinite")
    biggest = float(np.abs(values).max()) if values.size else 0.0
    if biggest > 1.0 + WEIGHT_TOLERANCE:
        raise StrategyError(
            f"strategy {name!r}: weight {biggest:.4g} is above 1 (a full position)"
        )
    return pd.DataFrame(values, index=weights.index, columns=weights.columns)
