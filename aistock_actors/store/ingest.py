"""Incremental ingestion of a folder of ``<SYMBOL>.csv`` files into a ``BarStore``.

Each file keeps a cursor (offset and line count of the last fully parsed line, hashes of the header
and of every byte before the offset, and the store's last bar at that time). When the cursor still
matches, only the appended tail is parsed and every new bar must be strictly newer than the stored
history. Otherwise (file rewritten or shrunk, cursor lost or stale after a crash) the file is
re-parsed whole and only bars strictly newer than the stored history are added; overlapping bars
that differ from the stored ones are kept as stored and reported as a note.

A file with any bad row is rejected whole for this run (all-or-nothing per symbol; silently
skipping rows of trading data is worse than waiting for a fix); its stored bars and cursor are left
untouched and the other files still ingest. An unterminated last line is left for the next run.

Bars from the future or from another planet are refused the same way (#17, :class:`BarLimits`): a
new bar later than the clock's market time plus a tolerance, a price beyond a relative jump from
the previous close, or an impossible magnitude rejects its file with the row and the reason, so
one ``2099-01-01`` row never reaches the store. A file that shrank since the last run is a note.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np
from numpy.typing import NDArray

from aistock_actors.core.data.bars import (
    ParsedBars,
    RowProblem,
    format_timestamp,
    parse,
    parse_header,
    row_timestamp,
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
from aistock_actors.store.ingest_checks import (
    implausible_bars as implausible_bars,
)

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
    try:
        files = sorted(p for p in csv_dir.iterdir() if p.suffix.lower() == ".csv")
    except OSError as exc:
        raise DataError(f"cannot list CSV folder {csv_dir}: {exc}") from exc
    if not files:
        raise DataError(f"CSV folder {csv_dir} contains no *.csv file")
    return files


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
    try:
        data = path.read_bytes()
        last = store.last_timestamp(symbol)
    except OSError as exc:
        return reject([RowProblem(None, f"unreadable file: {exc.strerror or exc}")])
    except StateError as exc:
        return reject([RowProblem(None, f"stored history unreadable: {exc}")])
    notes: list[str] = []
    matches = cursor is not None and _cursor_matches(cursor, path.name, data, last)
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
        notes.append(f"{path.name}: mixed time zones in the timestamp column ({', '.join(zones)});"
                     " each is converted to UTC, so two bars may fall on one date: check the "
                     "source")
    if cursor is not None and cursor.file == path.name and len(data) < cursor.size:
        notes.append(f"{path.name}: shrank from {cursor.size} to {len(data)} bytes since the last "
                     "run; stored bars kept, only bars newer than them are added")
    try:
        added = store.append(symbol, new_ts, new_values)
    except DataError as exc:
        return reject([RowProblem(None, f"store refused the bars: {exc}")])
    last = store.last_timestamp(symbol)
    if not hidden:  # rows the replay clock has not reached are no "empty file" or torn line
        notes.extend(_file_notes(path.name, data, parsed, last, cursor))
    if resume is not None and parsed.consumed == resume.offset:
        new_cursor = msgspec.structs.replace(resume, size=len(data))  # nothing new: skip hashing
    else:
        new_cursor = _make_cursor(path.name, data, parsed, last)
    return _Outcome(added=added, cursor=new_cursor, notes=notes)




def parse_until(
    data: bytes,
    bound: int | None,
    *,
    offset: int = 0,
    lines_before: int = 0,
    after: int | None = None,
) -> tuple[ParsedBars, bool]:
    """:func:`parse` of the lines up to the first bar newer than ``bound``; ``(parsed, hidden)``
    where ``hidden`` says that rows after the bound exist (then ``consumed`` stops before them).

    The lines are read in growing chunks from ``offset``, so a replay step that reveals one bar
    parses a few lines, not the rest of the file. Rows after the bound do not exist yet: their
    problems are not this run's either.
    """
    if bound is None:
        return parse(data, offset=offset, lines_before=lines_before, after=after), False
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == _NEWLINE) + 1
    first = int(np.searchsorted(ends, offset, side="right"))  # first line end after offset
    chunk = 4  # a replay step usually reveals one bar
    while True:
        last = first + chunk - 1
        cut = int(ends[last]) if last < len(ends) else len(data)
        parsed = parse(data[:cut], offset=offset, lines_before=lines_before, after=after)
        row = _first_row_after(data, ends, parsed, bound)
        if row is not None:  # 1-based line: it starts where line row - 1 ends
            return _before_row(parsed, row, int(ends[row - 2])), True
        if cut == len(data):
            return parsed, False
        chunk *= 4


def _before_row(parsed: ParsedBars, row: int, stop: int) -> ParsedBars:
    """``parsed`` cut before line ``row`` (which starts at byte ``stop``): exactly the parse of
    the bytes before it, since a row's checks look only at the rows before it."""
    keep = parsed.rows < row
    return ParsedBars(
        timestamps=parsed.timestamps[keep],
        values=parsed.values[keep],
        rows=parsed.rows[keep],
        problems=tuple(p for p in parsed.problems if p.row is None or p.row < row),
        consumed=stop,
        lines=row - 1,
        pending=False,
    )


