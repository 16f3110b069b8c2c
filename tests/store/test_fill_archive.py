"""#18: the paper ledger's old fills move to append-only monthly files; an old-format ledger is
migrated; nothing is lost or archived twice; the journal is compacted and unsynced in a replay."""

from __future__ import annotations

import functools
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from aistock_actors.core.trading.history import ARCHIVE_BATCH, RECENT_FILLS, fill_count
from aistock_actors.core.trading.ledger import (
    LedgerState,
    performance_snapshot,
    reconcile,
)
from aistock_actors.errors import StateError
from aistock_actors.store import atomic
from aistock_actors.store.alerts import AlertSink, list_alerts
from aistock_actors.store.fill_archive import FillArchive, month_name
from aistock_actors.store.journal import COMPACT_AFTER, FillJournal
from aistock_actors.store.ledger import PaperStore
from aistock_actors.store.paper_status import paper_status

FIXTURE = Path(__file__).parent / "fixtures" / "ledger_v1"


@functools.cache
def old_ledger() -> LedgerState:
    return msgspec.json.decode((FIXTURE / "ledger.json").read_bytes(), type=LedgerState)


def first(state: LedgerState, n: int) -> LedgerState:
    """The fixture account cut after its first ``n`` fills (cash etc. as replayed)."""
    from aistock_actors.core.trading.execution import replay_fills

    fills = state.fills[:n]
    book, _ = replay_fills(state.initial_cash, fills)
    return msgspec.structs.replace(
        state, fills=fills, cash=book.cash, realised_pnl=book.realised,
        commissions_paid=book.commissions, positions=book.positions,
        applied_order_ids=[f.order_id for f in fills])


def grow(saved: LedgerState | None, n: int) -> LedgerState:
    """What the trader writes next: the saved window plus the fixture's fills up to ``n``."""
    full = first(old_ledger(), n)
    if saved is None:
        return full
    return msgspec.structs.replace(
        full, fills=[*saved.fills, *full.fills[fill_count(saved):]],
        fills_archived=saved.fills_archived, history_base=saved.history_base)


def store_at(tmp_path: Path, **kwargs: int) -> PaperStore:
    return PaperStore(tmp_path / "state", AlertSink(tmp_path / "alerts"), 100_000.0, **kwargs)


def codes(tmp_path: Path, severity: str) -> list[str]:
    return [p.name for p in list_alerts(tmp_path / "alerts", severity)]


def test_an_old_format_ledger_is_migrated_and_keeps_every_fill(tmp_path: Path) -> None:
    store = store_at(tmp_path, keep_closing_fills=30)
    store.root.mkdir(parents=True)
    for name in ("ledger.json", "journal.jsonl"):
        shutil.copy(FIXTURE / name, store.root / name)
    old = old_ledger()
    opened = store.open_ledger()
    assert len(opened.fills) == RECENT_FILLS and fill_count(opened) == len(old.fills) == 120
    assert reconcile(opened) == []
    assert store.fills_since(0) == old.fills  # archive + window: every fill once, in order
    assert (opened.cash, opened.positions) == (old.cash, old.positions)
    assert performance_snapshot(opened, 30) == performance_snapshot(old, 30)
    assert any("paper_ledger_migrated" in c for c in codes(tmp_path, "info"))
    on_disk = msgspec.json.decode(store.ledger_path.read_bytes(), type=LedgerState)
    assert on_disk == opened and len(store.ledger_path.read_bytes()) < 70_596 // 3
    # 100 fills of January and February archived; the window is the last 10 days of March
    assert [p.name for p in store.archive.files()] == ["2024-01.jsonl", "2024-02.jsonl"]
    assert FillJournal(store.journal.path).rebuild() == opened  # the old journal replays on
    assert paper_status(tmp_path / "state") is not None
    assert paper_status(tmp_path / "state").fills == 120  # type: ignore[union-attr]


