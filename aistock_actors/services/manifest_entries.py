"""Reading and marking promotion-manifest entries for the active-model keeper: which approval's
pointer move was interrupted, and how an entry's status changes (with its reason)."""

from __future__ import annotations

from datetime import UTC, datetime

from aistock_actors.core.promotion.manifest import (
    Manifest,
    ManifestEntry,
    ManifestStatus,
    replace_entry,
    with_status,
)
from aistock_actors.store.promotion import RegistryFile


def _approved_at(entry: ManifestEntry) -> datetime:
    """When an entry was approved: the operator's ``decided_at``, else the verdict's ``time``."""
    stamp = entry.decided_at if isinstance(entry.decided_at, str) and entry.decided_at else (
        entry.time)
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def interrupted_promotion(
    manifest: Manifest, registry: RegistryFile, active_model_id: str | None
) -> ManifestEntry | None:
    """The ``approved`` entry whose pointer move was interrupted, or ``None``.

    That is the most recently approved entry (operator approvals count from their decision)
    when its model is not the active one and was neither retired nor rolled back. Only the most
    recent approval is considered: an older one was superseded, and a model that left the
    pointer (rollback, retirement) is in ``registry.excluded()``.
    """
    approved = [(i, e) for i, e in enumerate(manifest) if e.status == "approved"]
    if not approved:
        return None
    _, entry = max(approved, key=lambda pair: (_approved_at(pair[1]), pair[0]))
    if entry.model_id == active_model_id or entry.model_id in registry.excluded():
        return None
    return entry


def mark_entry(
    manifest: Manifest, entry: ManifestEntry, status: ManifestStatus, reason: str
) -> ManifestEntry:
    """Give ``entry`` (in ``manifest``) a new status and add the reason; the list holds the new
    entry afterwards, which is returned."""
    updated = with_status(entry, status, reason)
    replace_entry(manifest, updated)
    return updated
