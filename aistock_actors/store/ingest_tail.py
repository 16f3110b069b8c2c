"""The fast path of incremental ingestion: a CSV's rows after its cursor, read without its history.

A cursor (:class:`~aistock_actors.store.bars.FileCursor`) applies while the file is the same one
(inode), still reaches the cursor's offset, and both its header line and the
:data:`CURSOR_WINDOW` bytes just before the offset hash as recorded. Then only those bytes and
the bytes after the offset are read (a replay step that reveals one row reads a few kilobytes,
whatever the history's length), and each new line goes through the row-by-row reference parser
(:func:`~aistock_actors.core.data.bars.parse_row`) with the header's columns parsed once.

Whatever this path cannot vouch for returns None, and the caller parses the file whole as
before: a changed header, inode or window (a file rewritten, replaced or truncated), a bad or
out-of-order row, a line that is not UTF-8, a symbol without stored bars. So rejections, notes
and their wording never depend on the path taken. What no bounded window can see: an in-place
edit of rows wholly before the window, in a file that did not shrink, keeps its inode and header.
Such an edit goes unnoticed instead of being noted as a rewrite; the stored bars are the same
either way (a rewrite never replaces stored history).
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from aistock_actors.core.data.bars import (
    FIELDS,
    Columns,
    parse_header,
    parse_row,
    row_timestamp,
)
from aistock_actors.errors import DataError
from aistock_actors.store.bars import FileCursor
from aistock_actors.store.ingest_checks import body_zones, zone_column

CURSOR_WINDOW = 4096
"""Bytes before a cursor's offset whose hash must still match for the cursor to apply."""
_HEAD = 4096
"""Bytes read from the start: the header and, for the time-zone note, the first data line."""
_CHUNK = 4096
"""First read after the offset; doubled while more lines are needed."""


@dataclass(frozen=True)
class Tail:
    """The new rows after a cursor (every one good and in order) and the cursor's next state."""

    timestamps: NDArray[np.int64]
    values: NDArray[np.float64]
    rows: NDArray[np.int64]
    """1-based line number of each bar in the file."""
    consumed: int
    """Byte offset just past the last line read (the next cursor's offset)."""
    lines: int
    """Complete lines before ``consumed``, the header included."""
    hidden: bool
    """Rows after the replay's bound exist (``consumed`` stops before the first of them)."""
    pending: bool
    """An unterminated, non-blank last line was left unread."""
    size: int
    inode: int
    window_sha256: str
    """The window hash at ``consumed``."""
    zones: list[str]
    """Time-zone spellings of the first data line and of the new lines (empty if none is new)."""


def sha256_hex(data: bytes | memoryview) -> str:
    """Hex sha256 of ``data`` (the cursor's hashes)."""
    return hashlib.sha256(data).hexdigest()


def window_start(offset: int) -> int:
    """Where the hashed window before ``offset`` begins."""
    return max(0, offset - CURSOR_WINDOW)


@functools.lru_cache(maxsize=64)
def header_columns(header: bytes) -> tuple[str, Columns | None]:
    """The hash of a header line (with its newline) and its columns exactly as the whole-file
    parse reads them (None if it does not parse: then the whole-file parse reports why)."""
    try:
        columns = parse_header(header.decode("utf-8").removeprefix("\ufeff").strip())
    except (UnicodeDecodeError, DataError):
        columns = None
    return sha256_hex(header), columns


