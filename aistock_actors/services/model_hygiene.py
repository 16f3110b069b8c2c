"""The ``models`` folder stays bounded: old rejected candidates are pruned, orphans removed.

The rules (what is always kept) are :mod:`aistock_actors.core.promotion.retention`. Two moments
apply them, each audited:

- :func:`prune_rejected`, by the Trainer before it stores a new candidate: rejected (or never
  judged: their backtest failed) candidates beyond the newest ``models.keep_rejected``
  (``models_pruned``);
- :func:`remove_orphans`, at start-up before any actor runs: folders no verdict names, left by a
  cycle a crash, a stop or a halt interrupted between its train and judge steps
  (``orphan_model_removed``), and deletions a crash cut short.

Nothing is deleted when the manifest or the active pointer cannot be read: a model is removed
only when the files prove nobody needs it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from aistock_actors.core.promotion.manifest import Manifest, decode_manifest
from aistock_actors.core.promotion.retention import models_to_prune, orphans
from aistock_actors.errors import StateError
from aistock_actors.store.atomic import backup_path
from aistock_actors.store.audit import AuditLog
from aistock_actors.store.model_folders import (
    activated_ids,
    newest_candidate,
    remove_model,
    stored_ids,
    sweep_removals,
    unreadable_ids,
)
from aistock_actors.store.models import ModelStore
from aistock_actors.store.state import SupervisorState

log = logging.getLogger(__name__)

MODELS_PRUNED = "models_pruned"
"""Audit action: old rejected candidates deleted (``removed``, ``keep_rejected``)."""
ORPHAN_MODEL_REMOVED = "orphan_model_removed"
"""Audit action: a model folder no verdict names, removed at start-up."""


def read_manifest(state_dir: Path) -> Manifest | None:
    """The manifest (or its ``.bak``); ``[]`` when there is none yet, None when it exists but
    neither copy can be read (then nothing may be deleted)."""
    path = Path(state_dir) / "promotion" / "manifest.json"
    for candidate in (path, backup_path(path)):
        try:
            return decode_manifest(candidate.read_bytes(), str(candidate))
        except (OSError, StateError):  # missing, unreadable or not a manifest: the next copy
            continue
    return None if path.exists() or backup_path(path).exists() else []


def _active_id(models: ModelStore) -> tuple[bool, str | None]:
    """(readable, active model id)."""
    try:
        record = models.active_record()
    except StateError:
        return False, None
    return True, record.model_id if record is not None else None


def prune_rejected(
    models: ModelStore, state_dir: Path, keep_rejected: int, audit: AuditLog, actor: str
) -> list[str]:
    """Delete judged, never-approved candidates beyond the newest ``keep_rejected``; audit them."""
    manifest = read_manifest(state_dir)
    readable, active = _active_id(models)
    if manifest is None or not readable:
        log.warning("models not pruned: the manifest or the active pointer is unreadable")
        return []
    newest = newest_candidate(models)
    doomed = models_to_prune(
        stored_ids(models),
        manifest,
        keep_rejected=keep_rejected,
        active=active,
        activated=activated_ids(models),
        newest=newest[0].model_id if newest is not None else None,
    )
    removed = []
    for model_id in doomed:
        try:
            if remove_model(models, model_id):
                removed.append(model_id)
        except OSError as exc:  # a folder that cannot be moved stays; the next prune retries
            log.warning("could not prune model %s: %s", model_id, exc)
    if removed:
        audit.append(
            MODELS_PRUNED,
            actor,
            {"removed": removed, "keep_rejected": keep_rejected,
             "reason": "older than the newest keep_rejected rejected candidates"},
        )
        log.info("pruned %d rejected candidate(s): %s", len(removed), ", ".join(removed))
    return removed


def remove_orphans(
    models: ModelStore, state_dir: Path, audit: AuditLog, supervisor: SupervisorState
) -> list[str]:
    """At start-up (no cycle running): remove the model folders of interrupted cycles that no
    verdict names (``supervisor``: the persisted cycle count and last cycle say which cycles
    finished), and finish deletions a crash interrupted; audit each removal."""
    sweep_removals(models)
    manifest = read_manifest(state_dir)
    readable, active = _active_id(models)
    if manifest is None or not readable:
        log.warning("orphan models not checked: the manifest or the active pointer is unreadable")
        return []
    last = supervisor.last_cycle
    found = orphans(
        stored_ids(models),
        manifest,
        active=active,
        activated=activated_ids(models),
        cycles_total=supervisor.cycles_total,
        last_cycle=(last.cycle_id, last.outcome) if last is not None else None,
        unreadable=unreadable_ids(models),
    )
    removed = []
    for model_id in found:
        try:
            gone = remove_model(models, model_id)
        except OSError as exc:
            log.warning("could not remove orphan model %s: %s", model_id, exc)
            continue
        if gone:
            removed.append(model_id)
            audit.append(
                ORPHAN_MODEL_REMOVED,
                "supervisor",
                {"model_id": model_id,
                 "reason": "no verdict names it and its cycle was interrupted (a crash, a stop "
                 "or a halt before the judge step): the cycle run again trains it again"},
            )
            log.warning("removed orphan model folder %s (no verdict names it)", model_id)
    return removed