def _first_row_after(
    data: bytes, ends: NDArray[np.int64], parsed: ParsedBars, bound: int
) -> int | None:
    """The first line holding a bar newer than ``bound``: a good row, or a bad one whose own
    timestamp says it is not written yet at the bound."""
    later = np.flatnonzero(parsed.timestamps > bound)
    first = int(parsed.rows[later[0]]) if len(later) else None
    bad = [p.row for p in parsed.problems if p.row is not None and p.row > 1]
    if not bad:
        return first
    try:
        columns = parse_header(data[: int(ends[0])].decode("utf-8").removeprefix("\ufeff").strip())
    except (DataError, UnicodeDecodeError):
        return first
    for line in bad:
        if first is not None and line > first:
            break
        text = data[int(ends[line - 2]) : int(ends[line - 1])].decode("utf-8", "replace")
        ts = row_timestamp(text.rstrip("\r\n"), columns)
        if ts is not None and ts > bound:
            return line
    return first


_NEWLINE = ord("\n")


def _sha256(data: bytes, end: int) -> str:
    return hashlib.sha256(memoryview(data)[:end]).hexdigest()


def _header_end(data: bytes) -> int:
    return data.find(b"\n") + 1


def _cursor_matches(cursor: FileCursor, name: str, data: bytes, last: int | None) -> bool:
    """True if the file only grew since ``cursor`` and the store is where the cursor left it."""
    return (
        cursor.file == name
        and cursor.last_timestamp == last
        and 0 <= cursor.offset <= len(data)
        and _sha256(data, _header_end(data)) == cursor.header_sha256
        and _sha256(data, cursor.offset) == cursor.prefix_sha256
    )


def _make_cursor(name: str, data: bytes, parsed: ParsedBars, last: int | None) -> FileCursor:
    return FileCursor(
        file=name,
        offset=parsed.consumed,
        lines=parsed.lines,
        size=len(data),
        header_sha256=_sha256(data, _header_end(data)),
        prefix_sha256=_sha256(data, parsed.consumed),
        last_timestamp=last,
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


def _file_notes(
    name: str, data: bytes, parsed: ParsedBars, last: int | None, previous: FileCursor | None
) -> list[str]:
    """Notes that need no action unless they persist, so each is said once, not every run."""
    unchanged = previous is not None and previous.file == name and previous.size == len(data)
    if parsed.pending:
        # Seen for the first time, the line is most likely still being written: say nothing.
        if not unchanged:
            return []
        line = parsed.lines + 1
        return [f"{name}: line {line} still has no line end; it is read once it is terminated"]
    if last is None and not unchanged:
        what = "empty file" if not data.strip() else "header only"
        return [f"{name}: {what}, no bars yet"]
    return []
