"""Append-only, hash-chained audit log: ``state/audit/log.jsonl``.

One JSON object per line with ``ts``, ``action``, ``actor``, ``details`` and ``prev`` — the
sha256 of the previous line's bytes (64 zeros for the first line) — and, while a replay drives
the market clock, ``as_of``: the market time beside the wall time ``ts``. A record is written and
fsynced before :meth:`AuditLog.append` returns, so an action reported done is on disk. Several
processes may append (the daemon and an operator's ``--kill``): an exclusive ``flock`` on the file
serialises them and the chain is always extended from the line actually on disk.

A crash mid-write can leave a torn last line (no trailing newline). Readers skip and report it;
the next append truncates it first (it was never acknowledged) and records
``audit_torn_tail_discarded``.

Rotation (#18, ``max_bytes``): when the log reaches its size it is renamed ``log.<NNNNNN>.jsonl``
and the new log starts with an ``audit_log_rotated`` record whose ``prev`` is the hash of the old
file's last line, so the chain runs on across files; only the newest ``keep_files`` rotated files
are kept (a bounded log). :func:`verify_audit_log` walks the kept files in order.

With an :class:`~aistock_actors.store.audit_anchor.AuditAnchor` (#17) every append also rewrites
the keyed head record kept outside the state folder, and :func:`verify_audit_log` checks the log
against it: a cut tail, a deleted log or a recomputed chain no longer verify.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from aistock_actors.runtime.clock import SYSTEM_CLOCK, Clock, iso_utc, market_iso
from aistock_actors.store.atomic import fsync_dir, syncing

if TYPE_CHECKING:
    from aistock_actors.store.audit_anchor import AuditAnchor

GENESIS = "0" * 64
_CHUNK = 8192


def utc_now_iso(clock: Clock = SYSTEM_CLOCK) -> str:
    """The clock's wall time as an ISO-8601 string with microseconds and a ``Z``."""
    return iso_utc(clock.now(), timespec="microseconds")


def line_hash(line: bytes) -> str:
    """sha256 of one audit line's bytes, without its newline."""
    return hashlib.sha256(line).hexdigest()


class AuditRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One audit line."""

    ts: str
    """Wall time of the record."""
    as_of: str | None = None
    """The market time, while a replay drives it (:meth:`Clock.is_simulated`); absent live."""
    action: str
    actor: str
    details: dict[str, Any]
    prev: str


class AuditVerification(msgspec.Struct, frozen=True, kw_only=True):
    """Result of checking the whole chain."""

    ok: bool
    records: int
    first_broken_line: int | None = None
    reason: str | None = None
    torn_tail: bool = False


_ENCODER = msgspec.json.Encoder()
_RECORD_DECODER = msgspec.json.Decoder(AuditRecord)


def _last_complete_line(handle: Any) -> tuple[bytes | None, int, bool]:
    """Return (last complete line, offset where complete data ends, torn tail present)."""
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    if size == 0:
        return None, 0, False
    buf = b""
    pos = size
    while pos > 0:
        step = min(_CHUNK, pos)
        pos -= step
        handle.seek(pos)
        buf = handle.read(step) + buf
        # Need two newlines to isolate a complete line that is not the very first one.
        if buf.count(b"\n") >= 2 or pos == 0:
            break
    torn = not buf.endswith(b"\n")
    end_complete = pos + buf.rfind(b"\n") + 1 if b"\n" in buf else 0
    if end_complete == 0:
        return None, 0, torn
    body = buf[: end_complete - pos - 1]
    start = body.rfind(b"\n") + 1
    return body[start:], end_complete, torn


class AuditLog:
    """Thread- and process-safe appender for the audit log."""

    def __init__(
        self,
        path: Path,
        *,
        redact: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        anchor: AuditAnchor | None = None,
        max_bytes: int | None = None,
        keep_files: int = 20,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.keep_files = keep_files
        self._lock = threading.Lock()
        self._redact = redact
        self.clock = clock
        self.anchor = anchor
        self._known: tuple[int, int] | None = None
        """(offset where complete lines end, how many there are), while this process knows."""
        self.head: str | None = None
        """Hash of the last record this instance appended (the chain head; in health reports)."""

    def _count_through(self, handle: Any, end: int) -> int:
        if self._known is not None and self._known[0] == end:
            return self._known[1]
        handle.seek(0)
        return int(handle.read(end).count(b"\n"))

    def append(self, action: str, actor: str, details: dict[str, Any] | None = None) -> AuditRecord:
        """Append one record, fsync it, and return it."""
        payload = dict(details or {})
        if self._redact is not None:
            payload = self._redact(payload)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        with self._lock:
            handle = self._open_locked()
            try:
                last, end_complete, torn = _last_complete_line(handle)
                prev = line_hash(last) if last is not None else GENESIS
                if torn:
                    handle.seek(0, os.SEEK_END)
                    discarded = handle.tell() - end_complete
                    handle.truncate(end_complete)
                    note = self._encode(
                        "audit_torn_tail_discarded", "audit", {"bytes": discarded}, prev
                    )
                    handle.seek(0, os.SEEK_END)
                    handle.write(note + b"\n")
                    prev = line_hash(note)
                full = self.max_bytes is not None and last is not None and (
                    handle.seek(0, os.SEEK_END) >= self.max_bytes
                )
                if full:
                    handle, prev = self._rotate(handle, prev)
                record = AuditRecord(
                    ts=utc_now_iso(self.clock),
                    as_of=market_iso(self.clock),
                    action=action,
                    actor=actor,
                    details=payload,
                    prev=prev,
                )
                count = self._count_through(handle, handle.seek(0, os.SEEK_END))
                line = _ENCODER.encode(record)
                handle.seek(0, os.SEEK_END)
                handle.write(line + b"\n")
                handle.flush()
                if syncing():  # off only in a replay's process (store/atomic.py)
                    os.fsync(handle.fileno())
                self._known = (handle.tell(), count + 1)
                self.head = line_hash(line)
                if self.anchor is not None:  # under the flock: heads are written in order
                    self.anchor.write(count + 1, self.head)
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
                handle.close()
        if created:
            fsync_dir(self.path.parent)
        return record

    def _open_locked(self) -> Any:
        """Open and flock the CURRENT log (another process may have rotated it meanwhile)."""
        while True:
            handle = open(self.path, "a+b")  # noqa: SIM115 (closed by append)
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                same = os.stat(self.path).st_ino == os.fstat(handle.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return handle
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()

    def _rotate(self, old: Any, prev: str) -> tuple[Any, str]:
        """Rename the full log aside, start the next one chained to it; prune the oldest."""
        kept = rotated_files(self.path)
        number = _rotation_number(kept[-1]) + 1 if kept else 1
        target = self.path.with_name(f"{self.path.stem}.{number:06d}{self.path.suffix}")
        os.replace(self.path, target)
        new = open(self.path, "a+b")  # noqa: SIM115 (closed by append)
        fcntl.flock(new.fileno(), fcntl.LOCK_EX)
        fcntl.flock(old.fileno(), fcntl.LOCK_UN)
        old.close()
        note = self._encode("audit_log_rotated", "audit", {"previous_file": target.name}, prev)
        new.write(note + b"\n")
        self._known = None
        for stale in [*kept, target][: max(0, len(kept) + 1 - self.keep_files)]:
            stale.unlink(missing_ok=True)
        fsync_dir(self.path.parent)
        return new, line_hash(note)

    def _encode(self, action: str, actor: str, details: dict[str, Any], prev: str) -> bytes:
        record = AuditRecord(
            ts=utc_now_iso(self.clock),
            as_of=market_iso(self.clock),
            action=action,
            actor=actor,
            details=details,
            prev=prev,
        )
        return _ENCODER.encode(record)


_ROTATED = re.compile(r"\.(\d{6})$")


def _rotation_number(path: Path) -> int:
    match = _ROTATED.search(path.stem)
    return int(match.group(1)) if match else 0


def rotated_files(path: Path) -> list[Path]:
    """The rotated parts of the log at ``path`` (``log.000001.jsonl`` ...), oldest first."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    found = [p for p in path.parent.glob(f"{path.stem}.*{path.suffix}")
             if _ROTATED.search(p.stem)]
    return sorted(found, key=_rotation_number)


