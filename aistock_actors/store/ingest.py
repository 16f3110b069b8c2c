"""Incremental ingestion of a folder of ``<SYMBOL>.csv`` files into a ``BarStore``.

Each file keeps a cursor (offset and line count of the last fully parsed line, the file's inode,
hashes of the header and of the few kilobytes before the offset, and the store's last bar at that
time). When the cursor still matches, only the appended tail is read and parsed
(:mod:`aistock_actors.store.ingest_tail`: the cost of a run follows the new bytes, not the
history) and every new bar must be strictly newer than the stored history. Otherwise (file
rewritten, replaced or shrunk, cursor lost or stale after a crash) the file is re-parsed whole and
only bars strictly newer than the stored history are added; overlapping bars that differ from the
stored ones are kept as stored and reported as a note.

A file with any bad row is rejected whole for this run (all-or-nothing per symbol; silently
skipping rows of trading data is worse than waiting for a fix); its stored bars and cursor are left
untouched and the other files still ingest. An unterminated last line is left for the next run.

Bars from the future or from another planet are refused the same way (#17, :class:`BarLimits`): a
new bar later than the clock's market time plus a tolerance, a price beyond a relative jump from
the previous close, or an impossible magnitude rejects its file with the row and the reason, so
one ``2099-01-01`` row never reaches the store. A file that shrank since the last run is a note.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np
from numpy.typing import NDArray

from aistock_actors.core.data.bar_bound import parse_until as parse_until
from aistock_actors.core.data.bars import (
    FIELDS,
    ParsedBars,
    RowProblem,
    format_timestamp,
    parse,
)
from aistock_actors.errors import DataError, StateError
from aistock_actors.store.bars import BarStore, FileCursor, is_valid_symbol
from aistock_actors.store.ingest_checks import (
    BarLimits as BarLimits,
)
from aistock_actors.store.ingest_checks import (
    _last_close as _last_close,
)
from aistock_actors.store.ingest_checks import (
    _zones_seen as _zones_seen,
)
from aistock_actors.store.ingest_checks import file_notes, shrank_note, zones_note
from aistock_actors.store.ingest_checks import (
    implausible_bars as implausible_bars,
)
from aistock_actors.store.ingest_tail import Tail, read_tail, sha256_hex, window_start

__all__ = [
    "BarLimits",
    "IngestReport",
    "Rejection",
    "RowProblem",
    "csv_timestamps",
    "ingest_directory",
    "parse_until",
]


class Rejection(msgspec.Struct, frozen=True):
    """A CSV file refused whole for this run: up to the first five problems found in it."""

    symbol: str
    file: str
    problems: list[RowProblem]


class IngestReport(msgspec.Struct, frozen=True):
    """What one ``ingest_directory`` run did."""

    bars_added: int
    per_symbol: dict[str, int]
    """Bars added per ingested (not rejected) symbol, zero included."""
    rejections: list[Rejection]
    notes: list[str]
    """Warning-level observations that did not block ingestion (rewritten history, torn line)."""
    symbols_seen: int

    def summary(self) -> str:
        """One line for logs and alerts."""
        text = f"{self.bars_added} new bar(s) for {len(self.per_symbol)} symbol(s)"
        if self.rejections:
            text += f"; rejected: {', '.join(r.symbol for r in self.rejections)}"
        if self.notes:
            text += f"; {len(self.notes)} note(s)"
        return text


@dataclass
class _Outcome:
    added: int = 0
    cursor: FileCursor | None = None
    rejection: Rejection | None = None
    notes: list[str] = field(default_factory=list)


def ingest_directory(
    csv_dir: Path,
    store: BarStore,
    *,
    limits: BarLimits | None = None,
    track: Callable[[list[Path]], Iterable[Path]] = iter,
    not_after_ns: int | None = None,
) -> IngestReport:
    """Add the new bars of every ``*.csv`` in ``csv_dir`` (sorted by name) to ``store``.

    A file maps to the symbol ``stem.upper()``; an entry that cannot be read (permission, a
    folder, a broken link) or decoded is rejected like a bad row. Raises ``DataError`` if the
    folder is missing or holds no CSV file, and ``StateError`` if the store cannot be written
    (then the next run re-parses whatever this one could not record). ``track`` wraps the file
    list (the CLI's progress bar).

    ``not_after_ns`` (a replay's market clock): rows with a later timestamp are treated as not
    written yet, exactly like an unterminated last line: the cursor stops before the first of
    them and a later run reads them once the clock has passed them.
    """
    files = _csv_files(Path(csv_dir))
    cursors = store.cursors()
    new_cursors = dict(cursors)
    per_symbol: dict[str, int] = {}
    rejections: list[Rejection] = []
    notes: list[str] = []
    owners: dict[str, Path] = {}
    for path in track(files):
        symbol = path.stem.upper()
        if symbol in owners:
            reason = f"duplicate symbol {symbol}: {owners[symbol].name} already maps to it"
            rejections.append(Rejection(symbol, str(path), [RowProblem(None, reason)]))
            continue
        owners[symbol] = path
        outcome = _ingest_file(path, symbol, store, cursors.get(symbol), limits, not_after_ns)
        notes.extend(outcome.notes)
        if outcome.rejection is not None:
            rejections.append(outcome.rejection)
            continue
        per_symbol[symbol] = outcome.added
        if outcome.cursor is not None:
            new_cursors[symbol] = outcome.cursor
    if new_cursors != cursors:
        store.save_cursors(new_cursors)
    return IngestReport(
        bars_added=sum(per_symbol.values()),
        per_symbol=per_symbol,
        rejections=rejections,
        notes=notes,
        symbols_seen=len(owners),
    )


def csv_timestamps(csv_dir: Path) -> dict[str, NDArray[np.int64]]:
    """Every symbol's bar times in ``csv_dir`` (the rows that parse; a file that cannot be read
    has none), for a replay's plan. Raises ``DataError`` like :func:`ingest_directory`."""
    found: dict[str, NDArray[np.int64]] = {}
    for path in _csv_files(Path(csv_dir)):
        symbol = path.stem.upper()
        if symbol in found or not is_valid_symbol(symbol):
            continue
        try:
            found[symbol] = parse(path.read_bytes()).timestamps
        except OSError:
            found[symbol] = np.empty(0, dtype=np.int64)
    return found


def _csv_files(csv_dir: Path) -> list[Path]:
    if not csv_dir.is_dir():
        raise DataError(f"CSV folder {csv_dir} does not exist or is not a folder")
    try:  # names, not paths, are sorted (the same order in one folder, and far cheaper)
        with os.scandir(csv_dir) as entries:
            names = sorted(e.name for e in entries if os.path.splitext(e.name)[1].lower() == ".csv")
        files = [_csv_path(csv_dir, name) for name in names]
    except OSError as exc:
        raise DataError(f"cannot list CSV folder {csv_dir}: {exc}") from exc
    if not files:
        raise DataError(f"CSV folder {csv_dir} contains no *.csv file")
    return files


@functools.lru_cache(maxsize=4096)
def _csv_path(csv_dir: Path, name: str) -> Path:
    """``csv_dir / name``, built once per file (a cycle lists the folder again)."""
    return csv_dir / name


def _ingest_file(
    path: Path,
    symbol: str,
    store: BarStore,
    cursor: FileCursor | None,
    limits: BarLimits | None,
    bound: int | None,
) -> _Outcome:
    def reject(problems: list[RowProblem]) -> _Outcome:
        return _Outcome(rejection=Rejection(symbol, str(path), problems))

    if not is_valid_symbol(symbol):
        return reject([RowProblem(None, f"file name does not make a valid symbol: {symbol!r}")])
    if cursor is not None:
        appended = _ingest_tail(path, symbol, store, cursor, limits, bound)
        if appended is not None:
            return appended
    try:
        with path.open("rb") as handle:
            inode = os.fstat(handle.fileno()).st_ino
            data = handle.read()
        last = store.last_timestamp(symbol)
    except OSError as exc:
        return reject([RowProblem(None, f"unreadable file: {exc.strerror or exc}")])
    except StateError as exc:
        return reject([RowProblem(None, f"stored history unreadable: {exc}")])
    notes: list[str] = []
    matches = cursor is not None and _cursor_matches(cursor, path.name, data, inode, last)
    resume = cursor if matches else None
    if resume is not None:  # parse only the appended tail; it must be newer than the store
        parsed, hidden = parse_until(
            data, bound, offset=resume.offset, lines_before=resume.lines, after=last
        )
        new_ts, new_values, new_rows = parsed.timestamps, parsed.values, parsed.rows
    else:
        parsed, hidden = parse_until(data, bound)
        new_ts, new_values, notes = _newer_than_stored(path.name, parsed, store, symbol, last)
        new_rows = parsed.rows[parsed.timestamps > last] if last is not None else parsed.rows
    if parsed.problems:
        return reject(list(parsed.problems))
    if limits is not None and len(new_ts):
        implausible = implausible_bars(new_ts, new_values, new_rows, _last_close(store, symbol),
                                       limits)
        if implausible:
            return reject(implausible)
    grew = resume is None or parsed.consumed > resume.offset  # said when new lines arrive
    zones = _zones_seen(data, parsed.consumed, resume.offset if resume else 0) if grew else []
    if len(zones) > 1:
        notes.append(zones_note(path.name, zones))
    if cursor is not None and cursor.file == path.name and len(data) < cursor.size:
        notes.append(shrank_note(path.name, cursor.size, len(data)))
    try:
        added = store.append(symbol, new_ts, new_values)
    except DataError as exc:
        return reject([RowProblem(None, f"store refused the bars: {exc}")])
    last = store.last_timestamp(symbol)
    if not hidden:  # rows the replay clock has not reached are no "empty file" or torn line
        notes.extend(file_notes(path.name, data, parsed, last, cursor))
    if resume is not None and parsed.consumed == resume.offset:
        new_cursor = msgspec.structs.replace(resume, size=len(data))  # nothing new: skip hashing
    else:
        new_cursor = _make_cursor(path.name, data, inode, parsed, last)
    return _Outcome(added=added, cursor=new_cursor, notes=notes)


def _ingest_tail(
    path: Path,
    symbol: str,
    store: BarStore,
    cursor: FileCursor,
    limits: BarLimits | None,
    bound: int | None,
) -> _Outcome | None:
    """:func:`_ingest_file` for a file that only grew since ``cursor``, reading only its tail
    (:mod:`aistock_actors.store.ingest_tail`); None when that cannot vouch for the file (then
    the whole file is parsed). Same bars, rejections, notes and cursor as the whole-file path."""
    if cursor.file != path.name or cursor.last_timestamp is None:
        return None
    try:
        timestamps, values = store.arrays(symbol)
    except StateError:
        return None
    if not len(timestamps) or int(timestamps[-1]) != cursor.last_timestamp:
        return None
    last = cursor.last_timestamp
    tail = read_tail(path, cursor, last, bound)
    if tail is None:
        return None
    if limits is not None and len(tail.timestamps):
        implausible = implausible_bars(tail.timestamps, tail.values, tail.rows,
                                       float(values[-1, _CLOSE]), limits)
        if implausible:
            return _Outcome(rejection=Rejection(symbol, str(path), implausible))
    notes = _tail_notes(path.name, tail, cursor)
    try:
        added = store.append(symbol, tail.timestamps, tail.values)
    except DataError as exc:
        return _Outcome(rejection=Rejection(
            symbol, str(path), [RowProblem(None, f"store refused the bars: {exc}")]))
    if tail.pending and not tail.hidden and cursor.size == tail.size:
        notes.append(f"{path.name}: line {tail.lines + 1} still has no line end; it is read once "
                     "it is terminated")
    if tail.consumed == cursor.offset:  # nothing new
        return _Outcome(added=added, cursor=msgspec.structs.replace(cursor, size=tail.size),
                        notes=notes)
    new_cursor = msgspec.structs.replace(
        cursor,
        offset=tail.consumed,
        lines=tail.lines,
        size=tail.size,
        window_sha256=tail.window_sha256,
        last_timestamp=int(tail.timestamps[-1]) if added else last,
    )
    return _Outcome(added=added, cursor=new_cursor, notes=notes)


def _tail_notes(name: str, tail: Tail, cursor: FileCursor) -> list[str]:
    """The notes of the whole-file path before the append: mixed zones, a shrunk file."""
    notes: list[str] = []
    if len(tail.zones) > 1:
        notes.append(zones_note(name, tail.zones))
    if tail.size < cursor.size:
        notes.append(shrank_note(name, cursor.size, tail.size))
    return notes


_CLOSE = FIELDS.index("close")


def _header_end(data: bytes) -> int:
    return data.find(b"\n") + 1


def _cursor_matches(
    cursor: FileCursor, name: str, data: bytes, inode: int, last: int | None
) -> bool:
    """True if the file only grew since ``cursor`` and the store is where the cursor left it
    (the rule :func:`~aistock_actors.store.ingest_tail.read_tail` applies from the tail)."""
    offset = cursor.offset
    return (
        cursor.file == name
        and cursor.last_timestamp == last
        and cursor.inode == inode
        and bool(cursor.window_sha256)
        and 0 <= offset <= len(data)
        and sha256_hex(data[: _header_end(data)]) == cursor.header_sha256
        and sha256_hex(memoryview(data)[window_start(offset) : offset]) == cursor.window_sha256
    )


def _make_cursor(
    name: str, data: bytes, inode: int, parsed: ParsedBars, last: int | None
) -> FileCursor:
    end = parsed.consumed
    return FileCursor(
        file=name,
        offset=end,
        lines=parsed.lines,
        size=len(data),
        header_sha256=sha256_hex(data[: _header_end(data)]),
        last_timestamp=last,
        inode=inode,
        window_sha256=sha256_hex(memoryview(data)[window_start(end) : end]),
    )


def _newer_than_stored(
    name: str, parsed: ParsedBars, store: BarStore, symbol: str, last: int | None
) -> tuple[NDArray[np.int64], NDArray[np.float64], list[str]]:
    """Split a whole-file parse into bars to add and a note on overlapping bars that differ."""
    if last is None or not parsed.ok:
        return parsed.timestamps, parsed.values, []
    newer = parsed.timestamps > last
    old_ts, old_values = store.arrays(symbol)
    overlap_ts, overlap_values = parsed.timestamps[~newer], parsed.values[~newer]
    at = np.minimum(np.searchsorted(old_ts, overlap_ts), len(old_ts) - 1)
    same = (old_ts[at] == overlap_ts) & (old_values[at] == overlap_values).all(axis=1)
    notes: list[str] = []
    if not same.all():
        first = int(np.flatnonzero(~same)[0])
        row, when = int(parsed.rows[~newer][first]), format_timestamp(int(overlap_ts[first]))
        notes.append(
            f"{name}: rewritten; {int((~same).sum())} of {len(same)} bar(s) up to the last stored "
            f"bar {format_timestamp(last)} differ from stored history (first: line {row}, {when}); "
            "kept stored history, added only newer bars"
        )
    return parsed.timestamps[newer], parsed.values[newer], notes
