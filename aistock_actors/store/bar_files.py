"""How one symbol's bars lie on disk: the ``.npz`` (or its ``.bak``) plus the segment extending it.

:class:`~aistock_actors.store.bars.BarStore` keeps the result of these readers in its shared cache,
keyed by the files' versions (:func:`stat_key`).
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from aistock_actors.core.data.bars import FIELDS
from aistock_actors.errors import StateError
from aistock_actors.store.atomic import backup_path
from aistock_actors.store.bar_segment import parse_records, read_segment

logger = logging.getLogger("aistock_actors.store.bars")

FileKey = tuple[int, int, int]


@dataclass(frozen=True)
class StoredBars:
    """Decoded bars of one symbol and the file versions they were read from."""

    key: tuple[FileKey, FileKey | None]
    """Versions of the ``.npz`` and of the segment (None: no segment file)."""
    timestamps: NDArray[np.int64]
    values: NDArray[np.float64]
    base_count: int = -1
    """Bars read from the ``.npz`` (-1: read from its ``.bak``, the ``.npz`` is damaged)."""
    seg_end: int = 0
    """End of the segment's valid records when the segment applies, else 0."""
    seg_records: int = 0


def stat_key(stat: os.stat_result) -> FileKey:
    """Identity of a file version: every write is a new inode, and appends change the size."""
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def only_segment_grew(cached: StoredBars, key: tuple[FileKey, FileKey | None]) -> bool:
    """Whether only the applying segment grew since ``cached`` (same ``.npz``, same inode)."""
    old_seg, new_seg = cached.key[1], key[1]
    return (
        cached.key[0] == key[0]
        and cached.seg_end > 0
        and old_seg is not None
        and new_seg is not None
        and new_seg[2] == old_seg[2]
        and new_seg[1] > old_seg[1]
    )


def extended(cached: StoredBars, key: tuple[FileKey, FileKey | None], data: bytes) -> StoredBars:
    """``cached`` plus the records appended to its segment since (``data``: the new bytes)."""
    ts, values, records, consumed = parse_records(data, int(cached.timestamps[-1]))
    all_ts = np.concatenate([cached.timestamps, ts])
    all_values = np.concatenate([cached.values, values])
    all_ts.setflags(write=False)
    all_values.setflags(write=False)
    return StoredBars(key, all_ts, all_values, cached.base_count, cached.seg_end + consumed,
                 cached.seg_records + records)


def with_segment(
    key: tuple[FileKey, FileKey | None],
    timestamps: NDArray[np.int64],
    values: NDArray[np.float64],
    from_backup: bool,
    seg_file: Path,
) -> StoredBars:
    """The ``.npz`` bars plus its segment's records when the segment extends this version."""
    base = -1 if from_backup else len(timestamps)
    segment = read_segment(seg_file) if key[1] is not None else None
    if (
        segment is None
        or not len(timestamps)
        or segment.base_count != len(timestamps)
        or segment.base_last_ts != int(timestamps[-1])
    ):
        return StoredBars(key, timestamps, values, base)
    all_ts = np.concatenate([timestamps, segment.timestamps])
    all_values = np.concatenate([values, segment.values])
    all_ts.setflags(write=False)
    all_values.setflags(write=False)
    return StoredBars(key, all_ts, all_values, base, segment.end, segment.records)


def encode_bars(timestamps: NDArray[np.int64], values: NDArray[np.float64]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, ts=timestamps, ohlcv=values)
    return buffer.getvalue()


def decode_bars(data: bytes) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        if sorted(npz.files) != ["ohlcv", "ts"]:
            raise ValueError(f"unexpected members {npz.files}")
        timestamps, values = npz["ts"], npz["ohlcv"]
    if timestamps.dtype != np.int64 or timestamps.ndim != 1:
        raise ValueError(f"bad ts array {timestamps.dtype}{timestamps.shape}")
    if values.dtype != np.float64 or values.shape != (len(timestamps), len(FIELDS)):
        raise ValueError(f"bad ohlcv array {values.dtype}{values.shape}")
    if not np.isfinite(values).all() or (len(timestamps) > 1 and (np.diff(timestamps) <= 0).any()):
        raise ValueError("non-finite values or non-increasing timestamps")
    timestamps.setflags(write=False)
    values.setflags(write=False)
    return timestamps, values


def read_with_fallback(path: Path) -> tuple[NDArray[np.int64], NDArray[np.float64], bool]:
    """Read ``path``, or its ``.bak`` if ``path`` is corrupt (then the flag is True);
    ``StateError`` if both fail."""
    errors: list[str] = []
    for candidate in (path, backup_path(path)):
        try:
            result = decode_bars(candidate.read_bytes())
        # Corrupt bytes surface as many exception types (zip, npy header, CRC, ast): all mean
        # "this copy is unusable", and the next candidate is tried.
        except Exception as exc:
            errors.append(f"{candidate.name}: {type(exc).__name__}: {exc}")
            continue
        if candidate != path:
            logger.warning("stored bars %s are corrupt (%s); using %s", path, errors[0], candidate)
        return (*result, candidate != path)
    raise StateError(f"stored bars {path} are unreadable and so is its backup: {'; '.join(errors)}")