def iter_lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """Yield (1-based line number, line bytes, is_complete) for every line of the file."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            complete = raw.endswith(b"\n")
            yield number, raw.rstrip(b"\n"), complete


def read_audit(path: Path) -> tuple[list[AuditRecord], bool]:
    """All readable records and whether a torn last line was skipped."""
    records: list[AuditRecord] = []
    torn = False
    if not Path(path).exists():
        return records, False
    for _, line, complete in iter_lines(path):
        if not complete:
            torn = True
            break
        try:
            records.append(_RECORD_DECODER.decode(line))
        except msgspec.DecodeError:
            continue
    return records, torn


def verify_audit_log(path: Path, anchor: AuditAnchor | None = None) -> AuditVerification:
    """Check every line parses and chains to its predecessor; name the first broken line.

    With ``anchor``, the log must also still hold the anchored head record at its position.
    """
    result, hashes = _verify_chain(path)
    if anchor is None or not result.ok:
        return result
    head, problem = anchor.read()
    if problem is not None:
        return msgspec.structs.replace(result, ok=False, reason=problem)
    if head is None:
        return result
    if not Path(path).exists() and head.records > 0:
        return msgspec.structs.replace(result, ok=False, reason=(
            f"the audit log is missing but its anchored head records {head.records} records"))
    if len(hashes) < head.records:
        return msgspec.structs.replace(result, ok=False, first_broken_line=len(hashes) + 1,
                                       reason=(f"the log was cut: it holds {len(hashes)} records, "
                                               f"its anchored head {head.records}"))
    if head.records and hashes[head.records - 1] != head.last_hash:
        return msgspec.structs.replace(result, ok=False, first_broken_line=head.records, reason=(
            "the chain was rewritten: this line is not the anchored head record "
            "(lines edited and the chain recomputed)"))
    return result


def _verify_chain(path: Path) -> tuple[AuditVerification, list[str]]:
    """Walk the kept rotated files and the log in order; the current log's line hashes."""
    path = Path(path)
    files = [*rotated_files(path), *([path] if path.exists() else [])]
    hashes: list[str] = []
    prev: str | None = None  # the oldest kept file may continue a pruned one
    count = 0
    for part in files:
        hashes = []
        where = "" if part == path else f"{part.name}: "
        for number, line, complete in iter_lines(part):
            if not complete:
                return AuditVerification(ok=True, records=count, torn_tail=True), hashes
            try:
                record = _RECORD_DECODER.decode(line)
            except msgspec.DecodeError as exc:
                return AuditVerification(ok=False, records=count, first_broken_line=number,
                                         reason=f"{where}unreadable: {exc}"), hashes
            if prev is None:
                prev = record.prev if record.action == "audit_log_rotated" else GENESIS
            if record.prev != prev:
                return AuditVerification(
                    ok=False,
                    records=count,
                    first_broken_line=number,
                    reason=f"{where}hash chain broken: this line's 'prev' does not match the line "
                    "before it (that line or this one was edited, removed or inserted)",
                ), hashes
            prev = line_hash(line)
            hashes.append(prev)
            count += 1
    return AuditVerification(ok=True, records=count), hashes
