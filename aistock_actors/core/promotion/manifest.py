"""The promotion manifest's records: one JSON-ready entry per verdict and its status changes.

Pure list transformations (the caller persists the result); split from
:mod:`aistock_actors.core.promotion.gate`, which decides the verdicts.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from aistock_actors.core.promotion.gate import PromotionDecision, StageResult

Action = Literal["promote", "pending", "record_only", "reject", "hold"]
"""What the autopilot does with a verdict (``gate.decide_action``)."""
ManifestStatus = Literal["approved", "rejected", "pending", "rolled_back", "recorded", "held"]
AWAITING_OPERATOR: frozenset[str] = frozenset({"pending", "held"})
"""Statuses an operator's ``--approve`` / ``--reject`` can decide."""


_STATUS_FOR_ACTION: dict[Action, ManifestStatus] = {
    "promote": "approved",
    "pending": "pending",
    "hold": "held",
    "record_only": "recorded",
    "reject": "rejected",
}


_MANIFEST_STATUSES: frozenset[str] = frozenset(_STATUS_FOR_ACTION.values()) | {"rolled_back"}


def status_for_action(action: Action) -> ManifestStatus:
    """The manifest status that records ``action`` (``promote`` -> ``approved`` ...)."""
    return _STATUS_FOR_ACTION[action]


def utc_iso(timestamp: str | datetime) -> str:
    """Normalise an aware datetime or ISO-8601 string to ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``."""
    if isinstance(timestamp, str):
        try:
            moment = datetime.fromisoformat(timestamp)
        except ValueError as exc:
            raise ValueError(f"timestamp {timestamp!r} is not ISO-8601") from exc
    else:
        moment = timestamp
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"timestamp {timestamp!r} has no timezone; UTC is required")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json_float(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def _stage_json(stage: StageResult) -> dict[str, object]:
    return {
        "stage": stage.stage,
        "name": stage.name,
        "value": _json_float(stage.value),
        "threshold": stage.threshold,
        "passed": stage.passed,
        "status": stage.status,
        "reason": stage.reason,
        "note": stage.note,
    }


def manifest_entry(
    decision: PromotionDecision,
    status: ManifestStatus,
    timestamp: str | datetime,
    *,
    entry_id: str | None = None,
    extra: dict[str, object] | None = None,
) -> dict[str, object]:
    """Build one JSON-ready manifest record of ``decision``.

    ``id`` defaults to ``<model_id>@<time>``, which is what an operator passes to ``--approve``.
    Non-finite stage values are written as ``null`` (the stage's ``note`` says why). ``extra``
    keys are added last but may not overwrite the standard keys.
    """
    if status not in _MANIFEST_STATUSES:
        raise ValueError(f"unknown manifest status {status!r}")
    time = utc_iso(timestamp)
    entry: dict[str, object] = {
        "id": entry_id or f"{decision.model_id}@{time}",
        "model_id": decision.model_id,
        "time": time,
        "status": status,
        "approved_by_gate": decision.approved,
        "stages_enabled": decision.stages_enabled,
        "stages": [_stage_json(s) for s in decision.stages],
        "reasons": list(decision.reasons),
    }
    for key, value in (extra or {}).items():
        if key in entry:
            raise ValueError(f"extra key {key!r} would overwrite a standard manifest field")
        entry[key] = value
    return entry


def _find_unique(manifest: list[dict[str, object]], entry_id: str) -> int:
    matches = [i for i, entry in enumerate(manifest) if entry.get("id") == entry_id]
    if not matches:
        raise ValueError(f"no manifest entry with id {entry_id!r}")
    if len(matches) > 1:
        raise ValueError(f"{len(matches)} manifest entries share id {entry_id!r}; refusing")
    return matches[0]


def _transition(
    manifest: list[dict[str, object]],
    entry_id: str,
    required: frozenset[str],
    new_status: ManifestStatus,
    timestamp: str | datetime,
    verb: str,
    rule: str,
) -> list[dict[str, object]]:
    index = _find_unique(manifest, entry_id)
    current = manifest[index].get("status")
    if current not in required:
        raise ValueError(
            f"cannot {verb} manifest entry {entry_id!r}: its status is {current!r}; {rule}"
        )
    updated = dict(manifest[index])
    updated["status"] = new_status
    updated["decided_at"] = utc_iso(timestamp)
    return [*manifest[:index], updated, *manifest[index + 1 :]]


def apply_operator_decision(
    manifest: list[dict[str, object]], entry_id: str, approve: bool, timestamp: str | datetime
) -> list[dict[str, object]]:
    """Return a new manifest with entry ``entry_id`` approved or rejected by an operator.

    Only an entry awaiting an operator can be decided: ``pending``, or ``held`` (a candidate the
    gate held as ``leak_suspected``, which an operator may still approve after review). Raises
    ``ValueError`` if the id is unknown, ambiguous, or the entry is neither. The input list and
    its dicts are not modified.
    """
    verb = "approve" if approve else "reject"
    new_status: ManifestStatus = "approved" if approve else "rejected"
    rule = "only a pending or held entry can be approved or rejected"
    return _transition(manifest, entry_id, AWAITING_OPERATOR, new_status, timestamp, verb, rule)


def mark_rolled_back(
    manifest: list[dict[str, object]], entry_id: str, timestamp: str | datetime
) -> list[dict[str, object]]:
    """Return a new manifest with approved entry ``entry_id`` marked ``rolled_back``."""
    rule = "only an approved entry can be rolled back"
    return _transition(
        manifest, entry_id, frozenset({"approved"}), "rolled_back", timestamp, "roll back", rule
    )


def pending_entries(manifest: list[dict[str, object]]) -> list[dict[str, object]]:
    """The entries awaiting an operator's ``--approve``/``--reject`` (``pending`` and ``held``),
    oldest first."""
    return [entry for entry in manifest if entry.get("status") in AWAITING_OPERATOR]