def test_fills_move_in_batches_and_the_documented_jq_line_counts_each_once(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    old = old_ledger()
    written: list[LedgerState] = []
    for n in range(1, 121):
        written.append(store.save_ledger(grow(written[-1] if written else None, n)))
        assert reconcile(written[-1]) == []
    assert max(len(s.fills) for s in written) == RECENT_FILLS + ARCHIVE_BATCH
    assert written[-1].fills_archived + len(written[-1].fills) == 120
    records = [json.loads(line) for path in sorted(store.archive.root.glob("*.jsonl"))
               for line in path.read_text().splitlines()]
    # cat state/paper/fills/*.jsonl | jq -s 'unique_by(.seq) | length'  (+ the window)
    assert len({r["seq"] for r in records}) == written[-1].fills_archived
    assert [r["order_id"] for r in records] == [f.order_id for f in old.fills][: len(records)]
    assert store.fills_since(0) == old.fills
    assert store.fills_since(117) == old.fills[117:]


def test_a_crash_between_archive_and_ledger_write_archives_nothing_twice(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    old = old_ledger()
    saved = None
    for n in range(1, RECENT_FILLS + ARCHIVE_BATCH + 1):
        saved = store.save_ledger(grow(saved, n))
    state = grow(saved, RECENT_FILLS + ARCHIVE_BATCH + 1)
    assert store.archive.append(state.fills[: ARCHIVE_BATCH + 1], 0) == ARCHIVE_BATCH + 1
    # ... killed here: the archive holds the batch, the ledger on disk still holds it too
    again = store_at(tmp_path)  # the restarted process sees the old ledger and moves again
    reopened = again.open_ledger()
    assert reopened == saved and reopened.fills_archived == 0
    again.save_ledger(grow(reopened, RECENT_FILLS + ARCHIVE_BATCH + 2))
    seqs = [r.seq for r in FillArchive(again.archive.root).read()]
    lines = sum(len(p.read_bytes().splitlines()) for p in again.archive.files())
    assert seqs == list(range(ARCHIVE_BATCH + 2)) and lines == ARCHIVE_BATCH + 2
    assert again.fills_since(0) == old.fills[: RECENT_FILLS + ARCHIVE_BATCH + 2]


def test_a_torn_archive_line_is_dropped_and_a_damaged_one_named(tmp_path: Path) -> None:
    archive = FillArchive(tmp_path / "fills")
    fills = old_ledger().fills
    archive.append(fills[:3], 0)
    path = archive.root / month_name(fills[0].timestamp)
    with path.open("ab") as handle:
        handle.write(b'{"seq": 3, "order_id"')  # a crash mid-append
    reread = FillArchive(archive.root)
    assert [r.seq for r in reread.read()] == [0, 1, 2] and reread.high_water() == 3
    reread.append(fills[:5], 0)  # the torn tail is dropped, not glued to; 0..2 not repeated
    assert [r.seq for r in FillArchive(archive.root).read()] == [0, 1, 2, 3, 4]
    path.write_bytes(b"garbage\n" + path.read_bytes())
    with pytest.raises(StateError, match=r"2024-01.jsonl: line 1 is damaged"):
        FillArchive(archive.root).read()
    assert month_name("") == "undated.jsonl" and month_name("2024-03-01T21:00:00Z") == (
        "2024-03.jsonl")


def test_deleted_archive_files_raise_an_error_alert_and_archiving_goes_on(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    old = old_ledger()
    saved = None
    for n in range(1, 100):
        saved = store.save_ledger(grow(saved, n))
    assert store.archive.files()
    for path in store.archive.files():
        path.unlink()
    later = store_at(tmp_path)
    saved = later.open_ledger()
    for n in range(100, 121):
        saved = later.save_ledger(grow(saved, n))
    assert reconcile(saved) == []
    assert any("paper_fill_archive_gap" in c for c in codes(tmp_path, "error"))
    assert later.fills_since(0)[-RECENT_FILLS:] == old.fills[-RECENT_FILLS:]


def test_the_journal_is_compacted_and_still_rebuilds_the_ledger(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    state = None
    for n in range(1, 121):
        state = store.save_ledger(grow(state, n))
        assert len(store.journal.entries()) <= COMPACT_AFTER + 1
    assert FillJournal(store.journal.path).rebuild() == state
    store.ledger_path.unlink()
    store.ledger_path.with_name("ledger.json.bak").unlink()
    assert store_at(tmp_path).open_ledger() == state


@pytest.fixture()
def fsync_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records every ``os.fsync`` (the real one still runs): what a replay must not do."""
    calls: list[int] = []
    real: Callable[[int], None] = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


def test_a_replay_turns_off_the_journal_and_archive_fsyncs(
    tmp_path: Path, fsync_calls: list[int]
) -> None:
    old = old_ledger()
    store = store_at(tmp_path)
    saved = store.save_ledger(first(old, 1))
    assert fsync_calls  # by default every write is synced
    atomic.sync_to_disk(False)
    try:
        fsync_calls.clear()
        for n in range(2, 60):
            saved = store.save_ledger(grow(saved, n))
        assert store.archive.files() and fsync_calls == []
    finally:
        atomic.sync_to_disk(True)

