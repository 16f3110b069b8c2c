"""PromotionJudge: judges each candidate, records the verdict, applies it as the mode allows.

One judge step, all under the promotion lock (``--approve``/``--reject`` may run concurrently):

1. **Rollback** check of the active model against its recorded paper performance (when
   ``headless.auto_rollback_on_degradation``), then the **registry** re-evaluation of the active
   strategy (T5) -- both in :mod:`aistock_actors.services.active_model`.
2. **Verdict**: :func:`~aistock_actors.core.promotion.gate.evaluate_candidate` with the
``promotion``
   thresholds and ``headless.promotion_validation_stages``, the incumbent's fresh Sharpe for
   champion/challenger, against the candidate's on the same bars (the backtest's champion
   window: after the incumbent's training end when there are enough bars; stage 7's note in the
   manifest names the window); :func:`~aistock_actors.core.promotion.gate.decide_action` maps it
   to what the mode allows: ``manual`` records it, ``supervised`` leaves a passing candidate
   ``pending`` for ``--approve``, ``headless`` promotes when ``enable_auto_promotion``.
3. The verdict is appended to ``state/promotion/manifest.json`` FIRST (write-ahead; for a
   promotion only after the halt flag and the artifact's sha256 were checked) -- an approved or
   pending verdict's backtest equity curve is written before it, to
   ``state/promotion/curves/<model id>.json`` (the manifest holds the metrics only) -- then
4. **Promotion**: ``ensure_not_halted("promotion")`` again immediately before
   ``ModelStore.activate`` (which re-verifies the sha256), then the registry; and audited:
   ``model_promoted``, ``auto_promotion_rejected``, ``promotion_pending_approval``,
   ``promotion_verdict_recorded`` or ``promotion_held_leak_suspected`` (stage 8: too good to be
   true; held in every mode with a critical alert, ``--approve`` after review), with ``reason``
   (the first failure code), ``reasons`` (all of them, also in the alert) and every stage.

A halt at the moment of promoting refuses the promotion (``promotion_refused_halted``, step
failed) and records no verdict; a candidate whose artifact no longer matches its hash is
recorded ``rejected`` with ``model_integrity_failed`` and a critical alert.

What a SIGKILL or a failed write between the write-ahead record and the pointer move leaves (a
promotion, rollback or retirement recorded, the pointer not moved) is finished by
:meth:`~aistock_actors.services.active_model.ActiveModelKeeper.reconcile`: when the judge starts
(so a
restarted daemon repairs it before its first cycle trades), at the start of every judge step,
and in a step without a candidate (training skipped or failed). At start-up and without a
candidate it is opportunistic: a halt, a busy lock or an unreadable file leaves it to the next
judge step (logged).
"""

from __future__ import annotations

import logging

import msgspec

from aistock_actors.actors.base import SupervisedActor
from aistock_actors.core.promotion.gate import (
    CandidateEvaluation,
    PromotionDecision,
    PromotionThresholds,
    decide_action,
    evaluate_candidate,
    manifest_entry,
    status_for_action,
)
from aistock_actors.core.promotion.manifest import ManifestEntry, with_status
from aistock_actors.errors import HaltedError, ModelIntegrityError, StateError
from aistock_actors.messages import Reply, Request
from aistock_actors.messages.model import BacktestCompleted, LifecycleSkipped, ModelTrained
from aistock_actors.messages.promotion import (
    CandidateJudged,
    JudgeCandidate,
    PromotionJudgeInbox,
)
from aistock_actors.services.active_model import ActiveModelKeeper
from aistock_actors.services.manifest_entries import mark_entry
from aistock_actors.services.verdicts import (
    champion_comparison,
    entry_extra,
    stage_line,
    stage_summaries,
)
from aistock_actors.store.models import ModelStore
from aistock_actors.store.promotion import (
    KEEP_EQUITY_CURVES,
    LOCK_TIMEOUT_SECONDS,
    PromotionStore,
    RegistryFile,
)
from aistock_actors.store.risk import allowed_exposure_scale
from aistock_actors.store.signing import IntegrityKey

log = logging.getLogger(__name__)

VERDICT_ACTIONS = {
    "promote": "model_promoted",
    "reject": "auto_promotion_rejected",
    "pending": "promotion_pending_approval",
    "record_only": "promotion_verdict_recorded",
    "hold": "promotion_held_leak_suspected",
}
"""Audit action of each verdict."""
STARTUP_LOCK_SECONDS = 1.0
"""Longest wait for the promotion lock at start-up (a start must not hang behind a holder)."""


