"""Keeping the active model honest: registry re-evaluation (T5), retirement, degradation rollback.

Used by the PromotionJudge at every judge step (and by ``--approve`` to register a promotion),
always under the promotion lock (:meth:`PromotionStore.locked`). The pure rules live in
``core/promotion/registry.py`` and ``core/promotion/rollback.py``; this module applies them to
the files.

**Registry.** One strategy slot, ``primary``, holds the active model. Each judge step re-evaluates
it: it *passes* when the Backtester's fresh evaluation of the incumbent on this cycle's champion
window passes promotion stage 1 (Sharpe and drawdown gates), *fails* when that evaluation does
not, and is *missing* when the incumbent was not evaluated this cycle (e.g. its features are no
longer available). The champion window is the bars after the incumbent's training end once there
are enough of them (:data:`~aistock_actors.core.model.pipeline.MIN_CHAMPION_WINDOW_BARS`), so a
model that degrades is judged on data it was not fitted to; before that it is the candidate's whole
out-of-sample window, partly the incumbent's own training data (the audit event's
``champion_window_note`` says which). Failures and misses both count; after
:data:`~aistock_actors.core.promotion.registry.PROMOTION_GRACE_CYCLES` in a row the strategy is
removed, which RETIRES the model: ``models/active/model.json`` falls back to the most recent
previously active model that was neither retired nor rolled back (it is re-registered with a
clean counter), and if there is none, no model is active (the pointer is moved aside to
``models/active/deactivated.json``; paper trading then holds no model). Cycles in which the judge
step does not run (training or backtest failed) do not touch the registry.

**Rollback** (``headless.auto_rollback_on_degradation``). When ``state/paper/performance.json``
records the active model's per-bar paper returns since its promotion, they are compared with what
its promotion backtest promised (total return over the backtest's bars, from its ``approved``
manifest entry) by :func:`~aistock_actors.core.promotion.rollback.should_rollback`. On degradation
beyond ``headless.degradation_threshold_pct`` the previous good model is re-activated (or none), the
entry becomes ``rolled_back``, and ``auto_rollback_on_degradation`` is audited and alerted.

Every pointer change is preceded by ``ensure_not_halted`` and followed by writing the manifest
and registry, so the files on disk describe every change that was made.

**Reconcile** (:meth:`ActiveModelKeeper.reconcile`, at the judge's start-up and at every judge
step). Every change is written ahead of the pointer move, so a SIGKILL or a failed write in
between leaves the record ahead of the pointer. Reconcile finishes it:

- a rollback or retirement recorded while the pointer still names that model: the fall-back
  is done (``interrupted_fallback_completed``); a model whose entry is ``rolled_back`` is added
  to the registry's ``rolled_back_models`` if a crash came between the two writes;
- a promotion recorded ``approved`` while the pointer still names the previous model (or none):
  the most recently approved entry (by its approval time), when its model is not the active one
  and was neither retired nor rolled back, is activated after its artifact's sha256 is verified
  against the entry (``interrupted_promotion_completed``). An artifact that is missing or fails
  the check is never activated: critical ``model_integrity_failed`` alert, the entry becomes
  ``rejected`` with reason ``model_integrity_failed`` (as a candidate failing the check before
  its promotion) and the pointer stays (``interrupted_promotion_not_activated``). An automatic
  promotion found while automatic promotion is no longer allowed (mode ``manual``/``supervised``, or
  ``enable_auto_promotion`` off) is not activated either: it becomes ``pending`` with reason
  ``interrupted_promotion``, for ``--approve`` (``interrupted_promotion_pending_approval``).
  Only the most recent approval is considered: a model that left the pointer by a rollback or
  a retirement is never re-activated, and an older approval was superseded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from aistock_actors.core.promotion.gate import (
    CandidateEvaluation,
    PromotionThresholds,
    evaluate_candidate,
    mark_rolled_back,
)
from aistock_actors.core.promotion.manifest import ManifestEntry, replace_entry
from aistock_actors.core.promotion.registry import RegistryEvent, add_strategy, update_registry
from aistock_actors.core.promotion.rollback import (
    LivePerformance,
    choose_rollback_target,
    expected_from_backtest,
    should_rollback,
)
from aistock_actors.errors import ModelIntegrityError, StateError
from aistock_actors.messages.model import BacktestCompleted
from aistock_actors.runtime.clock import SYSTEM_CLOCK, Clock
from aistock_actors.services.manifest_entries import interrupted_promotion, mark_entry
from aistock_actors.store.alerts import AlertSink, Severity
from aistock_actors.store.audit import AuditLog
from aistock_actors.store.models import ModelRecord, ModelStore
from aistock_actors.store.promotion import (
    STRATEGY_ID,
    Manifest,
    PromotionStore,
    RegistryFile,
    deactivate,
    last_approved_entry,
)

AUTO_ROLLBACK = "auto_rollback_on_degradation"
_EVENT_ACTIONS = {
    "added": "strategy_added",
    "updated": "strategy_updated",
    "entered_grace": "strategy_entered_grace",
    "grace_continued": "strategy_grace_continued",
    "recovered": "strategy_recovered",
    "removed": "strategy_removed",
}


class ActiveModelKeeper:
    """Applies the registry and rollback rules to the files (see the module docstring)."""

    def __init__(
        self,
        *,
        actor: str,
        models: ModelStore,
        promo: PromotionStore,
        audit: AuditLog,
        alerts: AlertSink,
        ensure_not_halted: Callable[[str], None],
        thresholds: PromotionThresholds,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.actor = actor
        self.models = models
        self.promo = promo
        self.audit = audit
        self.alerts = alerts
        self.ensure_not_halted = ensure_not_halted
        self.thresholds = thresholds
        self.clock = clock
        self.notes: list[str] = []

    # --- registry ------------------------------------------------------------------------------

    def register(self, registry: RegistryFile, model_id: str, cause: str) -> None:
        """Make ``model_id`` the registry's active strategy (clean counter) and audit it."""
        state, event = add_strategy(registry.state, STRATEGY_ID, model_id, self.clock.now())
        registry.strategies = list(state.strategies)
        self._audit_event(event, {"cause_detail": cause})

    def reconcile(
        self, manifest: Manifest, registry: RegistryFile, *, auto_promotion: bool
    ) -> bool:
        """Repair what a crash between two writes can leave (module docstring): finish a
        rollback or retirement, or a promotion, that was recorded (write-ahead) but whose
        pointer move never happened, and register the active model if the registry does not
        know it. ``auto_promotion``: whether the config allows automatic promotion now.

        Returns whether ``manifest`` or ``registry`` changed (the caller commits them).
        """
        changed = False
        # A rollback is written manifest first, registry second: a crash in between leaves the
        # entry ``rolled_back`` while the registry does not exclude its model yet.
        rolled_back = {e.model_id for e in manifest if e.status == "rolled_back"}
        missing = sorted(rolled_back - set(registry.rolled_back_models))
        if missing:
            registry.rolled_back_models.extend(missing)
            changed = True
        active = self.models.active_record()
        if active is not None and active.model_id in registry.excluded():
            self.audit.append("interrupted_fallback_completed", self.actor,
                              {"model_id": active.model_id})
            self._fall_back(manifest, registry, active.model_id, "interrupted_fallback")
            active = self.models.active_record()
            changed = True
        entry = interrupted_promotion(manifest, registry, active.model_id if active else None)
        if entry is not None:
            self._finish_promotion(manifest, registry, entry, active, auto_promotion)
            active = self.models.active_record()
            changed = True
        current = registry.state.get(STRATEGY_ID)
        if active is not None and (current is None or current.model_id != active.model_id):
            self.register(registry, active.model_id, "reconciled_with_active_pointer")
            changed = True
        return changed

    def _finish_promotion(
        self,
        manifest: Manifest,
        registry: RegistryFile,
        entry: ManifestEntry,
        active: ModelRecord | None,
        auto_promotion: bool,
    ) -> None:
        """Activate an approved entry's model whose pointer move was interrupted, or record
        why it is not activated (module docstring)."""
        model_id = entry.model_id
        details: dict[str, Any] = {"entry_id": entry.id, "model_id": model_id,
                                   "previous_model_id": active.model_id if active else None}
        self.ensure_not_halted("promotion")
        operator_decided = isinstance(entry.decided_at, str)
        if entry.action == "promote" and not operator_decided and not auto_promotion:
            mark_entry(manifest, entry, "pending", "interrupted_promotion")
            self.commit(manifest, registry)
            self.audit.append("interrupted_promotion_pending_approval", self.actor, details)
            self.notes.append(f"{model_id}: interrupted promotion left for --approve")
            return
        sha = entry.sha256 if isinstance(entry.sha256, str) else None
        try:
            record = self.models.activate(model_id, expected_sha256=str(sha) if sha else None)
        except (ModelIntegrityError, StateError) as exc:
            self.alerts.raise_alert("critical", "model_integrity_failed", str(exc),
                                    actor=self.actor, details=details)
            mark_entry(manifest, entry, "rejected", "model_integrity_failed")
            self.commit(manifest, registry)
            self.audit.append("interrupted_promotion_not_activated", self.actor,
                              {**details, "reason": "model_integrity_failed", "error": str(exc)})
            self.notes.append(f"{model_id} not activated (interrupted promotion: {exc})")
            return
        self.audit.append("interrupted_promotion_completed", self.actor,
                          {**details, "sha256": record.sha256})
        self.register(registry, model_id, "interrupted_promotion")
        self.commit(manifest, registry)
        self.notes.append(f"{model_id} activated (interrupted promotion completed)")

    def reevaluate(
        self, manifest: Manifest, registry: RegistryFile, backtest: BacktestCompleted
    ) -> None:
        """One cycle of the registry: pass, fail or missing for the active strategy."""
        record = registry.state.get(STRATEGY_ID)
        if record is None:
            return
        evaluated: dict[str, bool] = {}
        if backtest.incumbent_model_id == record.model_id and backtest.incumbent_sharpe is not None:
            evaluated[STRATEGY_ID] = self._passes_stage1(backtest)
        state, events = update_registry(registry.state, evaluated, self.clock.now())
        registry.strategies = list(state.strategies)
        for event in events:
            self._audit_event(
                event,
                {
                    "incumbent_sharpe": backtest.incumbent_sharpe,
                    "champion_window_out_of_sample": backtest.champion_window_out_of_sample,
                    "champion_window_note": backtest.champion_window_note,
                },
            )
            if event.kind == "removed":
                registry.retired_models.append(event.model_id)
                self.commit(manifest, registry)  # write-ahead, as for a rollback
                self._fall_back(manifest, registry, event.model_id, "strategy_removed")

    def _passes_stage1(self, bt: BacktestCompleted) -> bool:
        evaluation = CandidateEvaluation(
            model_id=bt.incumbent_model_id or "",
            sharpe=bt.incumbent_sharpe if bt.incumbent_sharpe is not None else float("nan"),
            max_drawdown=(
                bt.incumbent_max_drawdown if bt.incumbent_max_drawdown is not None else 1.0
            ),
            win_rate=0.0,
            train_accuracy=1.0,
            test_accuracy=0.0,
            total_return=bt.incumbent_total_return or 0.0,
            trade_count=bt.incumbent_trade_count or 0,
        )
        stage1 = evaluate_candidate(evaluation, self.thresholds, stages_enabled=1).stages[0]
        return stage1.status == "passed"

    def _audit_event(self, event: RegistryEvent, extra: dict[str, Any]) -> None:
        action = _EVENT_ACTIONS[event.kind]
        details = {
            "strategy_id": event.strategy_id,
            "model_id": event.model_id,
            "cause": event.cause,
            "consecutive_failures": event.consecutive_failures,
            "grace_cycles": event.grace_cycles,
            **extra,
        }
        self.audit.append(action, self.actor, details)
        self.notes.append(f"{action} {event.model_id} ({event.consecutive_failures}/"
                          f"{event.grace_cycles})")
        if event.kind in ("entered_grace", "removed"):
            severity: Severity = "warning" if event.kind == "entered_grace" else "error"
            self.alerts.raise_alert(
                severity,
                action,
                f"active strategy {event.model_id}: {event.cause} re-evaluation "
                f"{event.consecutive_failures}/{event.grace_cycles}",
                actor=self.actor,
                details=details,
            )

    # --- pointer changes -----------------------------------------------------------------------

    def _fall_back(
        self, manifest: Manifest, registry: RegistryFile, leaving: str, why: str
    ) -> str | None:
        """Activate the most recent earlier good model (or none); return its id."""
        history = [r.model_id for r in reversed(self.models.previous_active(50))]
        excluded = registry.excluded() | {leaving}
        self.ensure_not_halted(why)
        while True:
            target = choose_rollback_target([*history, leaving], leaving, excluded)
            if target is None:
                deactivate(self.models)
                registry.strategies = [s for s in registry.strategies if s.model_id != leaving]
                self.audit.append("model_deactivated", self.actor, {"model_id": leaving,
                                                                    "why": why})
                self.alerts.raise_alert(
                    "error", "model_deactivated",
                    f"no model active any more: {leaving} left ({why}) and no earlier good model "
                    "is left to fall back to; paper trading holds no model",
                    actor=self.actor, details={"model_id": leaving, "why": why})
                self.notes.append(f"no model active ({leaving} left: {why})")
                break
            try:
                self.models.activate(target)
            except (ModelIntegrityError, StateError) as exc:
                self.alerts.raise_alert("critical", "model_integrity_failed", str(exc),
                                        actor=self.actor)
                excluded.add(target)
                continue
            self.register(registry, target, why)
            self.notes.append(f"{target} re-activated ({leaving} left: {why})")
            break
        self.commit(manifest, registry)
        return target

    def commit(self, manifest: Manifest, registry: RegistryFile) -> None:
        """Persist the manifest and the registry (the caller holds the promotion lock), then
        delete the backtest equity curves no longer kept (none while the active model cannot be
        read: its curve must survive)."""
        self.promo.save_manifest(manifest)
        self.promo.save_registry(registry)
        try:
            active = self.models.active_record()
        except StateError:
            return
        self.promo.prune_curves(manifest, active.model_id if active is not None else None)

    # --- degradation rollback ------------------------------------------------------------------

    def check_degradation(
        self,
        manifest: Manifest,
        registry: RegistryFile,
        threshold_pct: float,
        exposure_scale: float = 1.0,
    ) -> bool:
        """Roll the active model back if its paper record falls short of its backtest.

        Returns whether it rolled back (the registry's re-evaluation is then skipped this cycle:
        this cycle's incumbent score belongs to the model that was just rolled back).
        """
        performance = self.promo.load_performance()
        active = self.models.active_record()
        if performance is None or active is None or performance.model_id != active.model_id:
            return False
        entry = last_approved_entry(manifest, active.model_id)
        if entry is None:
            return False
        total_return, bars = entry.number("total_return"), entry.number("bars")
        if total_return is None or bars is None:
            return False
        try:
            expected = expected_from_backtest(active.model_id, total_return, int(bars))
        except (TypeError, ValueError):
            return False
        live = LivePerformance(model_id=active.model_id, bar_returns=list(performance.returns),
                               earlier=performance.earlier)
        verdict = should_rollback(expected, live, threshold_pct, exposure_scale=exposure_scale)
        if verdict.reason == "invalid_live_returns":
            self.alerts.raise_alert("warning", "paper_performance_invalid",
                                    f"{self.promo.performance_path}: unusable returns; "
                                    "degradation check skipped", actor=self.actor)
        if not verdict.rollback:
            return False
        registry.rolled_back_models.append(active.model_id)
        now = self.clock.now()
        manifest[:] = mark_rolled_back(manifest, entry.id, now)
        # Write-ahead: the rollback is on disk before the pointer moves; a crash in between is
        # finished by reconcile() at the next judge step.
        self.commit(manifest, registry)
        target = self._fall_back(manifest, registry, active.model_id, AUTO_ROLLBACK)
        details = {
            "model_id": active.model_id,
            "rolled_back_to": target,
            "entry_id": entry.id,
            "shortfall": verdict.shortfall,
            "expected_return": verdict.expected_return,
            "realised_return": verdict.realised_return,
            "observations": verdict.observations,
            "threshold_pct": threshold_pct,
            "exposure_scale": verdict.exposure_scale,
        }
        self.audit.append(AUTO_ROLLBACK, self.actor, details)
        self.alerts.raise_alert(
            "error",
            AUTO_ROLLBACK,
            f"{active.model_id} paper return {verdict.realised_return:.2%} vs expected "
            f"{verdict.expected_return:.2%} over {verdict.observations} bars; "
            f"rolled back to {target or 'no model'}",
            actor=self.actor,
            details=details,
        )
        for item in [e for e in manifest if e.id == entry.id]:
            replace_entry(manifest, msgspec.structs.replace(item, rollback=details))
        self.commit(manifest, registry)
        return True

