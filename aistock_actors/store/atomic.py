"""Crash-safe file writes (T1): temp file in the same folder, fsync, ``os.replace``, folder fsync.

The previous version of a file is kept as ``<name>.bak`` so that a file that is later found corrupt
(a bug, a bad disk, a hand edit) can be recovered. A crash at any instant leaves ``path`` either
the complete old or the complete new content, and ``.bak`` always a complete earlier version.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import msgspec


def backup_path(path: Path) -> Path:
    """Return the ``.bak`` sibling of ``path`` (``manifest.json`` -> ``manifest.json.bak``)."""
    return path.with_name(path.name + ".bak")


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename) to disk; a no-op where the OS does not allow it."""
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


def _write_replace(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes, *, keep_backup: bool = True) -> None:
    """Atomically replace ``path`` with ``data``; the previous content becomes ``path.bak``.

    Raises ``OSError`` (read-only or full file system, ...) without touching ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if keep_backup:
        try:
            previous = path.read_bytes()
        except FileNotFoundError:
            previous = None
        if previous is not None:
            _write_replace(backup_path(path), previous)
    _write_replace(path, data)
    fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: object, *, keep_backup: bool = True) -> None:
    """Encode ``obj`` as indented JSON (msgspec) and write it atomically.

    Encoding happens before anything is touched, so an unencodable object changes nothing.
    """
    data = msgspec.json.format(msgspec.json.encode(obj), indent=2) + b"\n"
    atomic_write_bytes(path, data, keep_backup=keep_backup)
