"""Trainer: trains this cycle's candidate on the stored bars and stores it, never activating it.

The training set is built in the actor's thread; the model fits, independent of each other in
two batches (:func:`~aistock_actors.core.model.models.train_model`), run side by side in the process
pool (:mod:`aistock_actors.runtime.jobs`) so a hung fit can be killed: once the step's budget is
spent the step fails with ``timeout``. The training set is handed over to the Backtester
(:func:`~aistock_actors.core.model.pipeline.make_training_set`), which would otherwise rebuild it.

Every expected failure (no bars, too little history, an unreadable bar store, a timeout) is a
``StepFailed``; the supervisor raises the ``training_failed`` alert, skips backtest and judge, and
the previous active model stays active because only the PromotionJudge ever moves
``models/active/`` (T7).
"""

from __future__ import annotations

from aistock_actors.actors.base import PoolActor
from aistock_actors.core.model import pipeline
from aistock_actors.errors import DataError, StateError
from aistock_actors.messages import Reply, Request
from aistock_actors.messages.model import LifecycleSkipped, ModelTrained, TrainerInbox, TrainModel
from aistock_actors.runtime import progress
from aistock_actors.runtime.jobs import (
    JobBackendError,
    JobCancelledError,
    JobTimeoutError,
    deadline_mapper,
)
from aistock_actors.services import model_hygiene, training_cadence
from aistock_actors.services import pipeline_params as lifecycle


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
            required = pipeline.min_history_bars(params, cfg.backtest.n_splits)
            available = max(len(frame) for frame in frames.values())
            if available < required:
                return LifecycleSkipped(
                    request_id=request.request_id,
                    reason="insufficient_history",
                    detail=f"need {required} bars for the longest symbol, have {available}; "
                    "no candidate trained this cycle",
                )
            with progress.task("train") as shown:
                shown.note(f"{request.model_id} on {len(frames)} symbols")
                model = pipeline.train_candidate(
                    frames,
                    params,
                    cfg.training.seed,
                    request.model_id,
                    self.ctx.clock.now(),
                    mapper=progress.tracked_mapper(mapper, "train", "fits"),
                    hand_over=True,
                )
        except JobTimeoutError as exc:
            return self.fail(request, "timeout", str(exc))
        except JobCancelledError as exc:  # a halt or a stop: the step is abandoned, nothing kept
            return self.fail(request, "cancelled", str(exc))
        except JobBackendError as exc:  # dask scheduler unreachable, worker lost
            return self.fail(request, "backend_unavailable", str(exc))
        except DataError as exc:
            return self.fail(request, "no_data", str(exc))
        except StateError as exc:
            return self.fail(request, "bar_store_unreadable", str(exc))
        except ValueError as exc:  # too little history for the purged walk-forward splits
            return self.fail(request, "insufficient_data", str(exc))
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
