"""``ActiveModelCache``: the active model kept in memory between cycles, re-verified on any change.

Loading the active model (hash, HMAC, unpickle) costs tens of milliseconds; a trade step needs it
every cycle. The cache holds the loaded object (opaque: whatever the loader returns, keyed by the
record's model id and sha256) and, every call, stats the active pointer (and its ``.bak``) and
every file of the active model's folder: inode, size, mtime and ctime. Any difference (a new
pointer, a swapped or rewritten artifact or signature, even with its mtime put back: the ctime
moves) drops the cached object and loads again through the loader, which verifies before it
unpickles. A file rewritten within the file system's timestamp granularity of the verified load
with the same size in place is the one change a stat cannot see; the stamps are taken before and
after each load, and a load during which anything moved is not cached.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from aistock_actors.errors import StateError
from aistock_actors.store.atomic import backup_path
from aistock_actors.store.models import ModelRecord, ModelStore

T = TypeVar("T")

FileStamp = tuple[str, int, int, int, int] | None
"""``(name, inode, size, mtime_ns, ctime_ns)`` of a file, None if it does not exist."""


def file_stamp(path: Path) -> FileStamp:
    """The identity of ``path``'s current version (None if absent)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot stat {path}: {exc}") from exc
    return (path.name, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def folder_stamp(folder: Path) -> tuple[FileStamp, ...]:
    """Stamps of ``folder`` itself and of every entry in it, sorted by name."""
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return (None,)
    except OSError as exc:
        raise StateError(f"cannot list {folder}: {exc}") from exc
    return (file_stamp(folder), *(file_stamp(folder / name) for name in names))


@dataclass(frozen=True)
class _Entry(Generic[T]):
    pointer: tuple[FileStamp, ...]
    folder: tuple[FileStamp, ...]
    record: ModelRecord
    loaded: T


class ActiveModelCache(Generic[T]):
    """The active record and its loaded object, reloaded only when a stat says something moved."""

    def __init__(
        self, models: ModelStore, load: Callable[[], tuple[ModelRecord, T] | None]
    ) -> None:
        self.models = models
        self._load = load
        self._entry: _Entry[T] | None = None
        self.loads = 0
        """How many times the loader ran (each a full verification)."""

    def _pointer_stamp(self) -> tuple[FileStamp, ...]:
        pointer = self.models.pointer_path
        return (file_stamp(pointer), file_stamp(backup_path(pointer)))

    def get(self) -> tuple[ModelRecord, T] | None:
        """``(record, loaded)`` of the active model, or None; raises what the loader raises."""
        pointer = self._pointer_stamp()
        entry = self._entry
        if (
            entry is not None
            and entry.pointer == pointer
            and entry.folder == folder_stamp(self.models.model_dir(entry.record.model_id))
        ):
            return entry.record, entry.loaded
        self._entry = None
        before = self.models.active_record()
        folder = folder_stamp(self.models.model_dir(before.model_id)) if before else ()
        self.loads += 1
        result = self._load()
        if result is None or before is None:
            return result
        record, loaded = result
        if (
            (record.model_id, record.sha256) == (before.model_id, before.sha256)
            and pointer == self._pointer_stamp()
            and folder == folder_stamp(self.models.model_dir(record.model_id))
        ):
            self._entry = _Entry(pointer, folder, record, loaded)
        return result

    def clear(self) -> None:
        """Forget the cached model (the next :meth:`get` loads and verifies again)."""
        self._entry = None
