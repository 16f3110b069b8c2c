"""Trainer: trains this cycle's candidate on the stored bars and stores it, never activating it.

The training set is built in the actor's thread; the model fits, independent of each other in
two batches (:func:`~aistock_actors.core.model.models.train_model`), run side by side in the process
pool (:mod:`aistock_actors.runtime.jobs`) so a hung fit can be killed: once the step's budget is
spent the step fails with ``timeout``. The training set is handed over to the Backtester
(:func:`~aistock_actors.core.model.pipeline.make_training_set`), which would otherwise rebuild it.

With a candidate set (``training.candidates`` other than ``["ml"]``, or ``training.strategies``)
the step tests every candidate walk-forward on the same deadline mapper, counts each as a trial
(``state/promotion/trials.json``), fits the best on all the data and stores ONE
:class:`~aistock_actors.core.strategy.artifact.StrategyModel`
(:mod:`aistock_actors.services.strategy_training`); its walk-forward report goes to the
Backtester through the supervisor's hand-over. A user strategy that does not load, or a set with
no candidate left, fails the step (``strategy_invalid`` / ``no_candidate_left``), naming it.

Every expected failure (no bars, too little history, an unreadable bar store, a timeout) is a
``StepFailed``; the supervisor raises the ``training_failed`` alert, skips backtest and judge, and
the previous active model stays active because only the PromotionJudge ever moves
``models/active/`` (T7).
"""

from __future__ import annotations

import contextlib
from typing import Any

import pandas as pd

from aistock_actors.actors.base import POOL_STEP_ERRORS, PoolActor
from aistock_actors.core.model import pipeline
from aistock_actors.core.model.history import history_in_years, required_history_bars
from aistock_actors.errors import StateError, StrategyError
from aistock_actors.messages import Reply, Request
from aistock_actors.messages.model import LifecycleSkipped, ModelTrained, TrainerInbox, TrainModel
from aistock_actors.runtime import progress
from aistock_actors.runtime.jobs import (
    deadline_mapper,
)
from aistock_actors.services import model_hygiene, training_cadence
from aistock_actors.services import pipeline_params as lifecycle
from aistock_actors.services.strategy_candidates import configured_candidates, single_ml_recipe
from aistock_actors.services.strategy_training import (
    CandidateSetTraining,
    failed_candidates,
    train_candidate_set,
)
from aistock_actors.store.trials import TrialStore


