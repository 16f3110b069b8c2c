"""The incumbent against a selected strategy: scored on the champion window like the ML recipe's.

:func:`compare_with_incumbent` is the strategy counterpart of the incumbent part of
:func:`~aistock_actors.core.model.pipeline.walk_forward_backtest` (its module docstring,
**Incumbent**): the fixed incumbent artifact -- a TrainedModel (:func:`model_targets`) or a fitted
strategy (:func:`strategy_targets_panel`) -- is sized with the same fixed per-name weight and
simulated with the same costs on the candidate's out-of-sample bars after the incumbent's training
end when there are at least ``MIN_CHAMPION_WINDOW_BARS`` of them, else on the whole window (and
the note says the incumbent is then partly in-sample).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aistock_actors.core.model.champion import (
    MIN_CHAMPION_WINDOW_BARS,
    ChampionWindow,
    after_training_end,
    champion_window,
)
from aistock_actors.core.model.features import build_feature_panel
from aistock_actors.core.model.models import Signals, TrainedModel
from aistock_actors.core.model.pipeline import OOSEvaluation
from aistock_actors.core.model.simulation import (
    SimulationSpec,
    Sizing,
    simulate_window,
    target_weights,
)
from aistock_actors.core.strategy.protocol import Strategy, check_weights, per_name_weight
from aistock_actors.core.strategy.walkforward import (
    StrategyReport,
    call_strategy,
    checked_features,
    strategy_name,
)
from aistock_actors.errors import StrategyError


@dataclass(frozen=True, kw_only=True)
class IncumbentComparison:
    """The incumbent on the champion window, and that window (with the candidate on it)."""

    incumbent: OOSEvaluation | None
    note: str | None
    """Why the incumbent was not evaluated (``None`` if it was)."""
    champion: ChampionWindow | None


def model_targets(
    frames: dict[str, pd.DataFrame], model: TrainedModel, sizing: Sizing
) -> pd.DataFrame:
    """A TrainedModel's sized target weights on every bar (``ValueError`` if its features are
    not available)."""
    features = build_feature_panel(frames)
    index = features.index
    assert isinstance(index, pd.MultiIndex)
    return target_weights(index, model.signals(features).direction, sizing)


def strategy_targets_panel(
    frames: dict[str, pd.DataFrame], strategy: Strategy, state: object, sizing: Sizing
) -> pd.DataFrame:
    """A fitted strategy's sized target weights on every bar (:class:`StrategyError` naming it
    when it fails)."""
    name = strategy_name(strategy)
    features = checked_features(name, strategy, frames)
    weights = check_weights(name, call_strategy(name, "weights()", strategy.weights, features,
                                                state))
    per_name = per_name_weight(len(frames), sizing.max_position_fraction,
                               sizing.max_gross_exposure)
    return weights * min(per_name, 1.0)


@dataclass(frozen=True)
class PanelSignals:
    """A strategy incumbent as the ML recipe's backtest scores a TrainedModel: ``signals(rows)``
    gives the sign of its precomputed target weights on those ``(timestamp, symbol)`` rows (the
    recipe sizes every signal at the full per-name weight, so a fractional weight is scored at
    full size in its direction)."""

    model_id: str
    targets: pd.DataFrame

    def signals(self, features: pd.DataFrame) -> Signals:
        stacked = self.targets.stack(future_stack=True)
        stacked.index = stacked.index.set_names(["timestamp", "symbol"])
        weights = stacked.reindex(features.index).fillna(0.0).to_numpy(dtype=np.float64)
        direction = np.sign(weights).astype(np.int8)
        return Signals(direction=direction, confidence=np.abs(direction).astype(np.float64))


def _evaluate(
    model_id: str, frames: dict[str, pd.DataFrame], targets: pd.DataFrame,
    times: pd.DatetimeIndex, spec: SimulationSpec,
) -> OOSEvaluation:
    panel = targets.reindex(index=times, columns=sorted(frames)).fillna(0.0)
    window = (pd.Timestamp(times.min()), pd.Timestamp(times.max()))
    return OOSEvaluation.of(model_id, simulate_window(frames, panel, window, spec))


def candidate_evaluation(model_id: str, report: StrategyReport) -> OOSEvaluation:
    """The selected candidate's whole-window walk-forward result as an evaluation."""
    return OOSEvaluation(model_id=model_id, metrics=report.metrics, bars=report.bars,
                         equity_curve=report.equity_curve, returns=report.returns)


def compare_with_incumbent(
    frames: dict[str, pd.DataFrame],
    model_id: str,
    report: StrategyReport,
    incumbent_id: str,
    incumbent_targets: pd.DataFrame | str,
    incumbent_data_end: str | None,
    spec: SimulationSpec,
) -> IncumbentComparison:
    """Score the incumbent (its sized targets, or why there are none) against the candidate's
    walk-forward ``report`` (see the module docstring)."""
    if isinstance(incumbent_targets, str):
        return IncumbentComparison(incumbent=None, note=incumbent_targets, champion=None)
    if report.targets is None or report.targets.empty:
        raise StrategyError(f"strategy {report.name!r}: the report carries no targets")
    times = pd.DatetimeIndex(report.targets.index)
    index = pd.MultiIndex.from_arrays(
        [times, pd.Index([""] * len(times), dtype=object)], names=["timestamp", "symbol"]
    )
    unseen_rows = after_training_end(index, incumbent_data_end)
    unseen = int(unseen_rows.sum())
    after = unseen >= MIN_CHAMPION_WINDOW_BARS
    rows = unseen_rows if after else np.ones(len(times), dtype=bool)
    window = times[rows]
    incumbent = _evaluate(incumbent_id, frames, incumbent_targets, window, spec)
    if after and not rows.all():
        challenger = _evaluate(model_id, frames, report.targets, window, spec)
    else:
        challenger = candidate_evaluation(model_id, report)
    window_index = index[rows]
    assert isinstance(window_index, pd.MultiIndex)
    champion = champion_window(
        challenger, incumbent_id, window_index, unseen, incumbent_data_end, after
    )
    return IncumbentComparison(incumbent=incumbent, note=None, champion=champion)
