"""Operator decisions on promotions: ``--approve ID``, ``--reject ID``, and what ``--status`` shows.

``ID`` is a manifest entry's ``id`` (``<model id>@<time>``, printed in the cycle summary and by
``--status``). Only a ``pending`` or ``held`` (``leak_suspected``) entry can be decided; anything
else raises ``ValueError`` with one clear line. Approving re-verifies the artifact's sha256 against
the one recorded in the entry before it moves ``models/active/model.json``, and is refused while
the system is halted (a promotion is a side effect a halt forbids). Both commands hold the
promotion lock, so they are safe while a daemon's judge step runs, and are audited with actor
``operator``.

As in the judge, the ``approved`` status is written before the pointer moves (write-ahead): a
crash in between leaves an approval whose pointer move the judge's reconcile finishes (never a
model active that the manifest does not approve).
"""

from __future__ import annotations

from typing import Any

from aistock_actors.config import LoadedConfig
from aistock_actors.core.promotion.gate import (
    PromotionThresholds,
    apply_operator_decision,
    pending_entries,
)
from aistock_actors.errors import HaltedError, ModelIntegrityError
from aistock_actors.runtime.clock import SYSTEM_CLOCK, Clock
from aistock_actors.services.active_model import ActiveModelKeeper
from aistock_actors.store.alerts import AlertSink
from aistock_actors.store.audit import AuditLog
from aistock_actors.store.audit_anchor import anchor_for
from aistock_actors.store.models import ModelStore
from aistock_actors.store.promotion import PromotionStore, find_entry, last_approved_entry
from aistock_actors.store.signing import IntegrityKey
from aistock_actors.store.state import kill_switch_active, read_halt

OPERATOR = "operator"


def _ensure_not_halted(loaded: LoadedConfig) -> None:
    halt = read_halt(loaded.state_dir)
    if kill_switch_active(loaded.state_dir):
        raise HaltedError("refused: the kill switch is active; run --unkill first")
    if halt is not None:
        raise HaltedError(f"refused: the autopilot is halted ({halt.reason}); --resume first")


def decide(
    loaded: LoadedConfig,
    entry_id: str,
    *,
    approve: bool,
    clock: Clock = SYSTEM_CLOCK,
    actor: str = OPERATOR,
) -> str:
    """Approve (activate) or reject a pending manifest entry; return what was done.

    Raises ``ValueError`` (unknown id, not pending), :class:`HaltedError` (approve while halted)
    or :class:`~aistock_actors.errors.ModelIntegrityError` (artifact changed since judged).
    ``actor`` is who the audit log names: ``operator`` (the CLI) or ``web`` (the console).
    """
    state_dir = loaded.state_dir
    alerts = AlertSink(state_dir / "alerts")
    audit = AuditLog(state_dir / "audit" / "log.jsonl", anchor=anchor_for(loaded))
    models = ModelStore(loaded.models_dir, alerts, IntegrityKey.from_config(loaded))
    promo = PromotionStore(state_dir, alerts)
    if approve:
        _ensure_not_halted(loaded)
    with promo.locked():
        manifest = promo.load_manifest()
        updated = apply_operator_decision(manifest, entry_id, approve, clock.now())
        entry = find_entry(updated, entry_id)
        assert entry is not None
        model_id = entry.model_id
        details = {"entry_id": entry_id, "model_id": model_id, "decided_by": actor}
        if not approve:
            promo.save_manifest(updated)
            audit.append("promotion_rejected_by_operator", actor, details)
            return f"rejected {entry_id}: {model_id} will not be activated"
        _ensure_not_halted(loaded)
        sha = entry.sha256 if isinstance(entry.sha256, str) else None
        expected = sha or None
        _verify(models, model_id, expected)  # before anything is recorded
        promo.save_manifest(updated)  # write-ahead (module docstring)
        try:
            models.activate(model_id, expected_sha256=expected)
        except ModelIntegrityError:  # changed since the check just made: nothing was activated
            promo.save_manifest(manifest)
            raise
        registry = promo.load_registry()
        keeper = ActiveModelKeeper(
            actor=actor,
            models=models,
            promo=promo,
            audit=audit,
            alerts=alerts,
            ensure_not_halted=lambda _what: _ensure_not_halted(loaded),
            thresholds=PromotionThresholds(),
        )
        keeper.register(registry, model_id, "operator_approved")
        keeper.commit(updated, registry)
    audit.append("model_promoted", actor, {**details, "sha256": sha, "action": "promote"})
    return f"approved {entry_id}: {model_id} is now the active model (models/active/model.json)"


def _verify(models: ModelStore, model_id: str, expected_sha256: str | None) -> None:
    """:class:`ModelIntegrityError` if the artifact does not match its record or the entry."""
    record = models.verify(model_id)
    if expected_sha256 is not None and record.sha256 != expected_sha256:
        raise ModelIntegrityError(
            f"{models.artifact_path(model_id)}: sha256 {record.sha256} does not match the "
            f"sha256 {expected_sha256} recorded in the manifest entry"
        )


