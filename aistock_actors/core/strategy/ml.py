"""The meta-labelled ML model as a Strategy, so it competes in the candidate set like any rule.

``features`` are the causal feature panel of :mod:`aistock_actors.core.model.features`; ``fit``
trains :func:`~aistock_actors.core.model.models.train_model` (primary + meta-labeler, threshold
tuned on purged out-of-fold rows) on the fold's purged training rows, labelled with the TRADABLE
forward return (next open to next open over ``horizon`` bars, the one the walk-forward test
computes): a row is "up" when that return beats the round-trip cost ``cost_bps``, "down" when it
is below minus the cost, and rows in between (moves too small to pay) are not trained on.
``weights`` holds each signal for ``horizon`` bars (no churn inside the holding period).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

import numpy as np
import pandas as pd

from aistock_actors.core.model.features import build_feature_panel
from aistock_actors.core.model.models import ModelParams, TrainedModel, train_model

_CREATED = datetime(1970, 1, 1, tzinfo=UTC)
"""Creation time of fold models (never stored)."""


def label_end_times(index: pd.MultiIndex, horizon: int) -> pd.Series:
    """Each row's label end: the timestamp ``1 + horizon`` rows later for the same symbol
    (NaT where the rows run out)."""
    frame = pd.DataFrame({"t": index.get_level_values("timestamp")}, index=index)
    ends = frame.groupby(level="symbol", sort=False)["t"].shift(-(1 + horizon))
    return pd.Series(ends.to_numpy(), index=index)


def hold_signals(direction: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Keep each non-zero signal for ``horizon`` bars unless a new signal replaces it."""
    if horizon <= 1:
        return direction
    held = direction.replace(0.0, np.nan).ffill(limit=horizon - 1)
    return held.fillna(0.0)


@dataclass(frozen=True, kw_only=True)
class MetaLabelledStrategy:
    """The ML model (see the module docstring) at one label horizon."""

    horizon: int = 5
    cost_bps: float = 15.0
    """Round-trip cost a move must beat to be labelled (commission + spread, both sides)."""
    primary: str = "logistic"
    seed: int = 0
    name: str = ""
    features_key: ClassVar[str] = "feature_panel"
    """Every horizon's :meth:`features` is the same panel of the same frames: a candidate set
    computes it once (:func:`~aistock_actors.core.strategy.candidates.run_candidate_set`)."""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", f"ml_horizon_{self.horizon}")

    def params(self) -> ModelParams:
        return ModelParams(horizon=self.horizon, embargo=max(5, self.horizon),
                           primary="hgb" if self.primary == "hgb" else "logistic")

    def features(self, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
        return build_feature_panel(frames)

    def fit(self, features: pd.DataFrame, forward_returns: pd.Series) -> TrainedModel | None:
        index = features.index
        assert isinstance(index, pd.MultiIndex)
        ends = label_end_times(index, self.horizon)
        cost = self.cost_bps / 1e4
        fwd = forward_returns.to_numpy(dtype=np.float64)
        usable = np.isfinite(fwd) & (np.abs(fwd) > cost) & ends.notna().to_numpy()
        if int(usable.sum()) < 200:
            return None
        labels = pd.Series((fwd[usable] > 0).astype(np.int64), index=index[usable])
        try:
            return train_model(features[usable], labels, ends[usable], params=self.params(),
                               model_id=self.name, created_at=_CREATED, seed=self.seed)
        except ValueError:  # too few rows for the inner purged splits: this fold does not trade
            return None

    def weights(self, features: pd.DataFrame, state: object) -> pd.DataFrame:
        index = features.index
        assert isinstance(index, pd.MultiIndex)
        if not isinstance(state, TrainedModel):
            empty = pd.Series(0.0, index=index).unstack("symbol")
            return empty.fillna(0.0)
        direction = pd.Series(state.signals(features).direction.astype(np.float64), index=index)
        return hold_signals(direction.unstack("symbol").fillna(0.0), self.horizon)
