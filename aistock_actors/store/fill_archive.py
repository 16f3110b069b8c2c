"""The paper account's archived fills (#18): append-only monthly files under ``state/paper/fills``
(:class:`MonthlyArchive`, the files' mechanics, serves the equity points' archive too).

``state/paper/fills/YYYY-MM.jsonl`` holds one :class:`ArchivedFill` per line (the fill's fields
plus ``seq``, its number in the account's life), oldest first, by the month of the fill's bar
(``undated.jsonl`` for a fill without a bar timestamp). Fills move here from ``ledger.json`` in
batches (:func:`~aistock_actors.core.trading.history.split_history`), BEFORE the ledger that no
longer holds them is written; after a crash in between a fill is in both, and the next move
appends only the fills past the archive's high-water mark (the newest ``seq`` on disk), so no
fill is lost and none is archived twice. A torn last line (a crash mid-append) is dropped before
the next append and ignored by readers. :meth:`FillArchive.read` gives every archived fill once,
by ``seq``; so does the README's jq line (the ledger's ``fills_archived`` says how many of them
precede its window)::

    cat state/paper/fills/*.jsonl | jq -s 'unique_by(.seq)'
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import msgspec

from aistock_actors.core.trading.orders import Fill
from aistock_actors.errors import StateError
from aistock_actors.store.atomic import complete_lines, fsync_dir, syncing

FILLS_DIR = "fills"
"""``state/paper/fills/``."""
_MONTH = re.compile(r"^(\d{4})-(\d{2})")


class ArchivedFill(Fill, frozen=True, kw_only=True):
    """One archived fill: the ledger's :class:`Fill` and its number in the account's life."""

    seq: int


def month_name(timestamp: str) -> str:
    """The archive file of a fill at bar ``timestamp`` (``2024-03-01`` -> ``2024-03.jsonl``)."""
    match = _MONTH.match(timestamp)
    return f"{match.group(1)}-{match.group(2)}.jsonl" if match else "undated.jsonl"


def _lines(path: Path) -> list[bytes]:
    return [line for line in complete_lines(path) if line]


def _last_line(path: Path, tail: int = 65_536) -> bytes:
    """The last complete line of ``path`` (a torn one ignored), reading only its end."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            start = max(size - tail, 0)
            handle.seek(start)
            data = handle.read()
    except OSError as exc:
        raise StateError(f"{path}: unreadable: {exc.strerror or exc}") from exc
    end = data.rfind(b"\n")
    if end < 0:
        return b""
    begin = data.rfind(b"\n", 0, end) + 1
    if begin == 0 and start > 0:
        return _last_line(path, tail * 4)  # a line longer than the tail read
    return data[begin:end]


class Numbered(Protocol):
    """An archived record: its number in the account's life and its bar's timestamp."""

    @property
    def seq(self) -> int: ...

    @property
    def timestamp(self) -> str: ...


R = TypeVar("R", bound=Numbered)


class MonthlyArchive(Generic[R]):
    """Append-only monthly ``*.jsonl`` files of numbered records (one writer); the fills' and the
    equity points' archives (``store/equity_archive.py``) are two of them."""

    record_type: type[R]

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._mark: int | None = None
        """Newest archived ``seq`` + 1 (how many records the archive holds), cached."""

    def _decode(self, path: Path, number: int, line: bytes) -> R:
        try:
            return msgspec.json.decode(line, type=self.record_type)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            where = f"line {number}" if number else "the last line"
            raise StateError(f"{path}: {where} is damaged: {exc}") from exc

    def files(self) -> list[Path]:
        """The archive files, by name (so by month)."""
        return sorted(self.root.glob("*.jsonl")) if self.root.is_dir() else []

    def high_water(self) -> int:
        """How many records are archived: the newest ``seq`` on disk plus one (0 when empty);
        reads only the tail of each file."""
        if self._mark is None:
            mark = 0
            for path in self.files():
                line = _last_line(path)
                if line:
                    mark = max(mark, self._decode(path, 0, line).seq + 1)
            self._mark = mark
        return self._mark

    def append_records(self, records: Iterable[R]) -> int:
        """Archive ``records`` (numbered in order), skipping those already archived (a move
        repeated after a crash); fsynced unless the process turned syncing off. How many were
        written. (A gap before the first, archive files deleted by hand, is the caller's to
        report: :meth:`high_water` says where the archive ends.)"""
        mark = self.high_water()
        by_file: dict[str, list[bytes]] = {}
        written = 0
        for record in records:
            if record.seq < mark:
                continue
            by_file.setdefault(month_name(record.timestamp), []).append(
                msgspec.json.encode(record))
            mark = record.seq + 1
            written += 1
        for name, lines in by_file.items():
            self._append_lines(self.root / name, lines)
        self._mark = mark
        return written

    def _append_lines(self, path: Path, lines: list[bytes]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":  # a torn append: drop it
                os.ftruncate(fd, os.pread(fd, size, 0).rfind(b"\n") + 1)
            os.write(fd, b"\n".join(lines) + b"\n")
            if syncing():
                os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_dir(path.parent)

    def read(self, since: int = 0) -> list[R]:
        """Every archived record once (by ``seq``), oldest first; :class:`StateError` naming a
        damaged line. ``since``: the records numbered ``since`` and later are all there, the
        month files older than the one holding ``since`` are not read."""
        by_seq: dict[int, R] = {}
        for path in reversed(self.files()):
            records = [self._decode(path, n, line) for n, line in enumerate(_lines(path), 1)]
            by_seq.update((r.seq, r) for r in records if r.seq not in by_seq)
            if since and path.name != "undated.jsonl" and min(
                    (r.seq for r in records), default=since + 1) <= since:
                break
        return [by_seq[seq] for seq in sorted(by_seq)]


class FillArchive(MonthlyArchive[ArchivedFill]):
    """Reads and appends the files of ``state/paper/fills`` (one writer: the PaperTrader)."""

    record_type = ArchivedFill

    def append(self, fills: Iterable[Fill], first_seq: int) -> int:
        """Archive ``fills`` numbered from ``first_seq`` (:meth:`append_records`)."""
        return self.append_records(
            ArchivedFill(**msgspec.structs.asdict(fill), seq=seq)
            for seq, fill in enumerate(fills, start=first_seq)
        )


def plain_fill(record: ArchivedFill) -> Fill:
    """The ledger's :class:`Fill` of an archived one."""
    fields = msgspec.structs.asdict(record)
    del fields["seq"]
    return Fill(**fields)