def read_tail(path: Path, cursor: FileCursor, last: int, bound: int | None) -> Tail | None:
    """The complete rows of ``path`` after ``cursor`` up to the first newer than ``bound``,
    each newer than ``last`` (the stored history's last bar); None if the cursor no longer
    applies or a row is not plainly good (see the module doc)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return _read_tail(fd, cursor, last, bound)
    except OSError:
        return None
    finally:
        os.close(fd)


def _read_tail(fd: int, cursor: FileCursor, last: int, bound: int | None) -> Tail | None:
    info = os.fstat(fd)
    offset = cursor.offset
    if (
        not stat.S_ISREG(info.st_mode)
        or info.st_ino != cursor.inode
        or not cursor.window_sha256
        or offset > info.st_size
    ):
        return None
    head = os.pread(fd, _HEAD, 0)
    header_end = head.find(b"\n") + 1
    if not 0 < header_end <= offset:
        return None
    header_sha256, columns = header_columns(head[:header_end])
    if header_sha256 != cursor.header_sha256:
        return None
    second = head.find(b"\n", header_end) + 1  # the end of the first data line
    if columns is None or (second == 0 and len(head) == _HEAD):  # a first line beyond the head
        return None
    start = window_start(offset)
    buf = _pread_exactly(fd, offset - start + _CHUNK, start)
    if len(buf) < offset - start or sha256_hex(buf[: offset - start]) != cursor.window_sha256:
        return None
    rows = _Rows(columns, last, bound, cursor.lines)
    at = offset - start  # the next line starts at buf[at]
    while True:
        end = buf.find(b"\n", at)
        if end < 0:
            more = _pread_exactly(fd, max(_CHUNK, len(buf)), start + len(buf))
            if not more:
                break
            buf += more
            continue
        verdict = rows.take(buf[at:end])
        if verdict is None:
            return None
        if not verdict:  # the row is after the bound: not written yet
            break
        at = end + 1
    consumed = start + at
    pending = not rows.hidden and bool(buf[at:].strip())
    return Tail(
        timestamps=np.array(rows.timestamps, dtype=np.int64),
        values=np.array(rows.values, dtype=np.float64).reshape(-1, len(FIELDS)),
        rows=np.array(rows.rows, dtype=np.int64),
        consumed=consumed,
        lines=rows.line,
        hidden=rows.hidden,
        pending=pending,
        size=info.st_size,
        inode=info.st_ino,
        window_sha256=(
            cursor.window_sha256
            if consumed == offset
            else sha256_hex(buf[window_start(consumed) - start : at])
        ),
        zones=(
            _zones(head, header_end, second, offset, buf[offset - start : at])
            if consumed > offset
            else []
        ),
    )


def _pread_exactly(fd: int, size: int, offset: int) -> bytes:
    """Up to ``size`` bytes at ``offset``: fewer only at the end of the file."""
    parts: list[bytes] = []
    while size > 0:
        part = os.pread(fd, size, offset)
        if not part:
            break
        parts.append(part)
        size -= len(part)
        offset += len(part)
    return b"".join(parts)


def _zones(head: bytes, header_end: int, second: int, offset: int, new: bytes) -> list[str]:
    """``ingest_checks._zones_seen`` of a resumed read: the first data line's zone (when that
    line, ending at ``second``, lies before ``offset``) and the new lines' zones."""
    column = zone_column(head[: header_end - 1])
    if column is None:
        return []
    found = body_zones(head[header_end:second], column) if 0 < second <= offset else []
    return body_zones(new, column, found)


class _Rows:
    """The good rows of a resumed read, line by line (the reference parser's state)."""

    def __init__(self, columns: Columns, last: int, bound: int | None, lines: int) -> None:
        self.columns = columns
        self.last = last
        self.bound = bound
        self.line = lines
        """Complete lines taken so far, the header included."""
        self.previous: tuple[int, int] | None = None
        self.timestamps: list[int] = []
        self.values: list[tuple[float, ...]] = []
        self.rows: list[int] = []
        self.hidden = False

    def take(self, raw: bytes) -> bool | None:
        """Take one complete line: True when taken, False when it is after the bound (not
        taken), None when it is not plainly good (the whole-file parse must judge it)."""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if not text.strip():
            self.line += 1
            return True
        if self.bound is not None:  # the whole-file rule: the first line whose own timestamp
            stamp = row_timestamp(text, self.columns)  # is after the bound is not written yet
            if stamp is not None and stamp > self.bound:
                self.hidden = True
                return False
        parsed = parse_row(text, self.columns, self.previous, self.last)
        if isinstance(parsed, str):
            return None
        ts, row_values = parsed
        self.line += 1
        self.previous = (ts, self.line)
        self.timestamps.append(ts)
        self.values.append(row_values)
        self.rows.append(self.line)
        return True
