"""The promotion manifest's bounded window and its dated archive files.

``state/promotion/manifest.json`` keeps every ``approved``, ``pending`` and ``held`` entry (the
active model's entry is approved) plus the newest :data:`MANIFEST_RECENT_ENTRIES` others; once
more than :data:`ARCHIVE_BATCH` others are beyond that, the oldest of them move in one batch to
a new archive file ``state/promotion/archive/manifest-<time of its oldest entry>-<id hash>.json``
(a JSON array, oldest first, written once). So a judge step reads and writes a manifest whose
size does not grow with the daemon's age, and moving costs O(1) per cycle on average.

An archive is written before the manifest that no longer holds its entries; after a crash in
between an entry is in both, and a later batch starting at the same entry rewrites the same
file. :func:`read_history` (``--report``) reads the archives and the manifest, one entry per id
(the manifest's copy wins), ordered by time; so does the runbook's jq line::

    find state/promotion -name 'manifest*.json' -exec cat {} + \
        | jq -s 'add | unique_by(.id) | sort_by(.time)'
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

from aistock_actors.core.promotion.manifest import (
    ManifestEntry,
    ManifestFormatError,
    decode_manifest,
)
from aistock_actors.store.atomic import atomic_write_json

log = logging.getLogger(__name__)

MANIFEST_RECENT_ENTRIES = 20
"""Newest entries of other statuses (rejected, recorded, rolled back) the manifest keeps."""
ARCHIVE_BATCH = 20
"""Entries beyond the window that are moved together into one archive file."""
KEEP_STATUSES = frozenset({"approved", "pending", "held"})
"""Statuses that always stay in the manifest (the operator and the active model need them)."""
ARCHIVE_DIR = "archive"
"""``state/promotion/archive/``."""

Entries = list[ManifestEntry]


def split_window(manifest: Entries) -> tuple[Entries, Entries]:
    """``(kept, archived)``: ``archived`` is empty until more than :data:`ARCHIVE_BATCH` entries
    are beyond the window, then it holds every one of them, oldest first."""
    others = [i for i, entry in enumerate(manifest) if entry.status not in KEEP_STATUSES]
    beyond = len(others) - MANIFEST_RECENT_ENTRIES
    if beyond <= ARCHIVE_BATCH:
        return manifest, []
    moved = set(others[:beyond])
    kept = [entry for i, entry in enumerate(manifest) if i not in moved]
    return kept, [manifest[i] for i in sorted(moved)]


def archive_name(entries: Entries) -> str:
    """The archive file of a batch: dated by its oldest entry, named by that entry's id."""
    first = entries[0]
    stamp = re.sub(r"[^0-9TZ]", "", first.time)[:16] or "undated"
    digest = hashlib.sha256(first.id.encode()).hexdigest()[:12]
    return f"manifest-{stamp}-{digest}.json"


def write_archive(root: Path, entries: Entries) -> Path:
    """Write ``entries`` to their archive file under ``root/archive`` (atomic, no ``.bak``)."""
    path = root / ARCHIVE_DIR / archive_name(entries)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, entries, keep_backup=False, kind=Entries)
    log.info("moved %d manifest entries to %s", len(entries), path.name)
    return path


def archive_files(root: Path) -> list[Path]:
    """The archive files under ``root/archive``, by name (so by the time of their oldest entry)."""
    folder = root / ARCHIVE_DIR
    return sorted(folder.glob("manifest-*.json")) if folder.is_dir() else []


def read_history(root: Path, manifest: Entries) -> tuple[Entries, list[str]]:
    """Every entry ever (archives plus ``manifest``), one per id (the manifest's copy wins),
    ordered by time; and a line per archive file that could not be read (skipped)."""
    by_id: dict[str, ManifestEntry] = {}
    problems: list[str] = []
    for path in archive_files(root):
        try:
            entries = decode_manifest(path.read_bytes(), str(path))
        except OSError as exc:
            problems.append(f"{path}: {exc}; skipped")
            continue
        except ManifestFormatError as exc:
            problems.append(f"{exc}; skipped")
            continue
        for entry in entries:
            by_id[entry.id] = entry
    for entry in manifest:
        by_id[entry.id] = entry
    history = sorted(by_id.values(), key=lambda entry: entry.time)
    return history, problems
