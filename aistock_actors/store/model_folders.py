"""The model folders as a collection: which are stored, unreadable or were ever active, the newest
candidate, and removing a folder crash-safely (the hygiene of issue #13 prunes through these)."""

from __future__ import annotations

import os
import shutil
from datetime import datetime

from aistock_actors.runtime.clock import epoch_ns
from aistock_actors.store.atomic import (
    fsync_dir,
)
from aistock_actors.store.models import ACTIVE_DIR, ID_PATTERN, ModelRecord, ModelStore


def data_end_ns(record: ModelRecord) -> int | None:
    """The last bar a model was trained on (``extra["data_end"]``) in ns UTC, if recorded."""
    value = record.extra.get("data_end")
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return epoch_ns(moment)


def newest_candidate(store: ModelStore) -> tuple[ModelRecord, int] | None:
    """The stored model trained on the newest bars, with its ``data_end`` in ns (the retraining
    cadence counts new bars from it); None when no stored model records its ``data_end``."""
    best: tuple[ModelRecord, int] | None = None
    for record in store.list_models():
        end = data_end_ns(record)
        if end is not None and (best is None or end >= best[1]):
            best = (record, end)
    return best


REMOVING_SUFFIX = ".removing"
"""A model folder being deleted is first renamed ``.<id>.removing`` (atomic), then removed, so a
crash never leaves a half-deleted folder under a model id."""


def stored_ids(store: ModelStore) -> list[str]:
    """Every model folder's id: those with readable metadata oldest first, then the
    :func:`unreadable_ids`."""
    return [record.model_id for record in store.list_models()] + unreadable_ids(store)


def unreadable_ids(store: ModelStore) -> list[str]:
    """Folders named like a model without readable metadata (an artifact write cut short)."""
    if not store.root.is_dir():
        return []
    known = {record.model_id for record in store.list_models()}
    return [
        child.name
        for child in sorted(store.root.iterdir())
        if child.is_dir() and child.name != ACTIVE_DIR and child.name not in known
        and ID_PATTERN.fullmatch(child.name) and not child.name.endswith(REMOVING_SUFFIX)
    ]


def activated_ids(store: ModelStore) -> set[str]:
    """Every model the activation history (``active/history.json``) names."""
    return {entry.model_id for entry in store._history().activations}


def remove_model(store: ModelStore, model_id: str) -> bool:
    """Delete ``models/<id>/`` (renamed aside first, then removed); False if it was not there."""
    folder = store.model_dir(model_id)
    aside = folder.with_name(f".{model_id}{REMOVING_SUFFIX}")
    try:
        os.replace(folder, aside)
    except FileNotFoundError:
        return False
    fsync_dir(store.root)
    shutil.rmtree(aside, ignore_errors=True)
    return True


def sweep_removals(store: ModelStore) -> int:
    """Finish deletions a crash interrupted (``.<id>.removing`` folders); return how many."""
    if not store.root.is_dir():
        return 0
    leftovers = [p for p in store.root.iterdir()
                 if p.is_dir() and p.name.startswith(".") and p.name.endswith(REMOVING_SUFFIX)]
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)
    return len(leftovers)