def active_model_summary(loaded: LoadedConfig) -> dict[str, Any] | None:
    """The active model's id, hash, activation time, training and backtest metrics (read-only)."""
    record = ModelStore(loaded.models_dir, None).active_record()
    if record is None:
        return None
    entry = last_approved_entry(PromotionStore(loaded.state_dir, None).load_manifest(),
                                record.model_id)
    backtest = entry.backtest if entry is not None else None
    keys = ("sharpe", "max_drawdown", "win_rate", "total_return", "trade_count",
            "transition_drawdown")
    return {
        "id": record.model_id,
        "sha256": record.sha256,
        "activated_at": record.activated_at.isoformat() if record.activated_at else None,
        "threshold": record.threshold,
        "train_accuracy": record.metrics.get("train_accuracy"),
        "test_accuracy": record.metrics.get("test_accuracy"),
        "backtest": {k: backtest.get(k) for k in keys} if isinstance(backtest, dict) else None,
    }


def pending_summary(loaded: LoadedConfig) -> list[dict[str, Any]]:
    """Entries awaiting ``--approve``/``--reject``, oldest first (read-only)."""
    out = []
    for entry in pending_entries(PromotionStore(loaded.state_dir, None).load_manifest()):
        out.append({"id": entry.id, "model_id": entry.model_id, "time": entry.time,
                    "sharpe": entry.metrics().get("sharpe")})
    return out


def render_lifecycle(active: dict[str, Any] | None, pending: list[dict[str, Any]]) -> list[str]:
    """``--status`` lines for the active model and the pending approvals."""
    lines = []
    if active is None:
        lines.append("active model:         none")
    else:
        bt = active.get("backtest") or {}
        metrics = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in bt.items() if v is not None)
        lines.append(f"active model:         {active['id']} (since {active['activated_at']})")
        lines.append(f"                      {metrics or 'no backtest metrics recorded'}")
    lines.append(f"pending approvals:    {len(pending) or 'none'}")
    for entry in pending:
        sharpe = entry.get("sharpe")
        shown = f"{sharpe:.4g}" if isinstance(sharpe, float) else "n/a"
        lines.append(f"  {entry['id']}  sharpe={shown}  (--approve / --reject this id)")
    return lines


RECENT_VERDICTS = 5
"""How many verdicts ``--status`` and the console show, newest first."""


def recent_verdicts(loaded: LoadedConfig, limit: int = RECENT_VERDICTS) -> list[dict[str, Any]]:
    """The newest ``limit`` manifest entries with every stage (read-only), newest first."""
    manifest = PromotionStore(loaded.state_dir, None).load_manifest()
    out = []
    for entry in reversed(manifest[-limit:]):
        out.append({
            "id": entry.id, "model_id": entry.model_id, "time": entry.time,
            "status": entry.status, "reasons": list(entry.reasons),
            "stages": [
                {"stage": s.stage, "name": s.name, "status": s.status, "value": s.value,
                 "threshold": s.threshold, "reason": s.reason}
                for s in entry.stages
            ],
        })
    return out


def _first_failed(verdict: dict[str, Any]) -> str:
    for stage in verdict["stages"]:
        if stage.get("status") == "failed":
            value = stage.get("value")
            shown = f"{value:.2f}" if isinstance(value, (int, float)) else "not measured"
            return (f"stage {stage.get('stage')} ({stage.get('name')}): {shown}, "
                    f"needs {stage.get('threshold')}")
    reasons = verdict.get("reasons") or []
    return str(reasons[0]) if reasons else "no failed stage recorded"


def active_model_why(active: dict[str, Any] | None, verdicts: list[dict[str, Any]]) -> str:
    """One line saying why the active model is what it is (or why there is none)."""
    last = verdicts[0] if verdicts else None
    if active is None:
        if last is None:
            return "no active model: no candidate has been judged yet"
        if last["status"] == "rejected":
            return (f"no active model: last candidate {last['model_id']} rejected at "
                    f"{_first_failed(last)}")
        if last["status"] == "pending":
            return (f"no active model: candidate {last['model_id']} passed the gate and waits "
                    f"for --approve {last['id']}")
        return (f"no active model: last verdict {last['id']} is {last['status']} "
                f"({', '.join(map(str, last['reasons'])) or 'no reason recorded'})")
    passed = next((v for v in verdicts if v["model_id"] == active["id"]), None)
    since = f"active since {active.get('activated_at')}"
    if passed is None:
        return f"{active['id']} {since} (its verdict is older than the last {len(verdicts)})"
    n = sum(1 for s in passed["stages"] if s.get("status") == "passed")
    newer = verdicts[: verdicts.index(passed)]
    tail = (f"; newer candidate {newer[0]['model_id']} {newer[0]['status']}"
            + (f" at {_first_failed(newer[0])}" if newer[0]["status"] == "rejected" else "")
            if newer else "")
    return f"{active['id']} {since}: {passed['status']}, passed {n} stages{tail}"
