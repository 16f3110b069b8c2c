"""The pre-registered candidate set of a training cycle, tested side by side, the best selected.

:func:`default_candidates` is fixed before any data is seen: the ML model at horizons 1, 5 and 20
plus the built-in rules (plus any user strategies the caller appends). :func:`run_candidate_set`
walk-forward tests each, every fold of every candidate an independent job of one batch of a
``mapper`` (the job runner's pool; the ML candidates share one feature panel), picks the
highest out-of-sample net Sharpe, and deflates it over ``previous_trials`` plus this set (every
candidate tested is a trial). A candidate that fails (a :class:`StrategyError`) is reported with
its error and not selected; the others still compete.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd

from aistock_actors.core.model.simulation import SimulationSpec, Sizing
from aistock_actors.core.strategy.ml import MetaLabelledStrategy
from aistock_actors.core.strategy.protocol import Strategy
from aistock_actors.core.strategy.rules import (
    AutocorrelationStrategy,
    SmaCross,
    TimeSeriesMomentum,
)
from aistock_actors.core.strategy.selection import best_index, deflated_sharpe_ratio
from aistock_actors.core.strategy.walkforward import (
    FoldWeights,
    PreparedStrategy,
    StrategyReport,
    assemble_report,
    fold_jobs,
    fold_weights,
    prepare_strategy,
    strategy_name,
    walk_forward_strategy,
)
from aistock_actors.errors import StrategyError

R = TypeVar("R")
ML_HORIZONS: tuple[int, ...] = (1, 5, 20)


def default_candidates(seed: int = 0) -> list[Strategy]:
    """The ML model at :data:`ML_HORIZONS` and the built-in rules, default parameters."""
    ml: list[Strategy] = [MetaLabelledStrategy(horizon=h, seed=seed) for h in ML_HORIZONS]
    rules: list[Strategy] = [AutocorrelationStrategy(), TimeSeriesMomentum(), SmaCross()]
    return [*ml, *rules]


@dataclass(frozen=True, kw_only=True)
class CandidateSetResult:
    """Every candidate's outcome and the selection."""

    reports: list[StrategyReport]
    """The candidates that ran, in the order given."""
    errors: dict[str, str]
    """Candidate name -> its one-line error, for those that failed."""
    best: StrategyReport | None
    """Highest out-of-sample net Sharpe (``None`` if no candidate ran)."""
    trials: int
    """``previous_trials`` plus every candidate of this set (failed ones included)."""
    deflated_sharpe: float
    """The best candidate's deflated Sharpe ratio over :attr:`trials` (0 without one)."""


def candidate_job(
    frames: dict[str, pd.DataFrame], strategy: Strategy, spec: SimulationSpec, sizing: Sizing
) -> StrategyReport | str:
    """One candidate's walk-forward test, or its error message (a pool job)."""
    try:
        return walk_forward_strategy(frames, strategy, spec=spec, sizing=sizing)
    except StrategyError as exc:
        return str(exc)


def _serial(fn: Callable[..., R], jobs: Sequence[tuple[Any, ...]], /) -> list[R]:
    return [fn(*job) for job in jobs]


def _prepared(
    frames: dict[str, pd.DataFrame], candidates: Sequence[Strategy], spec: SimulationSpec
) -> tuple[list[PreparedStrategy | str], int]:
    """Each candidate prepared (or its error), and how many feature panels were computed.

    Candidates with the same non-empty ``features_key`` (the ML model at every horizon) compute
    the same features from the same frames: the panel is computed once and shared, in this
    process and, as one object, by every fold job of the batch."""
    shared: dict[str, pd.DataFrame] = {}
    out: list[PreparedStrategy | str] = []
    for candidate in candidates:
        key = getattr(candidate, "features_key", "")
        try:
            prepared = prepare_strategy(frames, candidate, spec, shared.get(key) if key else None)
        except StrategyError as exc:
            out.append(str(exc))
            continue
        if key:
            shared.setdefault(key, prepared.features)
        out.append(prepared)
    distinct = {id(p.features) for p in out if isinstance(p, PreparedStrategy)}
    return out, len(distinct)


def run_candidate_set(
    frames: dict[str, pd.DataFrame],
    candidates: Sequence[Strategy],
    *,
    spec: SimulationSpec,
    sizing: Sizing,
    previous_trials: int = 0,
    mapper: Callable[..., list[Any]] = _serial,
) -> CandidateSetResult:
    """Test every candidate, select the best, deflate it (see the module docstring).

    Every fold of every candidate is one job of ONE batch (:func:`fold_weights`), the largest
    training sets of the slowest candidates (the ML ones, listed first) first, so a pool's
    workers share the load fold by fold instead of candidate by candidate."""
    if not candidates:
        raise ValueError("the candidate set is empty")
    prepared, _ = _prepared(frames, candidates, spec)
    jobs: list[tuple[int, int, tuple[Any, ...]]] = []
    for i, item in enumerate(prepared):
        if isinstance(item, PreparedStrategy):
            jobs += [(i, k, job) for k, job in enumerate(fold_jobs(item))]
    ml_first = sorted(jobs, key=lambda j: (not isinstance(candidates[j[0]], MetaLabelledStrategy),
                                           -len(j[2][4])))
    results = mapper(fold_weights, [job for _, _, job in ml_first])
    folds: dict[tuple[int, int], FoldWeights | str] = {
        (i, k): result for (i, k, _), result in zip(ml_first, results, strict=True)
    }
    reports: list[StrategyReport] = []
    errors: dict[str, str] = {}
    for i, (candidate, item) in enumerate(zip(candidates, prepared, strict=True)):
        if isinstance(item, str):
            errors[strategy_name(candidate)] = item
            continue
        mine = [folds[(i, k)] for k in range(len(item.splits))]
        try:
            reports.append(assemble_report(frames, item, mine, spec=spec, sizing=sizing))
        except StrategyError as exc:
            errors[strategy_name(candidate)] = str(exc)
    trials = previous_trials + len(candidates)
    if not reports:
        return CandidateSetResult(reports=[], errors=errors, best=None, trials=trials,
                                  deflated_sharpe=0.0)
    try:
        best = reports[best_index([r.metrics.sharpe for r in reports])]
    except ValueError:
        return CandidateSetResult(reports=reports, errors=errors, best=None, trials=trials,
                                  deflated_sharpe=0.0)
    return CandidateSetResult(
        reports=reports,
        errors=errors,
        best=best,
        trials=trials,
        deflated_sharpe=deflated_sharpe_ratio(best.returns, trials),
    )
