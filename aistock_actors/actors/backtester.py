"""Backtester: verifies the candidate, backtests it walk-forward, re-evaluates the incumbent.

The candidate artifact is loaded (its sha256 verified) before anything else; so is the active
model when there is one. A hash mismatch on either is a ``model_integrity_failed`` CRITICAL alert
and a failed step (fail closed): the judge is skipped, so nothing is promoted or rolled back while
an artifact in the store is not what was recorded, and the active pointer is left untouched.

The walk-forward out-of-sample backtest
(:func:`~aistock_actors.core.model.pipeline.walk_forward_backtest`) fits its folds and scores the
incumbent as one batch of jobs in the process pool; a batch that outlives the step's budget is
killed and the step fails with ``timeout``. The incumbent's training end (``data_end`` in its
stored metadata) is passed on, so it is scored, and compared with the candidate, on the bars it
was not trained on when there are enough of them (the pipeline's module docstring).

A :class:`~aistock_actors.core.strategy.artifact.StrategyModel` candidate (a candidate-set
cycle) is scored by its walk-forward report, handed over from the Trainer in-process or
recomputed (:func:`~aistock_actors.core.strategy.walkforward.walk_forward_strategy`) after a
restart; the incumbent, a TrainedModel or a StrategyModel, is compared on the champion window the
same way (:mod:`aistock_actors.core.strategy.incumbent`). The reply is the same
:class:`BacktestCompleted`. The single ML recipe's backtest scores a strategy incumbent by the
sign of its weights (:class:`~aistock_actors.core.strategy.incumbent.PanelSignals`).

Every backtested candidate is counted in ``state/promotion/trials.json``
(:class:`~aistock_actors.store.trials.TrialStore`) and its deflated Sharpe ratio over that count
goes to the judge (stage 9).
"""

from __future__ import annotations

import typing

import pandas as pd

from aistock_actors.actors.base import POOL_STEP_ERRORS, PoolActor
from aistock_actors.core.model import pipeline
from aistock_actors.core.model.models import TrainedModel
from aistock_actors.core.strategy.artifact import StrategyModel
from aistock_actors.core.strategy.incumbent import PanelSignals
from aistock_actors.core.strategy.selection import deflated_sharpe_ratio
from aistock_actors.errors import ModelIntegrityError, StateError, StrategyError
from aistock_actors.messages import Reply, Request, StepFailed
from aistock_actors.messages.model import (
    BacktestCompleted,
    BacktesterInbox,
    BacktestModel,
    LifecycleSkipped,
)
from aistock_actors.runtime import progress
from aistock_actors.runtime.jobs import (
    make_mapper,
)
from aistock_actors.services import pipeline_params as lifecycle
from aistock_actors.services import strategy_backtest
from aistock_actors.store.trials import TrialStore

MODEL_INTEGRITY_FAILED = "model_integrity_failed"


