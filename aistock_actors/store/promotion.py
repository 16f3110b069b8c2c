"""Promotion state on disk: the manifest, the strategy registry, recorded paper performance.

Files under ``state/``::

    promotion/manifest.json     JSON ARRAY of verdicts, oldest first, each a frozen
                                :class:`~aistock_actors.core.promotion.manifest.ManifestEntry`
                                (msgspec; the JSON is unchanged); each has "id" and "status"
                                (jq '.[] | select(.status=="approved")' works as in the runbook)
                                and its candidate's "backtest" metrics (never its equity curve);
                                a bounded window: every approved, pending and held verdict plus
                                the newest others (``manifest_archive.py``)
    promotion/archive/manifest-<time>-<hash>.json
                                older verdicts, moved out in batches (read by --report)
    promotion/curves/<model id>.json
                                one verdict's out-of-sample backtest equity curve
                                (:class:`EquityCurveFile`, at most 250 points), kept for the
                                newest approved and pending verdicts and the active model
                                (:data:`KEEP_EQUITY_CURVES`, :meth:`PromotionStore.prune_curves`)
    promotion/registry.json     the active strategy and its grace counter (T5), plus the models
                                retired by the registry and rolled back for degradation
    promotion/manifest.lock     flock guarding every read-modify-write of the two files above
                                AND of the active model pointer (the judge and --approve/--reject)
    paper/performance.json      written by paper trading: {"model_id": ..., "returns": [...]}, the
                                per-bar returns of the active model since its promotion

The promotion files and the curves are written atomically with a ``.bak`` and loaded with
``.bak`` recovery. A verdict's curve is written before the manifest entry that names it; a
missing or unreadable curve file only means "no curve" (``--report`` says so), never an error
of the judge.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from aistock_actors.core.promotion.manifest import (
    Manifest as Manifest,
)
from aistock_actors.core.promotion.manifest import (
    ManifestEntry,
    decode_manifest,
)
from aistock_actors.core.promotion.registry import RegistryState, StrategyRecord
from aistock_actors.errors import StateError
from aistock_actors.runtime.clock import SYSTEM_CLOCK
from aistock_actors.store.alerts import AlertSink
from aistock_actors.store.atomic import atomic_write_json, backup_path, fsync_dir
from aistock_actors.store.ledger import PaperPerformance
from aistock_actors.store.manifest_archive import read_history, split_window, write_archive
from aistock_actors.store.models import ModelStore, says_no_model
from aistock_actors.store.state_file import load_state

log = logging.getLogger(__name__)

STRATEGY_ID = "primary"
"""The registry's one strategy slot: the active model."""

LOCK_TIMEOUT_SECONDS = 10.0
"""Longest wait for the promotion lock (every holder keeps it for milliseconds)."""

EQUITY_CURVE_KEY = "equity_curve"
"""The ``BacktestCompleted`` field holding the downsampled out-of-sample equity curve. It is
stored in ``promotion/curves/``, never in a manifest entry's ``backtest`` (an entry written by
an interim version that still has it loads, and loses it on the next save)."""

CURVES_DIR = "curves"
"""``state/promotion/curves/``: one :class:`EquityCurveFile` per model, ``<model id>.json``."""

KEEP_EQUITY_CURVES: dict[str, int] = {"approved": 10, "pending": 10}
"""How many of the newest manifest entries of each status keep their backtest equity curve file.

An approved entry's curve is the active model's (``--report`` plots it), a pending one's is what
the operator would activate with ``--approve``; the active model's curve is always kept. Rejected
and recorded verdicts (most of them: one per cycle) get no curve file, older entries' files are
deleted (about 10 kB each).
"""

