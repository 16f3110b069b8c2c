"""Model artifacts on disk: sha256-verified, immutable per id, with an explicit active pointer.

Layout under ``root`` (the ``models/`` folder)::

    <id>/model.joblib           the pickled TrainedModel or StrategyModel (core/strategy/artifact)
    <id>/model.joblib.sig       its HMAC-SHA256 under the out-of-tree key (``store/signing.py``)
    <id>/metadata.json          ModelRecord: id, sha256 of model.joblib, created_at, metrics, ...
    active/model.json           the active model's ModelRecord, or a NoActiveModel saying why
                                none is (the runbook reads this path; it always exists)
    active/history.json         every activation, oldest first (for rollback)

Saving never moves the pointer (T7): :meth:`ModelStore.save` writes exactly the path it is given,
:meth:`ModelStore.put` writes ``<id>/``, and only :meth:`ModelStore.activate` touches ``active/``.
Every artifact's hash AND keyed signature are checked before it is unpickled or activated, so a
truncated, tampered or planted file (hashes rewritten included) raises :class:`ModelIntegrityError`
instead of running, and the pointer stays where it was.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from aistock_actors.errors import ModelIntegrityError, StateError
from aistock_actors.runtime.clock import SYSTEM_CLOCK
from aistock_actors.store.alerts import AlertSink
from aistock_actors.store.atomic import (
    atomic_write_bytes,
    atomic_write_json,
    backup_path,
)
from aistock_actors.store.signing import (
    IntegrityKey,
    dump_bytes,
    load_signed,
    signature_path,
    verified_bytes,
)
from aistock_actors.store.state_file import load_state

if TYPE_CHECKING:  # scikit-learn and joblib load only when a model is (de)serialised
    from aistock_actors.core.model.models import TrainedModel
    from aistock_actors.core.strategy.artifact import StrategyModel

    Artifact = TrainedModel | StrategyModel

log = logging.getLogger(__name__)

ARTIFACT_NAME = "model.joblib"
METADATA_NAME = "metadata.json"
ACTIVE_DIR = "active"
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class ModelRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What is known about one stored model (``metadata.json``; also ``active/model.json``)."""

    model_id: str = msgspec.field(name="id")
    sha256: str
    """Hex sha256 of ``model.joblib``; checked before every load and activation."""
    created_at: datetime
    metrics: dict[str, float]
    """The model's training metrics, plus any metrics passed to :meth:`ModelStore.put`."""
    threshold: float
    """The model's own meta-label confidence threshold (T6)."""
    feature_names: list[str]
    horizon: int
    extra: dict[str, Any] = {}
    """Further caller metadata, stored verbatim."""
    activated_at: datetime | None = None
    """Set in ``active/model.json`` and the history only."""


