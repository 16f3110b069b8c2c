"""The promotion manifest's records: one typed entry per verdict and its status changes.

Entries are frozen msgspec Structs (:class:`ManifestEntry`) whose JSON is the file format of
``state/promotion/manifest.json`` (unchanged: the runbook's ``jq`` lines read it); a change is a
new entry (``msgspec.structs.replace``). Pure list transformations (the caller persists the
result); split from :mod:`aistock_actors.core.promotion.gate`, which decides the verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from aistock_actors.errors import StateError

if TYPE_CHECKING:
    from aistock_actors.core.promotion.gate import PromotionDecision, StageResult

Action = Literal["promote", "pending", "record_only", "reject", "hold"]
"""What the autopilot does with a verdict (``gate.decide_action``)."""
ManifestStatus = Literal["approved", "rejected", "pending", "rolled_back", "recorded", "held"]
StageStatus = Literal["passed", "failed", "skipped"]
AWAITING_OPERATOR: frozenset[str] = frozenset({"pending", "held"})
"""Statuses an operator's ``--approve`` / ``--reject`` can decide."""

MetricValue = bool | int | float | str | None | list[Any] | dict[str, Any]
"""One free-form metric of an entry's ``backtest``/``training``/``rollback`` record: a scalar
(a list only in an interim version's inline ``backtest.equity_curve``; a nested object for a
message field that is one, so a new field of ``BacktestCompleted``/``ModelTrained`` is kept)."""
Metrics = dict[str, MetricValue]


class ManifestStage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One gate stage as a manifest entry records it."""

    stage: int
    name: str
    value: float | None
    """``null`` for a non-finite or unmeasured value (``note`` says why)."""
    threshold: int | float | str
    passed: bool | None
    status: StageStatus
    reason: str | None
    note: str | None


class ManifestEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One verdict in ``state/promotion/manifest.json`` (and its archive files).

    The first eight fields are written for every verdict; the judge adds the candidate's
    ``cycle_id`` ... ``training``; ``decided_at`` appears once an operator decides or a rollback
    marks it, ``rollback`` once a degradation rollback is recorded. An absent key stays absent
    (``UNSET``), so a file re-saves with exactly the keys it held. An unknown key is an error
    (never silently dropped).
    """

    id: str
    model_id: str
    time: str
    status: ManifestStatus
    approved_by_gate: bool
    stages_enabled: int
    stages: list[ManifestStage]
    reasons: list[str]
    cycle_id: str | UnsetType = UNSET
    sha256: str | UnsetType | None = UNSET
    mode: str | UnsetType = UNSET
    action: Action | UnsetType = UNSET
    strategy_id: str | UnsetType = UNSET
    backtest: Metrics | UnsetType = UNSET
    """The candidate's backtest metrics (never its equity curve: ``promotion/curves/``)."""
    training: Metrics | UnsetType = UNSET
    decided_at: str | UnsetType = UNSET
    rollback: Metrics | UnsetType = UNSET
    """The ``auto_rollback_on_degradation`` audit details of a rolled-back entry."""

    def metrics(self) -> Metrics:
        """The ``backtest`` metrics, ``{}`` when none were recorded."""
        return self.backtest if isinstance(self.backtest, dict) else {}

    def number(self, key: str) -> float | None:
        """The ``backtest`` metric ``key`` as a finite number, else ``None`` (missing, ``null``,
        text, a flag)."""
        value = self.metrics().get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value) if math.isfinite(value) else None


Manifest = list[ManifestEntry]
"""``manifest.json`` and every archive file: entries oldest first."""


class ManifestFormatError(StateError):
    """A manifest file whose entry does not have the manifest's shape (names file and entry)."""


def decode_manifest(raw: bytes, source: str) -> Manifest:
    """Decode a manifest or archive file's bytes; :class:`ManifestFormatError` names ``source``
    and the index (and id, when readable) of the first entry that is not a manifest entry."""
    try:
        items = msgspec.json.decode(raw, type=list[msgspec.Raw])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ManifestFormatError(f"{source}: not a JSON array of entries: {exc}") from None
    entries = []
    for index, item in enumerate(items):
        try:
            entries.append(msgspec.json.decode(item, type=ManifestEntry))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ManifestFormatError(
                f"{source}: entry {index}{_id_of(item)} is not a manifest entry: {exc}"
            ) from None
    return entries


def _id_of(item: msgspec.Raw) -> str:
    try:
        found = msgspec.json.decode(item, type=dict[str, Any]).get("id")
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ""
    return f" (id {found!r})" if isinstance(found, str) else ""


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


def _stage(stage: StageResult) -> ManifestStage:
    return ManifestStage(
        stage=stage.stage,
        name=stage.name,
        value=_json_float(stage.value),
        threshold=stage.threshold,
        passed=stage.passed,
        status=stage.status,
        reason=stage.reason,
        note=stage.note,
    )


