"""Promotion state on disk: the manifest, the strategy registry, recorded paper performance.

Files under ``state/``::

    promotion/manifest.json     JSON ARRAY of verdicts, oldest first; each has "id" and "status"
                                (jq '.[] | select(.status=="approved")' works as in the runbook)
    promotion/registry.json     the active strategy and its grace counter (T5), plus the models
                                retired by the registry and rolled back for degradation
    promotion/manifest.lock     flock guarding every read-modify-write of the two files above
                                AND of the active model pointer (the judge and --approve/--reject)
    paper/performance.json      written by paper trading: {"model_id": ..., "returns": [...]}, the
                                per-bar returns of the active model since its promotion

Both promotion files are written atomically with a ``.bak`` and loaded with ``.bak`` recovery.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from aistock_actors.core.registry import RegistryState, StrategyRecord
from aistock_actors.errors import StateError
from aistock_actors.store.alerts import AlertSink
from aistock_actors.store.atomic import atomic_write_json, backup_path, fsync_dir
from aistock_actors.store.models import ModelStore
from aistock_actors.store.state_file import load_state

STRATEGY_ID = "primary"
"""The registry's one strategy slot: the active model."""

LOCK_TIMEOUT_SECONDS = 10.0
"""Longest wait for the promotion lock (every holder keeps it for milliseconds)."""

Manifest = list[dict[str, Any]]


class RegistryFile(msgspec.Struct, kw_only=True):
    """``registry.json``: the registry's strategies plus models that must not come back."""

    strategies: list[StrategyRecord] = msgspec.field(default_factory=list)
    retired_models: list[str] = msgspec.field(default_factory=list)
    """Models removed after the grace period (never chosen as a fallback again)."""
    rolled_back_models: list[str] = msgspec.field(default_factory=list)
    """Models rolled back for degradation (never chosen as a rollback target again)."""

    @property
    def state(self) -> RegistryState:
        """The strategies as the pure registry's state."""
        return RegistryState(strategies=list(self.strategies))

    def excluded(self) -> set[str]:
        """Models never to be activated again automatically."""
        return set(self.retired_models) | set(self.rolled_back_models)


class PaperPerformance(msgspec.Struct, frozen=True, kw_only=True):
    """``state/paper/performance.json``: the active model's paper record since promotion."""

    model_id: str
    returns: list[float]
    """Per-bar simple returns of the paper portfolio, oldest first."""
    since: str | None = None
    """When recording started (ISO-8601), informational."""


class PromotionStore:
    """Reads and writes the promotion files under one state folder."""

    def __init__(self, state_dir: Path, alerts: AlertSink | None) -> None:
        self.state_dir = Path(state_dir)
        self.root = self.state_dir / "promotion"
        self._alerts = alerts

    @property
    def manifest_path(self) -> Path:
        """``state/promotion/manifest.json``."""
        return self.root / "manifest.json"

    @property
    def registry_path(self) -> Path:
        """``state/promotion/registry.json``."""
        return self.root / "registry.json"

    @property
    def performance_path(self) -> Path:
        """``state/paper/performance.json``."""
        return self.state_dir / "paper" / "performance.json"

    @contextlib.contextmanager
    def locked(self, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
        """Hold the promotion lock across a read-modify-write.

        Waits at most ``timeout`` seconds, then raises :class:`StateError`: a holder that hangs
        (a stuck disk, an abandoned actor) must not hang every later judge step and ``--approve``.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "manifest.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StateError(f"{path} held elsewhere for {timeout:g}s") from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def load_manifest(self) -> Manifest:
        """Every manifest entry, oldest first (``[]`` on the first run)."""
        return load_state(self.manifest_path, Manifest, list, self._alerts, actor="promotion")

    def save_manifest(self, manifest: Manifest) -> None:
        """Replace the manifest atomically (hold :meth:`locked`)."""
        atomic_write_json(self.manifest_path, manifest, kind=Manifest)

    def load_registry(self) -> RegistryFile:
        """The registry (empty on the first run)."""
        return load_state(self.registry_path, RegistryFile, RegistryFile, self._alerts,
                          actor="promotion")

    def save_registry(self, registry: RegistryFile) -> None:
        """Replace the registry atomically (hold :meth:`locked`)."""
        atomic_write_json(self.registry_path, registry)

    def load_performance(self) -> PaperPerformance | None:
        """The recorded paper performance, or ``None`` if there is none or it is unreadable."""
        path = self.performance_path
        try:
            return msgspec.json.decode(path.read_bytes(), type=PaperPerformance)
        except FileNotFoundError:
            return None
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            if self._alerts is not None:
                self._alerts.raise_alert(
                    "warning",
                    "paper_performance_unreadable",
                    f"{path}: {exc}; degradation check skipped",
                    actor="promotion",
                )
            return None


def find_entry(manifest: Manifest, entry_id: str) -> dict[str, Any] | None:
    """The manifest entry with ``entry_id`` (the first one), or ``None``."""
    return next((entry for entry in manifest if entry.get("id") == entry_id), None)


def last_approved_entry(manifest: Manifest, model_id: str) -> dict[str, Any] | None:
    """The most recent ``approved`` entry of ``model_id``, or ``None``."""
    for entry in reversed(manifest):
        if entry.get("model_id") == model_id and entry.get("status") == "approved":
            return entry
    return None


def deactivate(models: ModelStore) -> bool:
    """Leave no model active: move ``active/model.json`` aside to ``active/deactivated.json``.

    Its ``.bak`` is removed too (else the store would recover the pointer from it). Returns
    whether a pointer existed.
    """
    pointer = models.pointer_path
    existed = pointer.exists()
    if existed:
        os.replace(pointer, pointer.with_name("deactivated.json"))
    backup_path(pointer).unlink(missing_ok=True)
    fsync_dir(pointer.parent)
    return existed
