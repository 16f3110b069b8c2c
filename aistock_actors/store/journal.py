"""The paper account's fill journal: append-only, fsynced, one line per ledger write, from which
the ledger is rebuilt when both ``ledger.json`` and its ``.bak`` are gone or unreadable.

``state/paper/journal.jsonl`` holds one :class:`JournalEntry` per :meth:`PaperStore.save_ledger`,
written and fsynced BEFORE the ledger file is replaced (a write-ahead log). An entry carries the
account's small fields in full (cash, positions, open orders, scalars) and, for the growing lists
(fills, applied ids, equity curve), the length of the prefix kept plus the new tail (for the
fills and the equity points, after dropping the ones moved to their archives, ``fills_drop`` and
``curve_drop``). Replaying every entry
therefore reproduces the saved ledger exactly; a crash between the journal append and the ledger
write leaves the journal one write ahead, which :meth:`FillJournal.sync` closes at the next
start. A torn last line (a crash mid-append) is ignored; a damaged earlier line makes the journal
unusable for a rebuild (:class:`~aistock_actors.errors.StateError`, never a guess).

**Bounded** (#18): once the ledger file holds a write (:meth:`FillJournal.compact`, called after
``ledger.json`` is replaced) and the journal has more than :data:`COMPACT_AFTER` entries (or 256
KiB), it is replaced atomically by one entry that rebuilds the same ledger, so it never outgrows a
few ledger writes; a crash during the replacement leaves the old or the new journal, both ending at
that ledger. Appends are fsynced unless the process turned syncing off (a replay,
:func:`~aistock_actors.store.atomic.sync_to_disk`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from aistock_actors.core.trading.orders import (
    DrawdownMark,
    Fill,
    HistoryBase,
    LedgerState,
    Order,
    Position,
    ReturnsRecord,
)
from aistock_actors.errors import StateError
from aistock_actors.store.atomic import atomic_write_bytes, complete_lines, fsync_dir, syncing

JOURNAL_NAME = "journal.jsonl"
COMPACT_AFTER = 64
"""Entries after which a journal whose writes the ledger file holds is compacted to one."""
COMPACT_BYTES = 1 << 18
"""Size (256 KiB) after which it is compacted too (a big write: an old ledger migrated, #18)."""

T = TypeVar("T")


class JournalEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One ledger write: full small fields, prefix length + tail of the growing lists."""

    seq: int
    initial_cash: float
    cash: float
    positions: dict[str, Position]
    open_orders: list[Order]
    realised_pnl: float
    commissions_paid: float
    updated_at: str
    as_of: str
    as_of_ns: int | None
    model_id: str
    model_since: int
    drawdown_base: int
    drawdown_tripped: bool
    fills_keep: int
    fills: list[Fill]
    applied_keep: int
    applied: list[str]
    curve_keep: int
    curve: list[tuple[str, float]]
    fills_drop: int = 0
    """Fills dropped from the front of the previous list (moved to the archive) before keeping."""
    fills_archived: int = 0
    history_base: HistoryBase | None = None
    curve_drop: int = 0
    """Equity points dropped from the front of the previous curve (moved to the archive, #18)."""
    curve_archived: int = 0
    model_archived: ReturnsRecord | None = None
    drawdown_archived: DrawdownMark | None = None


def _common_prefix(old: list[Any], new: list[Any]) -> int:
    n = min(len(old), len(new))
    if old[:n] == new[:n]:  # the usual case: append-only lists
        return n
    k = 0
    while k < n and old[k] == new[k]:
        k += 1
    return k


def entry_for(previous: LedgerState | None, state: LedgerState, seq: int) -> JournalEntry:
    """The journal entry that turns ``previous`` (None: nothing) into ``state``."""
    drop = max(state.fills_archived - previous.fills_archived, 0) if previous else 0
    drop = min(drop, len(previous.fills)) if previous else 0
    old_fills = list(previous.fills[drop:]) if previous else []
    old_applied = list(previous.applied_order_ids) if previous else []
    cdrop = max(state.curve_archived - previous.curve_archived, 0) if previous else 0
    cdrop = min(cdrop, len(previous.equity_curve)) if previous else 0
    old_curve = list(previous.equity_curve[cdrop:]) if previous else []
    fk = _common_prefix(old_fills, list(state.fills))
    ak = _common_prefix(old_applied, list(state.applied_order_ids))
    ck = _common_prefix(old_curve, list(state.equity_curve))
    return JournalEntry(
        seq=seq,
        initial_cash=state.initial_cash,
        cash=state.cash,
        positions=dict(state.positions),
        open_orders=list(state.open_orders),
        realised_pnl=state.realised_pnl,
        commissions_paid=state.commissions_paid,
        updated_at=state.updated_at,
        as_of=state.as_of,
        as_of_ns=state.as_of_ns,
        model_id=state.model_id,
        model_since=state.model_since,
        drawdown_base=state.drawdown_base,
        drawdown_tripped=state.drawdown_tripped,
        fills_keep=fk,
        fills=list(state.fills[fk:]),
        applied_keep=ak,
        applied=list(state.applied_order_ids[ak:]),
        curve_keep=ck,
        curve=list(state.equity_curve[ck:]),
        fills_drop=drop,
        fills_archived=state.fills_archived,
        history_base=state.history_base,
        curve_drop=cdrop,
        curve_archived=state.curve_archived,
        model_archived=state.model_archived,
        drawdown_archived=state.drawdown_archived,
    )


def apply_entry(previous: LedgerState | None, entry: JournalEntry) -> LedgerState:
    """Replay one entry on top of ``previous``; :class:`StateError` if it does not fit."""
    fills = list(previous.fills[entry.fills_drop :]) if previous else []
    applied = list(previous.applied_order_ids) if previous else []
    curve = list(previous.equity_curve[entry.curve_drop :]) if previous else []
    if entry.fills_keep > len(fills) or entry.applied_keep > len(applied) or (
        entry.curve_keep > len(curve)
    ):
        raise StateError(f"journal entry {entry.seq} keeps more than the journal holds")
    return LedgerState(
        initial_cash=entry.initial_cash,
        cash=entry.cash,
        positions=dict(entry.positions),
        open_orders=list(entry.open_orders),
        applied_order_ids=applied[: entry.applied_keep] + list(entry.applied),
        fills=fills[: entry.fills_keep] + list(entry.fills),
        realised_pnl=entry.realised_pnl,
        commissions_paid=entry.commissions_paid,
        equity_curve=curve[: entry.curve_keep] + list(entry.curve),
        updated_at=entry.updated_at,
        as_of=entry.as_of,
        as_of_ns=entry.as_of_ns,
        model_id=entry.model_id,
        model_since=entry.model_since,
        drawdown_base=entry.drawdown_base,
        drawdown_tripped=entry.drawdown_tripped,
        fills_archived=entry.fills_archived,
        history_base=entry.history_base,
        curve_archived=entry.curve_archived,
        model_archived=entry.model_archived,
        drawdown_archived=entry.drawdown_archived,
    )


class FillJournal:
    """Append-only journal of ledger writes (``state/paper/journal.jsonl``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._tip: tuple[int, LedgerState | None] | None = None
        """(last seq, ledger the journal rebuilds to), cached after the first read."""
        self._length = 0
        """Entries in the file (known once ``_tip`` is)."""
        self._bytes = 0
        """Its size in bytes (known once ``_tip`` is)."""

    def entries(self) -> list[JournalEntry]:
        """Every complete entry, oldest first; :class:`StateError` naming a damaged line."""
        lines = complete_lines(self.path)
        entries: list[JournalEntry] = []
        for number, line in enumerate(lines, start=1):
            try:
                entries.append(msgspec.json.decode(line, type=JournalEntry))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise StateError(f"{self.path}: line {number} is damaged: {exc}") from exc
        return entries

    def rebuild(self) -> LedgerState | None:
        """The ledger the journal describes (None if it holds nothing)."""
        state: LedgerState | None = None
        seq = 0
        entries = self.entries()
        for entry in entries:
            state = apply_entry(state, entry)
            seq = entry.seq
        self._tip = (seq, state)
        self._length = len(entries)
        self._bytes = self.path.stat().st_size if entries else 0
        return state

    def append(self, state: LedgerState) -> None:
        """Durably record that the ledger becomes ``state`` (fsynced before returning)."""
        if self._tip is None:
            self.rebuild()
        assert self._tip is not None
        seq, tip = self._tip
        if tip == state:
            return
        entry = entry_for(tip, state, seq + 1)
        line = msgspec.json.encode(entry) + b"\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            self._drop_torn_tail(fd)
            os.write(fd, line)
            if syncing():
                os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_dir(self.path.parent)
        self._tip = (seq + 1, state)
        self._length += 1
        self._bytes += len(line)

    def compact(self, state: LedgerState) -> bool:
        """Replace a journal of more than :data:`COMPACT_AFTER` entries (or :data:`COMPACT_BYTES`)
        ending at ``state`` (which the ledger file now holds) by one entry rebuilding ``state``;
        True if it did."""
        if self._tip is None or self._tip[1] != state:
            return False
        if self._length <= COMPACT_AFTER and self._bytes <= COMPACT_BYTES:
            return False
        seq = self._tip[0]
        line = msgspec.json.encode(entry_for(None, state, seq)) + b"\n"
        atomic_write_bytes(self.path, line, keep_backup=False)
        self._length, self._bytes = 1, len(line)
        return True

    def _drop_torn_tail(self, fd: int) -> None:
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return
        data = os.pread(fd, size, 0)
        os.ftruncate(fd, data.rfind(b"\n") + 1)

    def sync(self, state: LedgerState) -> bool:
        """Make the journal end at ``state`` (the ledger on disk); True if it had to append."""
        if self._tip is None:
            self.rebuild()
        assert self._tip is not None
        if self._tip[1] == state:
            return False
        self.append(state)
        return True
