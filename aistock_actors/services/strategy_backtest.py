"""The backtest step's figures for a strategy artifact: its walk-forward report and the incumbent.

:func:`score` takes the selected candidate's walk-forward report from the supervisor's hand-over
(the Trainer computed it this cycle) or recomputes it as a job of the step's mapper (after a
restart), then scores the incumbent -- a TrainedModel or a StrategyModel -- on the champion window
(:func:`~aistock_actors.core.strategy.incumbent.compare_with_incumbent`). :class:`Scored` is what
the Backtester turns into ``BacktestCompleted``, for this path and the ML recipe's alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from aistock_actors.config import LoadedConfig
from aistock_actors.core.model.champion import ChampionWindow
from aistock_actors.core.model.models import TrainedModel
from aistock_actors.core.model.pipeline import OOSEvaluation, WalkForwardReport
from aistock_actors.core.strategy.artifact import StrategyModel
from aistock_actors.core.strategy.candidates import candidate_job
from aistock_actors.core.strategy.incumbent import (
    candidate_evaluation,
    compare_with_incumbent,
    model_targets,
    strategy_targets_panel,
)
from aistock_actors.core.strategy.walkforward import StrategyReport
from aistock_actors.errors import StrategyError
from aistock_actors.services import pipeline_params
from aistock_actors.services.strategy_candidates import resolve_strategy

if TYPE_CHECKING:
    from aistock_actors.runtime.handover import HandOver

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Scored:
    """A candidate's out-of-sample figures and its incumbent's, for ``BacktestCompleted``."""

    candidate: OOSEvaluation
    folds: int
    start: str
    end: str
    incumbent_id: str | None
    incumbent: OOSEvaluation | None
    incumbent_note: str | None
    champion: ChampionWindow | None


def scored_from_report(
    report: WalkForwardReport, incumbent_id: str | None, note: str | None = None
) -> Scored:
    """The ML recipe's walk-forward report as :class:`Scored` (``note`` overrides its own)."""
    return Scored(candidate=report.candidate, folds=report.folds, start=report.start,
                  end=report.end, incumbent_id=incumbent_id, incumbent=report.incumbent,
                  champion=report.champion, incumbent_note=note or report.incumbent_note)


def incumbent_targets(
    loaded: LoadedConfig, frames: dict[str, pd.DataFrame], incumbent: TrainedModel | StrategyModel
) -> pd.DataFrame | str:
    """The incumbent's sized targets on every bar, or why it cannot be evaluated."""
    sizing = pipeline_params.sizing(loaded.config)
    try:
        if isinstance(incumbent, TrainedModel):
            return model_targets(frames, incumbent, sizing)
        strategy = resolve_strategy(incumbent, loaded)
        return strategy_targets_panel(frames, strategy, incumbent.state, sizing)
    except (ValueError, StrategyError) as exc:
        return f"incumbent {incumbent.model_id} not evaluated: {exc}"


def score(
    loaded: LoadedConfig,
    frames: dict[str, pd.DataFrame],
    candidate: StrategyModel,
    incumbent: TrainedModel | StrategyModel | None,
    incumbent_data_end: str | None,
    hand_over: HandOver | None,
    mapper: Callable[..., list[Any]],
) -> Scored:
    """See the module docstring. Raises :class:`StrategyError` naming the strategy when it
    fails, ``ModelIntegrityError`` when a user strategy's source changed since training."""
    config = loaded.config
    strategy = resolve_strategy(candidate, loaded)
    report = hand_over.take_report(candidate.model_id, frames) if hand_over else None
    if report is not None:
        log.info("walk-forward report of %s taken over from the train step", candidate.model_id)
    else:  # none handed over (a restart): recompute it as a job of the step's pool
        job = (frames, strategy, pipeline_params.simulation_spec(config),
               pipeline_params.sizing(config))
        outcome: StrategyReport | str = mapper(candidate_job, [job])[0]
        if isinstance(outcome, str):
            raise StrategyError(outcome)
        report = outcome
    evaluation = candidate_evaluation(candidate.model_id, report)
    scored = Scored(candidate=evaluation, folds=report.folds, start=report.start,
                    end=report.end, incumbent_id=None, incumbent=None, incumbent_note=None,
                    champion=None)
    if incumbent is None:
        return scored
    comparison = compare_with_incumbent(
        frames, candidate.model_id, report, incumbent.model_id,
        incumbent_targets(loaded, frames, incumbent), incumbent_data_end,
        pipeline_params.simulation_spec(config),
    )
    return Scored(candidate=evaluation, folds=report.folds, start=report.start, end=report.end,
                  incumbent_id=incumbent.model_id, incumbent=comparison.incumbent,
                  incumbent_note=comparison.note, champion=comparison.champion)