_CURVE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""A model id usable as a file name (the model store's own id rule)."""


class EquityCurveFile(msgspec.Struct, frozen=True, kw_only=True):
    """``promotion/curves/<model id>.json``: a verdict's out-of-sample backtest equity."""

    model_id: str
    entry_id: str
    """The manifest entry of the verdict that stored it."""
    points: list[tuple[str, float]]
    """``(ISO-8601 time, account value)`` oldest first, finite values, at least two."""


_NO_CURVE = EquityCurveFile(model_id="", entry_id="", points=[])
"""What :func:`load_state` falls back to: "no curve" (compared by identity)."""


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
            deadline = SYSTEM_CLOCK.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if SYSTEM_CLOCK.monotonic() >= deadline:
                        raise StateError(f"{path} held elsewhere for {timeout:g}s") from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def load_manifest(self) -> Manifest:
        """Every manifest entry, oldest first (``[]`` on the first run). A file that is not
        JSON or holds an entry of another shape (:func:`decode_manifest`: the alert names the
        file and the entry) is recovered from its ``.bak`` like every state file."""
        return load_state(self.manifest_path, Manifest, list, self._alerts, actor="promotion",
                          decode=_decode_manifest)

    def save_manifest(self, manifest: Manifest) -> None:
        """Replace the manifest atomically (hold :meth:`locked`).

        Written without any ``backtest.equity_curve`` (:func:`strip_equity_curves`); an entry
        that still has one (an interim version's manifest) and keeps a curve
        (:func:`curve_models_to_keep`) gets its curve file first, if it has none.
        ``manifest`` itself is not modified.
        """
        self._move_inline_curves(manifest)
        kept, archived = split_window(manifest)
        if archived:  # written before the manifest that no longer holds them
            write_archive(self.root, strip_equity_curves(archived))
        atomic_write_json(self.manifest_path, strip_equity_curves(kept), kind=Manifest)

    def load_history(self) -> Manifest:
        """Every verdict ever: the archive files and the manifest, one per id, by time. An
        unreadable archive file is skipped with a warning alert (the manifest is unaffected)."""
        history, problems = read_history(self.root, self.load_manifest())
        for problem in problems:
            log.warning("manifest archive unreadable: %s", problem)
            if self._alerts is not None:
                self._alerts.raise_alert(
                    "warning", "manifest_archive_unreadable", problem, actor="promotion"
                )
        return history

    @property
    def curves_dir(self) -> Path:
        """``state/promotion/curves/``."""
        return self.root / CURVES_DIR

    def curve_path(self, model_id: str) -> Path | None:
        """``curves/<model_id>.json``, or ``None`` for an id that is no plain file name."""
        if not isinstance(model_id, str) or not _CURVE_NAME.fullmatch(model_id):
            return None
        return self.curves_dir / f"{model_id}.json"

    def save_curve(self, model_id: str, entry_id: str, points: Any) -> bool:
        """Write ``model_id``'s curve file atomically (with a ``.bak``) from ``points``
        (``(time, value)`` pairs); non-finite points are dropped. Returns whether a file was
        written: not for fewer than two points or an id that is no file name. Raises
        ``OSError`` (the caller decides whether that matters)."""
        path = self.curve_path(model_id)
        kept = finite_points(points)
        if path is None or len(kept) < 2:
            return False
        curve = EquityCurveFile(model_id=model_id, entry_id=entry_id, points=kept)
        atomic_write_json(path, curve, kind=EquityCurveFile)
        return True

    def load_curve(self, model_id: str) -> EquityCurveFile | None:
        """``model_id``'s curve file, from its ``.bak`` if the file is corrupt (error alert), or
        ``None``: no file, or the file and its ``.bak`` unreadable (critical alert
        ``state_file_unrecoverable``). Never raises for a bad file."""
        path = self.curve_path(model_id)
        if path is None:
            return None
        curve = load_state(path, EquityCurveFile, lambda: _NO_CURVE, self._alerts,
                           actor="promotion")
        return None if curve is _NO_CURVE else curve

    def curve_stored(self, model_id: str) -> bool:
        """Whether ``model_id`` has a curve file or its ``.bak`` (readable or not)."""
        path = self.curve_path(model_id)
        return path is not None and (path.exists() or backup_path(path).exists())

    def prune_curves(self, manifest: Manifest, active_model_id: str | None) -> list[str]:
        """Delete the curve files (and ``.bak``) of every model but those of
        :func:`curve_models_to_keep` and ``active_model_id``; return the deleted models' ids.
        A file that cannot be deleted is logged and left for the next prune."""
        keep = curve_models_to_keep(manifest)
        if active_model_id is not None:
            keep.add(active_model_id)
        try:
            names = sorted(os.listdir(self.curves_dir))
        except OSError:
            return []
        removed = []
        for name in names:
            model_id = name.removesuffix(".bak").removesuffix(".json")
            if not name.endswith((".json", ".json.bak")) or model_id in keep:
                continue
            try:
                (self.curves_dir / name).unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("curve file %s not pruned: %s", name, exc)
                continue
            if name.endswith(".json"):
                removed.append(model_id)
        if removed:
            fsync_dir(self.curves_dir)
        return removed

    def _move_inline_curves(self, manifest: Manifest) -> None:
        """Give an entry with an inline ``backtest.equity_curve`` that keeps a curve its file
        (unless it has one); best effort: a failed write is logged, the curve then dropped."""
        keep = curve_models_to_keep(manifest)
        for entry in manifest:
            backtest = entry.metrics()
            if EQUITY_CURVE_KEY not in backtest:
                continue
            model_id = entry.model_id
            if model_id not in keep or self.curve_stored(model_id):
                continue
            try:
                self.save_curve(model_id, entry.id, backtest[EQUITY_CURVE_KEY])
            except OSError as exc:
                log.warning("equity curve of %s not moved out of the manifest: %s", model_id, exc)

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


def _decode_manifest(raw: bytes, path: Path) -> Manifest:
    return decode_manifest(raw, str(path))


def strip_equity_curves(manifest: Manifest) -> Manifest:
    """``manifest`` without any ``backtest.equity_curve`` (the input list is not modified)."""
    out: Manifest = []
    for entry in manifest:
        backtest = entry.metrics()
        if EQUITY_CURVE_KEY in backtest:
            kept = {k: v for k, v in backtest.items() if k != EQUITY_CURVE_KEY}
            entry = msgspec.structs.replace(entry, backtest=kept)
        out.append(entry)
    return out


def curve_models_to_keep(manifest: Manifest) -> set[str]:
    """The models of the newest entries of each status in :data:`KEEP_EQUITY_CURVES`."""
    left = dict(KEEP_EQUITY_CURVES)
    keep: set[str] = set()
    for entry in reversed(manifest):
        if left.get(entry.status, 0) > 0:
            left[entry.status] -= 1
            keep.add(entry.model_id)
    return keep


def finite_points(points: Any) -> list[tuple[str, float]]:
    """The ``(time, value)`` pairs of ``points`` with a string time and a finite number value
    (anything else is skipped; not a list: ``[]``)."""
    if not isinstance(points, (list, tuple)):
        return []
    out = []
    for point in points:
        if not (isinstance(point, (list, tuple)) and len(point) == 2):
            continue
        time_, value = point
        if (isinstance(time_, str) and isinstance(value, (int, float))
                and not isinstance(value, bool) and math.isfinite(value)):
            out.append((time_, float(value)))
    return out


def find_entry(manifest: Manifest, entry_id: str) -> ManifestEntry | None:
    """The manifest entry with ``entry_id`` (the first one), or ``None``."""
    return next((entry for entry in manifest if entry.id == entry_id), None)


def last_approved_entry(manifest: Manifest, model_id: str) -> ManifestEntry | None:
    """The most recent ``approved`` entry of ``model_id``, or ``None``."""
    for entry in reversed(manifest):
        if entry.model_id == model_id and entry.status == "approved":
            return entry
    return None


def deactivate(models: ModelStore) -> bool:
    """Leave no model active: move ``active/model.json`` aside to ``active/deactivated.json``
    and write a :class:`~aistock_actors.store.models.NoActiveModel` pointer in its place.

    Its ``.bak`` is removed too (else the store would recover the pointer from it). Returns
    whether a pointer existed.
    """
    pointer = models.pointer_path
    if says_no_model(pointer):  # already says so (and why): left as it is
        backup_path(pointer).unlink(missing_ok=True)
        return False
    existed = pointer.exists()
    previous = None
    if existed:
        try:
            previous = models.active_record()
        except StateError:  # unreadable: it is moved aside all the same
            previous = None
        os.replace(pointer, pointer.with_name("deactivated.json"))
    backup_path(pointer).unlink(missing_ok=True)
    fsync_dir(pointer.parent)
    models.write_no_model("retired or rolled back with no earlier good model to fall back to",
                          previous.model_id if previous is not None else None)
    return existed
