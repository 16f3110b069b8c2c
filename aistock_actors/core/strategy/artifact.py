"""The stored artifact of a selected strategy (the model store's second kind beside TrainedModel).

A training cycle with a candidate set stores the winner as a :class:`StrategyModel`: what the
strategy is (a built-in strategy object, or a user strategy's ``module:Class`` path, params and
the sha256 of its source), its state fitted on all the training data, and the walk-forward
figures every candidate scored. It is pickled and HMAC-signed by the model store like a
TrainedModel; a user strategy is loaded again from its source (never unpickled from state), and
refused when that source changed since training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aistock_actors.core.strategy.protocol import Strategy


@dataclass(frozen=True, kw_only=True)
class StrategySpec:
    """Which strategy an artifact holds: a built-in, or a user strategy by path and params."""

    name: str
    """The candidate's name (a built-in's config name, a user strategy's ``name``)."""
    builtin: Strategy | None = None
    """The built-in strategy object itself (a frozen dataclass of this package)."""
    path: str = ""
    """A user strategy's ``module:Class`` (empty for a built-in)."""
    params: dict[str, Any] = field(default_factory=dict)
    source_sha256: str = ""
    """A user strategy's fingerprint at training (its source file, path and params)."""


@dataclass(frozen=True, kw_only=True)
class StrategyModel:
    """A selected strategy, fitted on all the training data (see the module docstring)."""

    model_id: str
    created_at: datetime
    spec: StrategySpec
    state: object
    """What the strategy's ``fit`` returned on all the training rows (``None`` for a rule)."""
    horizon: int
    train_accuracy: float
    """Hit rate of the selected candidate's last walk-forward fold on its own training rows."""
    test_accuracy: float
    """Its out-of-sample hit rate (the gate's stage 3 compares the two)."""
    metrics: dict[str, float] = field(default_factory=dict)
    """The selected candidate's walk-forward metrics."""
    candidates: dict[str, float] = field(default_factory=dict)
    """Every candidate that ran -> its out-of-sample net Sharpe."""
    errors: dict[str, str] = field(default_factory=dict)
    """Every candidate that failed -> its one-line error."""
    confidence_threshold: float = 0.0
    """Not used by strategies (a model record field of the ML recipe)."""
    feature_names: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.name
