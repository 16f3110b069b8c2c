"""Reading and marking promotion-manifest entries for the active-model keeper: which approval's
pointer move was interrupted, and how an entry's status changes (with its reason)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aistock_actors.store.promotion import Manifest, RegistryFile


def _approved_at(entry: dict[str, Any]) -> datetime:
    """When an entry was approved: the operator's ``decided_at``, else the verdict's ``time``."""
    stamp = entry.get("decided_at") or entry.get("time")
    try:
        moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def interrupted_promotion(
    manifest: Manifest, registry: RegistryFile, active_model_id: str | None
) -> dict[str, Any] | None:
    """The ``approved`` entry whose pointer move was interrupted, or ``None``.

    That is the most recently approved entry (operator approvals count from their decision)
    when its model is not the active one and was neither retired nor rolled back. Only the most
    recent approval is considered: an older one was superseded, and a model that left the
    pointer (rollback, retirement) is in ``registry.excluded()``.
    """
    approved = [(i, e) for i, e in enumerate(manifest) if e.get("status") == "approved"]
    if not approved:
        return None
    _, entry = max(approved, key=lambda pair: (_approved_at(pair[1]), pair[0]))
    model_id = entry.get("model_id")
    if not isinstance(model_id, str) or model_id == active_model_id:
        return None
    if model_id in registry.excluded():
        return None
    return entry


def mark_entry(entry: dict[str, Any], status: str, reason: str) -> None:
    """Change a manifest entry's status and add the reason ."""
    entry["status"] = status
    entry["reasons"] = [*entry.get("reasons", []), reason]