class PromotionJudge(SupervisedActor):
    """Owns the manifest and the registry; reloads nothing into memory between steps."""

    child_name = "promotion_judge"
    inbox = PromotionJudgeInbox

    def load_state(self) -> None:
        cfg = self.ctx.config
        self.models = ModelStore(cfg.models_dir, self.ctx.alerts, IntegrityKey.from_config(cfg))
        self.models.ensure_pointer()  # models/active/model.json exists from the first start
        self.promo = PromotionStore(cfg.state_dir, self.ctx.alerts)
        self.thresholds = PromotionThresholds(**msgspec.structs.asdict(cfg.config.promotion))
        # Surface a corrupt file now (recovered from .bak, alerted). No lock: writes are atomic
        # renames, and a start must not wait behind a holder that hangs.
        self.promo.load_manifest()
        self.promo.load_registry()
        # Finish an interrupted pointer move before the first cycle trades on the old pointer.
        try:
            self.repair(STARTUP_LOCK_SECONDS)
        except OSError as exc:  # a start must not fail on it: the next judge step retries
            log.error("active model not reconciled at start-up: %r (next judge step)", exc)

    def keeper(self) -> ActiveModelKeeper:
        """The active-model keeper on this judge's stores."""
        return ActiveModelKeeper(
            actor=self.ctx.name,
            models=self.models,
            promo=self.promo,
            audit=self.ctx.audit,
            alerts=self.ctx.alerts,
            ensure_not_halted=self.ensure_not_halted,
            thresholds=self.thresholds,
            clock=self.ctx.clock,
        )

    def auto_promotion(self) -> bool:
        """Whether the config promotes a passing candidate without an operator."""
        cfg = self.ctx.config.config
        return cfg.mode == "headless" and cfg.headless.enable_auto_promotion

    def repair(self, lock_timeout: float = LOCK_TIMEOUT_SECONDS) -> list[str]:
        """Reconcile the active model outside a verdict (start-up, a step without a candidate);
        return its notes. A halt, a busy lock or unreadable state is logged, left for later."""
        keeper = self.keeper()
        try:
            with self.promo.locked(lock_timeout):
                manifest = self.promo.load_manifest()
                registry = self.promo.load_registry()
                if keeper.reconcile(manifest, registry, auto_promotion=self.auto_promotion()):
                    keeper.commit(manifest, registry)
        except (HaltedError, StateError) as exc:
            log.warning("active model not reconciled now: %s (next judge step)", exc)
        for note in keeper.notes:
            log.warning("reconciled: %s", note)
        return keeper.notes

    def handle(self, request: Request) -> Reply:
        match request:
            case JudgeCandidate():
                return self.judge(request)
            case _:
                return super().handle(request)

    def judge(self, request: JudgeCandidate) -> Reply:
        """Upkeep of the active model, then the candidate's verdict (module docstring)."""
        trained, backtest = request.trained, request.backtest
        if trained is None and request.upstream_skip is not None:
            self.repair()
            skip = request.upstream_skip
            return LifecycleSkipped(
                request_id=request.request_id, reason=skip.reason, detail=skip.detail
            )
        if trained is None or backtest is None or backtest.model_id != trained.model_id:
            self.repair()
            return self.fail(request, "no_candidate", "no trained and backtested candidate")
        keeper = self.keeper()
        decision = self._decide(trained, backtest)
        try:
            with self.promo.locked():
                return self._judge_locked(request, trained, backtest, decision, keeper)
        except StateError as exc:
            return self.fail(request, "promotion_state_unavailable", str(exc))
        except HaltedError as exc:
            self.ctx.audit.append(
                "promotion_refused_halted", self.ctx.name, {"model_id": trained.model_id}
            )
            return self.fail(request, "halted", str(exc))

    def _judge_locked(
        self,
        request: JudgeCandidate,
        trained: ModelTrained,
        backtest: BacktestCompleted,
        decision: PromotionDecision,
        keeper: ActiveModelKeeper,
    ) -> Reply:
        headless = self.ctx.config.config.headless
        manifest = self.promo.load_manifest()
        registry = self.promo.load_registry()
        keeper.reconcile(manifest, registry, auto_promotion=self.auto_promotion())
        rolled_back = headless.auto_rollback_on_degradation and keeper.check_degradation(
            manifest,
            registry,
            headless.degradation_threshold_pct,
            allowed_exposure_scale(self.ctx.config),  # #17: per unit of the exposure allowed
        )
        if not rolled_back:
            keeper.reevaluate(manifest, registry, backtest)
        keeper.commit(manifest, registry)
        mode = self.ctx.config.config.mode
        action = decide_action(decision, mode, headless.enable_auto_promotion)
        entry = manifest_entry(
            decision,
            status_for_action(action),
            self.ctx.clock.now(),
            extra=entry_extra(request, trained, backtest, mode, action),
        )
        if action == "promote":
            verified = self._verify_candidate(trained, entry)
            failed, entry = verified is not entry, verified
        else:
            failed = False
        self._store_curve(entry, backtest)  # before the entry: a recorded entry has its curve
        manifest.append(entry)
        # Write-ahead: the verdict is on disk before the pointer moves, so a crash or a failed
        # write in between can never leave a model active that the manifest does not approve.
        keeper.commit(manifest, registry)
        if action == "promote" and not failed:
            try:
                self._activate(trained, registry, keeper)
            except HaltedError:  # halted after the write-ahead: leave it to the operator
                mark_entry(manifest, entry, "pending", "halted_before_activation")
                keeper.commit(manifest, registry)
                raise
            keeper.commit(manifest, registry)
        self._audit_verdict(entry, action, decision, failed)
        if failed:
            return self.fail(request, "model_integrity", f"{trained.model_id}: hash mismatch")
        return _judged(request, entry, action, decision, self.models, keeper.notes)

    def _decide(self, trained: ModelTrained, bt: BacktestCompleted) -> PromotionDecision:
        candidate = CandidateEvaluation(
            model_id=trained.model_id,
            sharpe=bt.sharpe,
            max_drawdown=bt.max_drawdown,
            win_rate=bt.win_rate,
            train_accuracy=trained.train_accuracy,
            test_accuracy=trained.test_accuracy,
            total_return=bt.total_return,
            trade_count=bt.trade_count,
            transition_drawdown=bt.transition_drawdown,
            deflated_sharpe=bt.deflated_sharpe,
            trials=bt.trials,
        )
        incumbent = None
        if bt.incumbent_model_id is not None and bt.incumbent_sharpe is not None:
            incumbent = msgspec.structs.replace(
                candidate, model_id=bt.incumbent_model_id, sharpe=bt.incumbent_sharpe
            )
        stages = self.ctx.config.config.headless.promotion_validation_stages
        return evaluate_candidate(
            candidate, self.thresholds, stages, incumbent, champion_comparison(bt)
        )

    def _store_curve(self, entry: ManifestEntry, backtest: BacktestCompleted) -> None:
        """Write the candidate's backtest equity curve file if its entry keeps one (approved or
        pending). A failed write is logged and the verdict recorded without a curve (the report
        then shows a note instead of the plot)."""
        if entry.status not in KEEP_EQUITY_CURVES or not backtest.equity_curve:
            return
        try:
            self.promo.save_curve(backtest.model_id, entry.id, backtest.equity_curve)
        except OSError as exc:
            log.warning("backtest equity curve of %s not stored: %r", backtest.model_id, exc)

    def _verify_candidate(self, trained: ModelTrained, entry: ManifestEntry) -> ManifestEntry:
        """Check the halt flag and the artifact's hash before anything is recorded as approved:
        ``entry`` itself if it holds, else the entry recorded as rejected."""
        self.ensure_not_halted("promotion")
        try:
            record = self.models.verify(trained.model_id)
            if record.sha256 != trained.sha256:
                raise ModelIntegrityError(
                    f"{trained.model_id}: stored sha256 {record.sha256} != trained "
                    f"{trained.sha256}"
                )
        except ModelIntegrityError as exc:
            self.ctx.alerts.raise_alert(
                "critical", "model_integrity_failed", str(exc), actor=self.ctx.name
            )
            return with_status(entry, "rejected", "model_integrity_failed")
        return entry

    def _activate(
        self, trained: ModelTrained, registry: RegistryFile, keeper: ActiveModelKeeper
    ) -> None:
        """Move the active pointer (the halt flag is checked again at the moment of acting)."""
        self.ensure_not_halted("promotion")
        self.models.activate(trained.model_id, expected_sha256=trained.sha256)
        keeper.register(registry, trained.model_id, "promoted")

    def _audit_verdict(
        self, entry: ManifestEntry, action: str, decision: PromotionDecision, failed: bool
    ) -> None:
        reasons = list(entry.reasons)
        audit_action = "auto_promotion_rejected" if failed else VERDICT_ACTIONS[action]
        details = {
            "entry_id": entry.id,
            "model_id": entry.model_id,
            "mode": entry.mode if isinstance(entry.mode, str) else None,
            "action": action,
            "status": entry.status,
            "reason": reasons[0] if reasons else None,
            "reasons": reasons,
            "stages": {f"stage{s.stage}_{s.name}": s.value for s in decision.stages},
        }
        self.ctx.audit.append(audit_action, self.ctx.name, details)
        # Every failing stage, not only the first, in the headline and the summary.
        reason = f": {', '.join(reasons)}" if reasons else ""
        self.ctx.alerts.raise_alert(
            "critical" if action == "hold" else "info",
            audit_action,
            f"{audit_action}{reason} ({entry.model_id}, manifest entry {entry.id})",
            actor=self.ctx.name,
            details=details,
        )


def _judged(
    request: JudgeCandidate,
    entry: ManifestEntry,
    action: str,
    decision: PromotionDecision,
    models: ModelStore,
    notes: list[str],
) -> CandidateJudged:
    active = models.active_record()
    return CandidateJudged(
        request_id=request.request_id,
        model_id=decision.model_id,
        entry_id=entry.id,
        approved=decision.approved,
        action=action,
        status=entry.status,
        reasons=list(entry.reasons),
        stages=stage_summaries(decision),
        stage_values=stage_line(decision),
        active_model=active.model_id if active is not None else None,
        events=list(notes),
    )