class NoActiveModel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``active/model.json`` while no model is active: it says so, since when and why (the
    runbook's ``cat models/active/model.json`` always finds the file)."""

    active: bool = False
    reason: str
    since: datetime
    previous_model_id: str | None = None
    """The model that was active before (None on a fresh install)."""


def says_no_model(path: Path) -> bool:
    """Whether the pointer file at ``path`` is a :class:`NoActiveModel` document."""
    try:
        msgspec.json.decode(path.read_bytes(), type=NoActiveModel)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return False
    return True


class Activation(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of ``active/history.json``."""

    model_id: str = msgspec.field(name="id")
    sha256: str
    activated_at: datetime


class ActivationHistory(msgspec.Struct, kw_only=True):
    """Every activation, oldest first."""

    activations: list[Activation] = msgspec.field(default_factory=list)


def sha256_hex(data: bytes) -> str:
    """Return the hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _check_id(model_id: str) -> str:
    if not ID_PATTERN.fullmatch(model_id) or model_id == ACTIVE_DIR:
        raise ValueError(f"invalid model id {model_id!r}: use [A-Za-z0-9._-], not 'active'")
    return model_id


def _purpose(model_id: str) -> str:
    return f"model:{model_id}"


def _no_pointer() -> ModelRecord:
    raise StateError("active model pointer and its backup are both unreadable")


class ModelStore:
    """Stores, verifies, loads and activates model artifacts under one ``models/`` folder."""

    def __init__(
        self, root: Path, alerts: AlertSink | None = None, key: IntegrityKey | None = None
    ) -> None:
        self.root = Path(root)
        self._alerts = alerts
        self.key = key if key is not None else IntegrityKey.beside(self.root)

    def model_dir(self, model_id: str) -> Path:
        """Return ``root/<id>`` (after validating the id)."""
        return self.root / _check_id(model_id)

    def artifact_path(self, model_id: str) -> Path:
        """Return the path of a model's ``model.joblib``."""
        return self.model_dir(model_id) / ARTIFACT_NAME

    @property
    def pointer_path(self) -> Path:
        """``models/active/model.json``: the operator-visible active pointer."""
        return self.root / ACTIVE_DIR / "model.json"

    @property
    def history_path(self) -> Path:
        """``models/active/history.json``: activations, oldest first."""
        return self.root / ACTIVE_DIR / "history.json"

    def save(self, model: Artifact, path: Path) -> str:
        """Atomically write ``model`` (and its signature) to ``path``; return its sha256.

        Writes nothing else (T7).
        """
        data = dump_bytes(model)
        self._write_signed(Path(path), model.model_id, data)
        return sha256_hex(data)

    def _write_signed(self, path: Path, model_id: str, data: bytes) -> None:
        atomic_write_bytes(path, data, keep_backup=False)
        self.write_signature(path, model_id, data)

    def write_signature(self, path: Path, model_id: str, data: bytes) -> None:
        """Write ``<path>.sig``: this key's HMAC of ``data`` as model ``model_id``'s artifact."""
        signature = self.key.sign(_purpose(model_id), data).encode()
        atomic_write_bytes(signature_path(path), signature, keep_backup=False)

    def put(self, model: Artifact, metadata: Mapping[str, Any] | None = None) -> ModelRecord:
        """Store ``model`` as ``<id>/model.joblib`` + ``<id>/metadata.json``; never activates it.

        ``metadata`` is stored under ``extra``, except a ``"metrics"`` mapping in it, which is
        merged over the model's own metrics. A stored id is immutable: putting the same bytes
        again returns the existing record (repairing a damaged artifact), different bytes raise
        :class:`StateError`.
        """
        extra = dict(metadata or {})
        metrics = dict(model.metrics)
        metrics.update({str(k): float(v) for k, v in dict(extra.pop("metrics", {})).items()})
        data = dump_bytes(model)
        digest = sha256_hex(data)
        meta_path = self.model_dir(model.model_id) / METADATA_NAME
        if meta_path.exists():
            existing = self.record(model.model_id)
            if existing.sha256 != digest:
                raise StateError(f"model {model.model_id!r} is already stored with other content")
            try:
                self.verify(model.model_id)
            except ModelIntegrityError:
                self._write_signed(self.artifact_path(model.model_id), model.model_id, data)
            return existing
        record = ModelRecord(
            model_id=model.model_id,
            sha256=digest,
            created_at=model.created_at,
            metrics=metrics,
            threshold=model.confidence_threshold,
            feature_names=list(model.feature_names),
            horizon=model.horizon,
            extra=extra,
        )
        self._write_signed(self.artifact_path(model.model_id), model.model_id, data)
        atomic_write_json(meta_path, record, keep_backup=False)
        log.info("stored model %s (sha256 %s), not activated", model.model_id, digest)
        return record

    def record(self, model_id: str) -> ModelRecord:
        """Return a stored model's record; :class:`StateError` if it is missing or unreadable."""
        path = self.model_dir(model_id) / METADATA_NAME
        try:
            return msgspec.json.decode(path.read_bytes(), type=ModelRecord)
        except FileNotFoundError as exc:
            raise StateError(f"no stored model {model_id!r} ({path} missing)") from exc
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise StateError(f"unreadable model metadata {path}: {exc}") from exc

    def _verified_bytes(self, path: Path, model_id: str, expected: str) -> bytes:
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise ModelIntegrityError(f"{path}: artifact missing (expected {expected})") from exc
        actual = sha256_hex(data)
        if actual != expected:
            raise ModelIntegrityError(
                f"{path}: sha256 {actual} does not match the recorded sha256 {expected}"
            )
        # The recorded hash is unkeyed (an attacker can rewrite it): the HMAC is what counts.
        return verified_bytes(path, self.key, _purpose(model_id))

    def verify(self, model_id: str) -> ModelRecord:
        """Check ``model.joblib``'s signature and recorded hash; :class:`ModelIntegrityError`."""
        record = self.record(model_id)
        self._verified_bytes(self.artifact_path(model_id), model_id, record.sha256)
        return record

    def _load_verified(self, model_id: str, expected: str) -> Artifact:
        path = self.artifact_path(model_id)
        self._verified_bytes(path, model_id, expected)  # raises before anything is unpickled
        from aistock_actors.core.model.models import TrainedModel
        from aistock_actors.core.strategy.artifact import StrategyModel

        model: object = load_signed(path, self.key, _purpose(model_id), object)
        if not isinstance(model, TrainedModel | StrategyModel) or model.model_id != model_id:
            raise ModelIntegrityError(f"{path}: does not hold model artifact {model_id!r}")
        return model

    def load(self, model_id: str) -> Artifact:
        """Verify the artifact's sha256, then unpickle; :class:`ModelIntegrityError` on mismatch."""
        return self._load_verified(model_id, self.record(model_id).sha256)

    def active_record(self) -> ModelRecord | None:
        """Return the active pointer's record, or ``None`` if no model was ever activated.

        A corrupt pointer is recovered from its ``.bak`` (with an alert); if both are unreadable
        :class:`StateError` is raised rather than pretending no model is active.
        """
        path = self.pointer_path
        if not path.exists() and not backup_path(path).exists():
            return None
        if says_no_model(path):
            return None
        return load_state(path, ModelRecord, _no_pointer, self._alerts, actor="model_store")

    def write_no_model(self, reason: str, previous_model_id: str | None = None) -> None:
        """Make ``active/model.json`` say that no model is active (its ``.bak`` is removed, else
        a damaged pointer would be recovered to the model that just left)."""
        pointer = self.pointer_path
        pointer.parent.mkdir(parents=True, exist_ok=True)
        doc = NoActiveModel(reason=reason, since=SYSTEM_CLOCK.now(),
                            previous_model_id=previous_model_id)
        atomic_write_json(pointer, doc, keep_backup=False)
        backup_path(pointer).unlink(missing_ok=True)

    def ensure_pointer(self) -> None:
        """Write the no-model pointer when there is no pointer at all (a fresh install).

        Best effort: a disk refusing the write is logged, and the next start tries again (no
        pointer and the no-model pointer mean the same to every reader)."""
        if not self.pointer_path.exists() and not backup_path(self.pointer_path).exists():
            try:
                self.write_no_model("no model has been promoted yet")
            except OSError as exc:
                log.warning("cannot write the no-model pointer %s: %s", self.pointer_path, exc)

    def load_active(self) -> tuple[ModelRecord, Artifact] | None:
        """Return the active record and its verified model, or ``None`` if none is active."""
        record = self.active_record()
        if record is None:
            return None
        return record, self._load_verified(record.model_id, record.sha256)

    def _history(self) -> ActivationHistory:
        return load_state(
            self.history_path,
            ActivationHistory,
            ActivationHistory,
            self._alerts,
            actor="model_store",
        )

    def activate(
        self,
        model_id: str,
        *,
        expected_sha256: str | None = None,
        activated_at: datetime | None = None,
    ) -> ModelRecord:
        """Point ``active/model.json`` at a stored, hash-verified model and log it in the history.

        Raises :class:`ModelIntegrityError` (and leaves the pointer alone) if the artifact does not
        match its record or ``expected_sha256``.
        """
        record = self.verify(model_id)
        if expected_sha256 is not None and expected_sha256 != record.sha256:
            raise ModelIntegrityError(
                f"{self.artifact_path(model_id)}: sha256 {record.sha256} "
                f"does not match the expected sha256 {expected_sha256}"
            )
        try:
            previous = self.active_record()
        except StateError:
            previous = None
        active = msgspec.structs.replace(record, activated_at=activated_at or SYSTEM_CLOCK.now())
        # Pointer first, history second: a crash in between loses at most one history entry,
        # which the next activation re-adds from the pointer it replaces.
        atomic_write_json(self.pointer_path, active)
        self._append_history(previous, active)
        log.info("activated model %s (sha256 %s)", model_id, record.sha256)
        return active

    def _append_history(self, previous: ModelRecord | None, active: ModelRecord) -> None:
        entries = list(self._history().activations)
        for rec in (previous, active):
            if rec is None or (entries and entries[-1].model_id == rec.model_id):
                continue
            stamp = rec.activated_at or rec.created_at
            entries.append(Activation(model_id=rec.model_id, sha256=rec.sha256, activated_at=stamp))
        atomic_write_json(self.history_path, ActivationHistory(activations=entries))

    def previous_active(self, n: int = 1) -> list[ModelRecord]:
        """Return up to ``n`` earlier active models, most recent first (rollback candidates).

        Distinct ids before the current model's last activation; models whose metadata is gone
        are skipped.
        """
        current = self.active_record()
        ids = [entry.model_id for entry in self._history().activations]
        if current is not None and current.model_id in ids:
            ids = ids[: len(ids) - 1 - ids[::-1].index(current.model_id)]
        found: list[ModelRecord] = []
        for model_id in reversed(ids):
            if len(found) >= n:
                break
            if (current is not None and model_id == current.model_id) or any(
                r.model_id == model_id for r in found
            ):
                continue
            try:
                found.append(self.record(model_id))
            except StateError:
                log.warning("previous active model %s has no readable metadata", model_id)
        return found

    def list_models(self) -> list[ModelRecord]:
        """Return every stored model with readable metadata, oldest first."""
        records: list[ModelRecord] = []
        if not self.root.is_dir():
            return records
        for child in sorted(self.root.iterdir()):
            if child.name == ACTIVE_DIR or not (child / METADATA_NAME).is_file():
                continue
            try:
                records.append(self.record(child.name))
            except (StateError, ValueError) as exc:
                log.warning("skipping unreadable model folder %s: %s", child, exc)
        return sorted(records, key=lambda r: (r.created_at, r.model_id))


# --- the cadence's reference and the folder's hygiene (added functions; see services/) --------