class Backtester(PoolActor):
    """Scores candidates out of sample; holds no state of its own."""

    child_name = "backtester"
    inbox = BacktesterInbox

    def handle(self, request: Request) -> Reply:
        match request:
            case BacktestModel():
                return self.backtest(request)
            case _:
                return super().handle(request)

    def backtest(self, request: BacktestModel) -> Reply:
        """Verify, backtest, reply :class:`BacktestCompleted` (or a StepFailed)."""
        trained = request.candidate
        if trained is None and request.upstream_skip is not None:
            skip = request.upstream_skip
            return LifecycleSkipped(
                request_id=request.request_id, reason=skip.reason, detail=skip.detail
            )
        if trained is None:
            return self.fail(request, "no_candidate", "the train step produced no candidate")
        try:
            if self.models.record(trained.model_id).sha256 != trained.sha256:
                raise ModelIntegrityError(
                    f"model {trained.model_id}: recorded sha256 differs from the trained one"
                )
            candidate = self.models.load(trained.model_id)
            active = self.models.load_active()
        except ModelIntegrityError as exc:
            return self._integrity_failed(request, exc)
        except StateError as exc:
            return self.fail(request, "model_unreadable", str(exc))
        incumbent = None if active is None or active[0].model_id == trained.model_id else active[1]
        data_end = active[0].extra.get("data_end") if active is not None else None
        end = data_end if isinstance(data_end, str) else None
        if isinstance(candidate, StrategyModel):
            return self._strategy_run(request, candidate, incumbent, end)
        return self._run(request, candidate, incumbent, end)

    def _as_signals(
        self, frames: dict[str, pd.DataFrame], incumbent: StrategyModel
    ) -> tuple[TrainedModel | None, str | None]:
        """A strategy incumbent in the ML recipe's backtest (see
        :class:`~aistock_actors.core.strategy.incumbent.PanelSignals`), or why it is not scored
        (its source changed: ``ModelIntegrityError`` propagates, fail closed)."""
        targets = strategy_backtest.incumbent_targets(self.ctx.config, frames, incumbent)
        if isinstance(targets, str):
            return None, targets
        return typing.cast(TrainedModel, PanelSignals(incumbent.model_id, targets)), None

    def _integrity_failed(self, request: BacktestModel, exc: ModelIntegrityError) -> StepFailed:
        """An artifact (or a user strategy's source) is not what was recorded: critical alert,
        audit record, failed step (fail closed)."""
        self.ctx.alerts.raise_alert(
            "critical", MODEL_INTEGRITY_FAILED, str(exc), actor=self.ctx.name
        )
        self.ctx.audit.append(MODEL_INTEGRITY_FAILED, self.ctx.name, {"error": str(exc)})
        return self.fail(request, "model_integrity", str(exc))

    def _strategy_run(
        self,
        request: BacktestModel,
        candidate: StrategyModel,
        incumbent: TrainedModel | StrategyModel | None,
        incumbent_data_end: str | None,
    ) -> Reply:
        loaded = self.ctx.config
        cfg = loaded.config
        mapper = progress.tracked_mapper(
            make_mapper(self.runner, lifecycle.job_budget(cfg, "backtest")), "backtest", "jobs"
        )
        try:
            frames = lifecycle.load_frames(loaded, self.bars)
            scored = strategy_backtest.score(
                loaded, frames, candidate, incumbent, incumbent_data_end,
                self.ctx.hand_over, mapper,
            )
        except ModelIntegrityError as exc:  # a user strategy's source changed since training
            return self._integrity_failed(request, exc)
        except StrategyError as exc:
            return self.fail(request, "strategy_failed", str(exc))
        except POOL_STEP_ERRORS as exc:  # timeout, cancelled (halt/stop), no data, ...
            return self.pool_failure(request, exc)
        try:  # the Trainer counted every candidate under this id: this adds nothing then
            trials = TrialStore(loaded.state_dir, self.ctx.alerts).add(
                1, candidate=candidate.model_id
            )
        except OSError as exc:
            return self.fail(request, "trials_unwritable", f"trial count not recorded: {exc!r}")
        return _completed(request, scored, trials)

    def _run(
        self,
        request: BacktestModel,
        candidate: TrainedModel,
        incumbent: TrainedModel | StrategyModel | None,
        incumbent_data_end: str | None = None,
    ) -> Reply:
        cfg = self.ctx.config.config
        mapper = progress.tracked_mapper(
            make_mapper(self.runner, lifecycle.job_budget(cfg, "backtest")), "backtest", "jobs"
        )
        model_incumbent = incumbent if isinstance(incumbent, TrainedModel) else None
        note: str | None = None
        try:
            frames = lifecycle.load_frames(self.ctx.config, self.bars)
            if isinstance(incumbent, StrategyModel):  # scored by the sign of its weights
                model_incumbent, note = self._as_signals(frames, incumbent)
            report = pipeline.walk_forward_backtest(
                frames,
                model_id=candidate.model_id,
                params=candidate.params,
                seed=cfg.training.seed,
                spec=lifecycle.simulation_spec(cfg),
                sizing=lifecycle.sizing(cfg),
                incumbent=model_incumbent,
                incumbent_data_end=incumbent_data_end,
                mapper=mapper,
                hand_over=self.ctx.hand_over,
            )
        except ModelIntegrityError as exc:  # a strategy incumbent's source changed
            return self._integrity_failed(request, exc)
        except POOL_STEP_ERRORS as exc:  # timeout, cancelled (halt/stop), no data, ...
            return self.pool_failure(request, exc)
        try:  # every backtested candidate is a trial, counted before it can be selected
            store = TrialStore(self.ctx.config.state_dir, self.ctx.alerts)
            trials = store.add(1, candidate=candidate.model_id)  # once per candidate
        except OSError as exc:
            return self.fail(request, "trials_unwritable", f"trial count not recorded: {exc!r}")
        incumbent_id = incumbent.model_id if incumbent is not None else None
        return _completed(
            request, strategy_backtest.scored_from_report(report, incumbent_id, note), trials
        )


def _completed(
    request: BacktestModel, scored: strategy_backtest.Scored, trials: int
) -> BacktestCompleted:
    m = scored.candidate.metrics
    inc = scored.incumbent
    window = scored.champion
    return BacktestCompleted(
        request_id=request.request_id,
        model_id=scored.candidate.model_id,
        sharpe=m.sharpe,
        max_drawdown=m.max_drawdown,
        win_rate=m.win_rate,
        total_return=m.total_return,
        trade_count=m.trade_count,
        transition_drawdown=m.transition_max_drawdown,
        return_over_drawdown=m.return_over_drawdown,
        exposure=m.exposure,
        turnover=m.turnover,
        total_costs=m.total_costs,
        bars=scored.candidate.bars,
        folds=scored.folds,
        oos_start=scored.start,
        oos_end=scored.end,
        incumbent_model_id=scored.incumbent_id,
        incumbent_sharpe=inc.metrics.sharpe if inc is not None else None,
        incumbent_max_drawdown=inc.metrics.max_drawdown if inc is not None else None,
        incumbent_total_return=inc.metrics.total_return if inc is not None else None,
        incumbent_trade_count=inc.metrics.trade_count if inc is not None else None,
        incumbent_note=scored.incumbent_note,
        incumbent_data_end=window.training_end if window is not None else None,
        champion_window_start=window.start if window is not None else None,
        champion_window_end=window.end if window is not None else None,
        champion_window_bars=window.bars if window is not None else None,
        champion_window_out_of_sample=window.after_training_end if window is not None else None,
        candidate_sharpe_champion_window=(
            window.candidate.metrics.sharpe if window is not None else None
        ),
        champion_window_note=window.note if window is not None else None,
        equity_curve=list(scored.candidate.equity_curve),
        bars_per_year=m.bars_per_year,
        deflated_sharpe=deflated_sharpe_ratio(scored.candidate.returns, trials),
        trials=trials,
    )