class Trainer(PoolActor):
    """Owns candidate training; its state on disk is the model store."""

    child_name = "trainer"
    inbox = TrainerInbox

    def handle(self, request: Request) -> Reply:
        match request:
            case TrainModel():
                return self.train(request)
            case _:
                return super().handle(request)

    def train(self, request: TrainModel) -> Reply:
        """Train, store (not activate), reply :class:`ModelTrained`."""
        if self.ctx.halt_flag.is_set():
            return self.fail(request, "halted", "system halted; nothing trained")
        cfg = self.ctx.config.config
        skip = self._not_due(request)
        if skip is not None:
            return skip
        params = lifecycle.model_params(cfg)
        # The step's budget runs from here: building the training set (in this thread), then the
        # two batches of model fits (in the pool, side by side; a hung fit is killed).
        mapper = deadline_mapper(self.runner, lifecycle.job_budget(cfg, "train"))
        try:
            frames = lifecycle.load_frames(self.ctx.config, self.bars)
            start, end = pipeline.window_bounds(frames)
            required = required_history_bars(params, cfg.backtest.n_splits, frames,
                                             cfg.training.min_history_years)
            available = max(len(frame) for frame in frames.values())
            if available < required:
                floor_note = (
                    f" (training.min_history_years {cfg.training.min_history_years:g})"
                    if required > pipeline.min_history_bars(params, cfg.backtest.n_splits)
                    else "")
                return LifecycleSkipped(
                    request_id=request.request_id,
                    reason="insufficient_history",
                    detail=f"need {history_in_years(required, frames)} for the longest "
                    f"symbol, have {available}{floor_note}; no candidate trained this cycle",
                )
            if not single_ml_recipe(cfg):
                return self._train_set(request, frames, (start, end), mapper)
            with progress.task("train") as shown:
                shown.note(f"{request.model_id} on {len(frames)} symbols")
                model = pipeline.train_candidate(
                    frames,
                    params,
                    cfg.training.seed,
                    request.model_id,
                    self.ctx.clock.now(),
                    mapper=progress.tracked_mapper(mapper, "train", "fits"),
                    hand_over=self.ctx.hand_over,
                )
        except POOL_STEP_ERRORS as exc:  # timeout, cancelled (halt/stop), no data, ...
            return self.pool_failure(request, exc)
        if self.ctx.halt_flag.is_set():  # halted while training (an inline fit): store nothing
            return self.fail(request, "halted", "system halted during training; nothing stored")
        metadata = {"data_start": start, "data_end": end, "symbols": sorted(frames)}
        record = self.models.put(model, {**metadata, "seed": cfg.training.seed})
        self.ctx.audit.append(
            "model_trained",
            self.ctx.name,
            {
                "model_id": record.model_id,
                "sha256": record.sha256,
                "train_accuracy": model.train_accuracy,
                "test_accuracy": model.test_accuracy,
                "threshold": model.confidence_threshold,
            },
        )
        return ModelTrained(
            request_id=request.request_id,
            model_id=record.model_id,
            sha256=record.sha256,
            train_accuracy=model.train_accuracy,
            test_accuracy=model.test_accuracy,
            threshold=model.confidence_threshold,
            samples=int(model.metrics.get("n_samples", 0.0)),
            symbols=len(frames),
            data_start=start,
            data_end=end,
        )

    def _train_set(
        self,
        request: TrainModel,
        frames: dict[str, pd.DataFrame],
        span: tuple[str, str],
        mapper: Any,
    ) -> Reply:
        """The candidate-set path (module docstring); exceptions of the pool propagate to
        :meth:`train`, which maps them as for the single recipe."""
        loaded = self.ctx.config
        try:
            candidates = configured_candidates(loaded)
        except StrategyError as exc:
            return self.fail(request, "strategy_invalid", str(exc))
        trials = TrialStore(loaded.state_dir, self.ctx.alerts)
        try:
            with progress.task("train") as shown:
                shown.note(f"{len(candidates)} candidates on {len(frames)} symbols")
                trained = train_candidate_set(
                    loaded, frames, candidates, model_id=request.model_id,
                    created_at=self.ctx.clock.now(), previous_trials=trials.count(),
                    mapper=progress.tracked_mapper(mapper, "train", "candidates"),
                )
        except StrategyError as exc:  # no candidate left, or the best failed its final fit
            with contextlib.suppress(OSError):  # the failure is what the operator must see
                self._count_trials(trials, request, len(candidates))
            return self.fail(request, "no_candidate_left", str(exc))
        try:  # every candidate tested is a trial, failed ones included
            self._count_trials(trials, request, len(candidates))
        except OSError as exc:
            return self.fail(request, "trials_unwritable", f"trial count not recorded: {exc!r}")
        if self.ctx.halt_flag.is_set():
            return self.fail(request, "halted", "system halted during training; nothing stored")
        return self._store_set(request, trained, frames, span)

    def _count_trials(self, trials: TrialStore, request: TrainModel, n: int) -> int:
        """Count ``n`` trials once for this candidate id (the Backtester's count then adds
        nothing for it)."""
        return trials.add(n, candidate=request.model_id)

    def _store_set(
        self,
        request: TrainModel,
        trained: CandidateSetTraining,
        frames: dict[str, pd.DataFrame],
        span: tuple[str, str],
    ) -> Reply:
        cfg = self.ctx.config.config
        artifact = trained.artifact
        metadata = {"data_start": span[0], "data_end": span[1], "symbols": sorted(frames),
                    "seed": cfg.training.seed, "artifact": "strategy",
                    "strategy": artifact.name, "strategy_path": artifact.spec.path,
                    "candidates": trained.sharpes, "candidate_errors": trained.errors}
        record = self.models.put(artifact, metadata)
        if self.ctx.hand_over is not None:
            self.ctx.hand_over.offer_report(record.model_id, frames, trained.report)
        self.ctx.audit.append("model_trained", self.ctx.name, {
            "model_id": record.model_id, "sha256": record.sha256, "artifact": "strategy",
            "strategy": artifact.name, "candidates_oos_sharpe": trained.sharpes,
            "failed_candidates": failed_candidates(trained.errors) or None,
            "train_accuracy": artifact.train_accuracy, "test_accuracy": artifact.test_accuracy,
        })
        return ModelTrained(
            request_id=request.request_id,
            model_id=record.model_id,
            sha256=record.sha256,
            train_accuracy=artifact.train_accuracy,
            test_accuracy=artifact.test_accuracy,
            threshold=0.0,
            samples=trained.report.bars * len(frames),
            symbols=len(frames),
            data_start=span[0],
            data_end=span[1],
            strategy=artifact.name,
            candidates=trained.sharpes,
            failed_candidates=dict(trained.errors),
        )

    def _not_due(self, request: TrainModel) -> LifecycleSkipped | None:
        """The retraining cadence (``training.retrain_every_bars``): a skip when no training is
        due; when one is, old rejected candidates are pruned before the new one joins them."""
        loaded = self.ctx.config
        try:
            due = training_cadence.check(loaded.config, self.bars, self.models)
        except StateError:
            return None  # unreadable bars: the training path reports it
        if not due.due:
            return LifecycleSkipped(
                request_id=request.request_id, reason=due.reason, detail=due.detail
            )
        keep = loaded.config.models.keep_rejected
        model_hygiene.prune_rejected(
            self.models, loaded.state_dir, keep, self.ctx.audit, self.ctx.name
        )
        return None
