"""A training cycle's candidate set: test every candidate, select the best, fit it on all the data.

Called by the Trainer when ``training.candidates`` is more than today's single ``ml`` recipe (or
user strategies are configured). Each candidate is a walk-forward job of the step's deadline
mapper (:func:`~aistock_actors.core.strategy.candidates.run_candidate_set`); the best out-of-sample
net Sharpe is selected and fitted on all the training data
(:func:`~aistock_actors.core.strategy.walkforward.fit_on_all`), giving ONE
:class:`~aistock_actors.core.strategy.artifact.StrategyModel` to store. A candidate that fails
(raises, NaN/infinite weights, weights above 1) is named in :attr:`CandidateSetTraining.errors`;
with none left :class:`~aistock_actors.errors.StrategyError` says which failed and why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from aistock_actors.config import LoadedConfig
from aistock_actors.core.strategy.artifact import StrategyModel
from aistock_actors.core.strategy.candidates import CandidateSetResult, run_candidate_set
from aistock_actors.core.strategy.walkforward import StrategyReport, fit_on_all
from aistock_actors.errors import StrategyError
from aistock_actors.services import pipeline_params
from aistock_actors.services.strategy_candidates import Candidate


@dataclass(frozen=True, kw_only=True)
class CandidateSetTraining:
    """The stored artifact's content, the selected candidate's report, every outcome."""

    artifact: StrategyModel
    report: StrategyReport
    result: CandidateSetResult

    @property
    def errors(self) -> dict[str, str]:
        return self.result.errors

    @property
    def sharpes(self) -> dict[str, float]:
        """Every candidate that ran -> its out-of-sample net Sharpe."""
        return {r.name: float(r.metrics.sharpe) for r in self.result.reports}


def failed_candidates(errors: dict[str, str]) -> str:
    """``"name: error; ..."`` for the operator."""
    return "; ".join(f"{name}: {error}" for name, error in sorted(errors.items()))


def train_candidate_set(
    loaded: LoadedConfig,
    frames: dict[str, pd.DataFrame],
    candidates: list[Candidate],
    *,
    model_id: str,
    created_at: datetime,
    previous_trials: int,
    mapper: Callable[..., list[Any]],
) -> CandidateSetTraining:
    """Run the set, select, fit the best on all of ``frames`` (see the module docstring)."""
    config = loaded.config
    result = run_candidate_set(
        frames,
        [c.strategy for c in candidates],
        spec=pipeline_params.simulation_spec(config),
        sizing=pipeline_params.sizing(config),
        previous_trials=previous_trials,
        mapper=mapper,
    )
    best = result.best
    if best is None:
        why = failed_candidates(result.errors) or "no candidate has a finite Sharpe ratio"
        raise StrategyError(f"no candidate left to select: {why}")
    chosen = next(c for c in candidates if c.spec.name == best.name)
    state = fit_on_all(frames, chosen.strategy)
    artifact = StrategyModel(
        model_id=model_id,
        created_at=created_at,
        spec=chosen.spec,
        state=state,
        horizon=int(chosen.strategy.horizon),
        train_accuracy=best.train_accuracy,
        test_accuracy=best.test_accuracy,
        metrics={"oos_sharpe": float(best.metrics.sharpe), "oos_bars": float(best.bars),
                 "deflated_sharpe": float(result.deflated_sharpe)},
        candidates={r.name: float(r.metrics.sharpe) for r in result.reports},
        errors=dict(result.errors),
    )
    return CandidateSetTraining(artifact=artifact, report=best, result=result)