_STANDARD_FIELDS = frozenset(
    {"id", "model_id", "time", "status", "approved_by_gate", "stages_enabled", "stages", "reasons"}
)


def manifest_entry(
    decision: PromotionDecision,
    status: ManifestStatus,
    timestamp: str | datetime,
    *,
    entry_id: str | None = None,
    extra: Mapping[str, object] | None = None,
) -> ManifestEntry:
    """Build one manifest record of ``decision``.

    ``id`` defaults to ``<model_id>@<time>``, which is what an operator passes to ``--approve``.
    Non-finite stage values are written as ``null`` (the stage's ``note`` says why). ``extra``
    sets the optional fields (``cycle_id``, ``backtest`` ...); it may not overwrite a standard
    field, and a key that is no :class:`ManifestEntry` field or a value of the wrong type is a
    ``ValueError``.
    """
    if status not in _MANIFEST_STATUSES:
        raise ValueError(f"unknown manifest status {status!r}")
    time = utc_iso(timestamp)
    entry = ManifestEntry(
        id=entry_id or f"{decision.model_id}@{time}",
        model_id=decision.model_id,
        time=time,
        status=status,
        approved_by_gate=decision.approved,
        stages_enabled=decision.stages_enabled,
        stages=[_stage(s) for s in decision.stages],
        reasons=list(decision.reasons),
    )
    if not extra:
        return entry
    for key in extra:
        if key in _STANDARD_FIELDS:
            raise ValueError(f"extra key {key!r} would overwrite a standard manifest field")
    try:
        return msgspec.convert({**msgspec.to_builtins(entry), **extra}, ManifestEntry)
    except msgspec.ValidationError as exc:
        raise ValueError(f"manifest entry of {decision.model_id}: {exc}") from None


def _find_unique(manifest: Sequence[ManifestEntry], entry_id: str) -> int:
    matches = [i for i, entry in enumerate(manifest) if entry.id == entry_id]
    if not matches:
        raise ValueError(f"no manifest entry with id {entry_id!r}")
    if len(matches) > 1:
        raise ValueError(f"{len(matches)} manifest entries share id {entry_id!r}; refusing")
    return matches[0]


def _transition(
    manifest: Manifest,
    entry_id: str,
    required: frozenset[str],
    new_status: ManifestStatus,
    timestamp: str | datetime,
    verb: str,
    rule: str,
) -> Manifest:
    index = _find_unique(manifest, entry_id)
    current = manifest[index].status
    if current not in required:
        raise ValueError(
            f"cannot {verb} manifest entry {entry_id!r}: its status is {current!r}; {rule}"
        )
    updated = msgspec.structs.replace(
        manifest[index], status=new_status, decided_at=utc_iso(timestamp)
    )
    return [*manifest[:index], updated, *manifest[index + 1 :]]


def apply_operator_decision(
    manifest: Manifest, entry_id: str, approve: bool, timestamp: str | datetime
) -> Manifest:
    """Return a new manifest with entry ``entry_id`` approved or rejected by an operator.

    Only an entry awaiting an operator can be decided: ``pending``, or ``held`` (a candidate the
    gate held as ``leak_suspected``, which an operator may still approve after review). Raises
    ``ValueError`` if the id is unknown, ambiguous, or the entry is neither. The input list is
    not modified.
    """
    verb = "approve" if approve else "reject"
    new_status: ManifestStatus = "approved" if approve else "rejected"
    rule = "only a pending or held entry can be approved or rejected"
    return _transition(manifest, entry_id, AWAITING_OPERATOR, new_status, timestamp, verb, rule)


def mark_rolled_back(manifest: Manifest, entry_id: str, timestamp: str | datetime) -> Manifest:
    """Return a new manifest with approved entry ``entry_id`` marked ``rolled_back``."""
    rule = "only an approved entry can be rolled back"
    return _transition(
        manifest, entry_id, frozenset({"approved"}), "rolled_back", timestamp, "roll back", rule
    )


def with_status(entry: ManifestEntry, status: ManifestStatus, reason: str) -> ManifestEntry:
    """``entry`` with a new status and ``reason`` added to its reasons."""
    return msgspec.structs.replace(entry, status=status, reasons=[*entry.reasons, reason])


def replace_entry(manifest: Manifest, updated: ManifestEntry) -> None:
    """Put ``updated`` in place of every entry of ``manifest`` with its id (the list is
    changed; the entries themselves never are)."""
    for index, entry in enumerate(manifest):
        if entry.id == updated.id:
            manifest[index] = updated


def pending_entries(manifest: Sequence[ManifestEntry]) -> Manifest:
    """The entries awaiting an operator's ``--approve``/``--reject`` (``pending`` and ``held``),
    oldest first."""
    return [entry for entry in manifest if entry.status in AWAITING_OPERATOR]
