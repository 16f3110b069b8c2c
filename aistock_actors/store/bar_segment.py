"""Append-only segment of a symbol's newest bars (``<SYMBOL>.npz.seg``) on top of its ``.npz``.

A new bar used to rewrite the symbol's whole ``.npz`` (and its ``.bak``). Now, once the ``.npz``
holds :data:`SEGMENT_MIN_BARS`, new bars are appended to the segment as checksummed records and
folded into the ``.npz`` every :data:`FOLD_RECORDS` records (and at the ingestor's start).

Format: a header (magic, the bar count and last timestamp of the ``.npz`` it extends, CRC32),
written atomically (temp file + rename) when the segment is created, then records: bar count,
CRC32 of the payload, the payload (``n`` int64 timestamps, ``n x 5`` float64 values). A reader
keeps the records up to the first torn or inconsistent one (a crash mid-write: that append was
never acknowledged); the writer truncates such a tail before it appends. A segment applies only
to the ``.npz`` version its header names: after a fold (the ``.npz`` rewritten with the
segment's bars, then the segment removed) a crash before the removal leaves a segment that no
longer matches and is ignored, so no bar is lost or read twice.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from aistock_actors.store.atomic import atomic_write_bytes, syncing

SEGMENT_MIN_BARS = 64
"""A shorter history is rewritten whole (as cheap as an append, and keeps a ``.bak`` of each)."""
FOLD_RECORDS = 64
"""Records after which the next append folds the segment into the ``.npz``."""

_MAGIC = b"AISEG1\n\x00"
_HEADER = struct.Struct("<8sqqI")
_RECORD = struct.Struct("<II")
_FIELDS = 5
_BAR_BYTES = 8 + 8 * _FIELDS
HEADER_SIZE = _HEADER.size


def segment_path(npz: Path) -> Path:
    """The segment file beside a symbol's ``.npz``."""
    return npz.with_name(npz.name + ".seg")


@dataclass(frozen=True)
class Segment:
    """The valid part of a segment file."""

    base_count: int
    """Bars in the ``.npz`` version this segment extends."""
    base_last_ts: int
    """Timestamp of that version's last bar."""
    timestamps: NDArray[np.int64]
    values: NDArray[np.float64]
    records: int
    end: int
    """Byte offset just past the last valid record (where the next one is written)."""


def header_bytes(base_count: int, base_last_ts: int) -> bytes:
    head = _MAGIC + struct.pack("<qq", base_count, base_last_ts)
    return head + struct.pack("<I", zlib.crc32(head))


def record_bytes(timestamps: NDArray[np.int64], values: NDArray[np.float64]) -> bytes:
    payload = timestamps.astype("<i8").tobytes() + values.astype("<f8").tobytes()
    return _RECORD.pack(len(timestamps), zlib.crc32(payload)) + payload


def parse_records(
    data: bytes, after_ts: int
) -> tuple[NDArray[np.int64], NDArray[np.float64], int, int]:
    """``(timestamps, values, records, consumed)`` of the valid records at the start of ``data``.

    Stops at the first short, corrupt or inconsistent record (bars not newer than ``after_ts``,
    not increasing, or non-finite).
    """
    pos, records, last = 0, 0, after_ts
    parts_ts: list[NDArray[np.int64]] = []
    parts_values: list[NDArray[np.float64]] = []
    while pos + _RECORD.size <= len(data):
        count, crc = _RECORD.unpack_from(data, pos)
        payload = data[pos + _RECORD.size : pos + _RECORD.size + count * _BAR_BYTES]
        if count == 0 or len(payload) != count * _BAR_BYTES or zlib.crc32(payload) != crc:
            break
        ts = np.frombuffer(payload, "<i8", count).astype(np.int64)
        values = np.frombuffer(payload, "<f8", count * _FIELDS, count * 8).astype(np.float64)
        values = values.reshape(count, _FIELDS)
        if ts[0] <= last or (np.diff(ts) <= 0).any() or not np.isfinite(values).all():
            break
        parts_ts.append(ts)
        parts_values.append(values)
        pos += _RECORD.size + len(payload)
        records += 1
        last = int(ts[-1])
    if not parts_ts:
        return np.empty(0, np.int64), np.empty((0, _FIELDS)), 0, 0
    return np.concatenate(parts_ts), np.concatenate(parts_values), records, pos


def read_segment(path: Path) -> Segment | None:
    """The segment at ``path``; None if it is missing or its header is unreadable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if len(data) < HEADER_SIZE:
        return None
    magic, base_count, base_last_ts, crc = _HEADER.unpack_from(data)
    if magic != _MAGIC or zlib.crc32(data[: HEADER_SIZE - 4]) != crc:
        return None
    ts, values, records, consumed = parse_records(data[HEADER_SIZE:], base_last_ts)
    return Segment(base_count, base_last_ts, ts, values, records, HEADER_SIZE + consumed)


def create_segment(path: Path, base_count: int, base_last_ts: int) -> int:
    """Atomically (re)create an empty segment extending that ``.npz``; return its end offset."""
    atomic_write_bytes(path, header_bytes(base_count, base_last_ts), keep_backup=False)
    return HEADER_SIZE


def append_record(
    path: Path | str, end: int, timestamps: NDArray[np.int64], values: NDArray[np.float64]
) -> int:
    """Write one record at ``end`` (cutting a torn tail first); return the new end offset."""
    data = record_bytes(timestamps, values)
    fd = os.open(path, os.O_WRONLY)
    try:
        if os.fstat(fd).st_size != end:
            os.ftruncate(fd, end)
        written = 0
        while written < len(data):
            written += os.pwrite(fd, data[written:], end + written)
        if syncing():
            os.fsync(fd)
    finally:
        os.close(fd)
    return end + len(data)


def read_from(path: Path, offset: int) -> bytes:
    """The bytes of ``path`` from ``offset`` on (new records since the last read)."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read()
