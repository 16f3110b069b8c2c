"""Crash-safe file writes (T1): temp file in the same folder, fsync, ``os.replace``, folder fsync.

The previous version of a file is kept as ``<name>.bak`` so that a file that is later found corrupt
(a bug, a bad disk, a hand edit) can be recovered. A crash at any instant leaves ``path`` either
the complete old or the complete new content, and ``.bak`` always a complete earlier version.

The fsyncs guard against a power cut or a kernel crash, not against the process dying: a killed
process (even by SIGKILL) loses nothing the kernel already holds. A market replay, whose state is
rebuilt from history and which writes dozens of files per simulated bar, turns them off for its
process (:func:`sync_to_disk`); the write order, the renames and the ``.bak`` files stay.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from aistock_actors.errors import StateError

_SYNC = [True]
"""Whether writes are fsynced (a one-element list: a process-wide switch, no global statement)."""


def sync_to_disk(enabled: bool) -> None:
    """fsync state writes in this process (the default), or not (a replay: see the module doc)."""
    _SYNC[0] = enabled


def syncing() -> bool:
    """Whether writes are fsynced in this process."""
    return _SYNC[0]


def backup_path(path: Path) -> Path:
    """Return the ``.bak`` sibling of ``path`` (``manifest.json`` -> ``manifest.json.bak``)."""
    return path.with_name(path.name + ".bak")


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename) to disk; a no-op where the OS does not allow it."""
    if not _SYNC[0]:
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_prefix(path: Path, pid: int) -> str:
    return f".{path.name}.{pid}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_orphan_temps(path: Path) -> int:
    """Remove temp files of ``path`` left by writers that died (SIGKILL) mid-write.

    Temp names carry the writer's pid, so a live writer's temp file is never touched.
    """
    removed = 0
    stem = f".{path.name}."
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        if not (name.startswith(stem) and name.endswith(".tmp")):
            continue
        pid_text = name[len(stem) :].split(".", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _pid_alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed += 1
    return removed


_SWEPT: set[str] = set()
"""Files whose orphaned temp files this process has already swept (see :func:`_sweep_once`)."""
_SWEPT_MAX = 10_000
"""Past this many names the set starts over (a re-sweep is harmless; unbounded growth is not)."""


def _sweep_once(path: Path) -> None:
    """:func:`sweep_orphan_temps` at this process's first write of ``path`` only.

    An orphan is left by a writer that died mid-write, and the one that matters is the writer
    before this process (the previous daemon, a killed CLI): its leftovers go at the first write,
    so restarts never let them pile up. Scanning the folder at every write (a bar folder holds
    thousands of files) cost more than the write itself.
    """
    key = str(path)
    if key in _SWEPT:
        return
    sweep_orphan_temps(path)
    if len(_SWEPT) >= _SWEPT_MAX:
        _SWEPT.clear()
    _SWEPT.add(key)


def _write_replace(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=_temp_prefix(path, os.getpid()), suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if _SYNC[0]:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(
    path: Path,
    data: bytes,
    *,
    keep_backup: bool = True,
    backup_valid: Callable[[bytes], bool] | None = None,
) -> None:
    """Atomically replace ``path`` with ``data``; the previous content becomes ``path.bak``.

    The previous content is rotated into ``.bak`` only if ``backup_valid`` accepts it: after a
    file was found corrupt and recovered from ``.bak``, the corrupt file must not overwrite the
    only good backup. Raises ``OSError`` (read-only or full file system, ...) without touching
    ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if keep_backup:
        try:
            previous = path.read_bytes()
        except FileNotFoundError:
            previous = None
        if previous is not None and (backup_valid is None or backup_valid(previous)):
            _write_replace(backup_path(path), previous)
            _sweep_once(backup_path(path))
    _write_replace(path, data)
    fsync_dir(path.parent)
    _sweep_once(path)


def atomic_write_json(
    path: Path, obj: object, *, keep_backup: bool = True, kind: Any = None
) -> None:
    """Encode ``obj`` as indented JSON (msgspec) and write it atomically.

    Encoding happens before anything is touched, so an unencodable object changes nothing.
    ``kind`` is the type the file is loaded as (default: the object's own type for a Struct, a
    list or a dict): only a previous version that decodes as it is rotated into ``.bak``, so
    valid JSON of the wrong shape (``{}`` where a list belongs) never replaces a good backup.
    """
    data = msgspec.json.format(msgspec.json.encode(obj), indent=2) + b"\n"
    if kind is None:
        kind = type(obj) if isinstance(obj, (msgspec.Struct, list, dict)) else object
    atomic_write_bytes(
        path, data, keep_backup=keep_backup, backup_valid=lambda old: decodes_as(old, kind)
    )


def decodes_as(data: bytes, kind: Any) -> bool:
    """Whether ``data`` decodes as ``kind`` — the same test a loader applies — so only a version
    that would load is ever kept as ``.bak``."""
    try:
        msgspec.json.decode(data, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False
    return True


def complete_lines(path: Path) -> list[bytes]:
    """Every complete line of an append-only file, empty ones included (``[]`` when it does not
    exist): a last append torn by a crash (no newline) is not a line. :class:`StateError` when
    the file cannot be read."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StateError(f"{path}: unreadable: {exc.strerror or exc}") from exc
    lines = raw.split(b"\n")
    lines.pop()  # b"" after a final newline; otherwise a torn append: ignored
    return lines

