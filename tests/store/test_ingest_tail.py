"""Ingesting a CSV that only grew since its cursor reads the tail alone (``store/ingest_tail.py``),
and gives exactly what the whole-file path gives: same bars, rejections, notes and cursors."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import msgspec
import numpy as np
import pytest
from _support.csv_rows import HEADER, add, csv_folder, day
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aistock_actors.core.replay.plan import parse_date
from aistock_actors.store import ingest as ingest_module
from aistock_actors.store.bars import CURSORS_FILE, BarStore
from aistock_actors.store.ingest import BarLimits, IngestReport, ingest_directory
from aistock_actors.store.ingest_tail import CURSOR_WINDOW, read_tail

FAR = parse_date("2100-01-01")




def ns(n: int) -> int:
    return parse_date(day(n))


def row(n: int, close: float | None = None) -> str:
    c = 100.0 + n % 7 if close is None else close
    return f"{day(n)},{c},{c + 1},{c - 1},{c},{1000 + n}\n"


def rows(first: int, count: int) -> str:
    return "".join(row(n) for n in range(first, first + count))




@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, BarStore]:
    return csv_folder(tmp_path)


def test_appended_rows_are_read_from_the_cursor_alone(folder: tuple[Path, BarStore]) -> None:
    csv_dir, store = folder
    path = csv_dir / "AAA.csv"
    path.write_text(HEADER + rows(0, 300))  # ~12 kB: the history lies far before the window
    assert ingest_directory(csv_dir, store).bars_added == 300
    cursor = store.cursors()["AAA"]
    data = path.read_bytes()
    assert cursor.inode == path.stat().st_ino and cursor.offset == len(data) > 2 * CURSOR_WINDOW
    window = data[cursor.offset - CURSOR_WINDOW : cursor.offset]
    assert cursor.window_sha256 == hashlib.sha256(window).hexdigest()
    add(path, rows(300, 2))
    tail = read_tail(path, cursor, ns(299), None)
    assert tail is not None and list(tail.timestamps) == [ns(300), ns(301)]
    assert list(tail.rows) == [302, 303] and tail.lines == 303 and not tail.hidden
    assert tail.consumed == tail.size == path.stat().st_size
    report = ingest_directory(csv_dir, store)
    assert report.per_symbol == {"AAA": 2} and report.notes == [] and report.rejections == []
    after = store.cursors()["AAA"]
    end = after.offset
    assert (after.lines, after.last_timestamp) == (303, ns(301))
    new_window = path.read_bytes()[end - CURSOR_WINDOW : end]
    assert after.window_sha256 == hashlib.sha256(new_window).hexdigest()


def test_the_history_before_the_window_is_not_read(folder: tuple[Path, BarStore]) -> None:
    """What makes a step O(new bytes): bytes before the window are never looked at. (So an
    in-place edit there, in a file that keeps its inode and does not shrink, goes unnoticed;
    the stored bars are the same either way: see the module doc.)"""
    csv_dir, store = folder
    path = csv_dir / "AAA.csv"
    path.write_text(HEADER + rows(0, 300))
    ingest_directory(csv_dir, store)
    cursor = store.cursors()["AAA"]
    data = bytearray(path.read_bytes())
    middle = len(HEADER) + 1000  # a row of 2020, far before the window
    data[middle : middle + 4] = b"\xff\xfe\xfd\xfc"  # not even UTF-8 any more
    with path.open("r+b") as handle:  # in place: same inode, same size
        handle.write(bytes(data))
    add(path, row(300))
    tail = read_tail(path, cursor, ns(299), None)
    assert tail is not None and list(tail.timestamps) == [ns(300)]


@pytest.mark.parametrize("where", ["last_row", "header", "window_start"])
def test_an_in_place_rewrite_in_the_window_or_header_is_detected(
    folder: tuple[Path, BarStore], where: str
) -> None:
    csv_dir, store = folder
    path = csv_dir / "AAA.csv"
    path.write_text(HEADER + rows(0, 300))
    ingest_directory(csv_dir, store)
    cursor = store.cursors()["AAA"]
    before = store.arrays("AAA")
    data = bytearray(path.read_bytes())
    if where == "header":
        data[:9] = b"TIMESTAMP"  # the same columns, another spelling: still a rewrite
    else:
        first = cursor.offset - CURSOR_WINDOW  # a volume's last digit: the row stays valid
        at = cursor.offset - 2 if where == "last_row" else data.index(b"\n", first + 1) - 1
        data[at] = ord("9") if data[at] != ord("9") else ord("8")
    with path.open("r+b") as handle:
        handle.write(bytes(data))
    add(path, row(300))
    assert read_tail(path, cursor, ns(299), None) is None
    report = ingest_directory(csv_dir, store)  # the whole-file path: stored history kept
    assert report.per_symbol == {"AAA": 1} and report.rejections == []
    if where != "header":  # a header spelled otherwise names the same columns, same bars
        (note,) = report.notes
        assert note.startswith("AAA.csv: rewritten; 1 of 300 bar(s)")
    stored = store.arrays("AAA")
    assert np.array_equal(stored[0][:300], before[0])
    assert np.array_equal(stored[1][:300], before[1])


def test_a_file_truncated_in_place_then_grown_is_detected(folder: tuple[Path, BarStore]) -> None:
    csv_dir, store = folder
    path = csv_dir / "AAA.csv"
    path.write_text(HEADER + rows(0, 200))
    ingest_directory(csv_dir, store)
    cursor = store.cursors()["AAA"]
    inode = path.stat().st_ino
    path.write_text(HEADER + rows(0, 150) + row(150, close=55.0) + rows(151, 60))  # O_TRUNC
    assert path.stat().st_ino == inode and path.stat().st_size > cursor.size
    assert read_tail(path, cursor, ns(199), None) is None
    report = ingest_directory(csv_dir, store)
    assert report.per_symbol == {"AAA": 11} and report.rejections == []
    (note,) = report.notes
    assert note.startswith("AAA.csv: rewritten; 1 of 200 bar(s)") and "line 152" in note


def test_a_replaced_file_is_read_whole(folder: tuple[Path, BarStore]) -> None:
    csv_dir, store = folder
    path = csv_dir / "AAA.csv"
    path.write_text(HEADER + rows(0, 20))
    ingest_directory(csv_dir, store)
    cursor = store.cursors()["AAA"]
    fresh = csv_dir / "AAA.new"
    fresh.write_text(HEADER + rows(0, 22))
    os.replace(fresh, path)  # same bytes up to the cursor, another file
    assert read_tail(path, cursor, ns(19), None) is None
    report = ingest_directory(csv_dir, store)
    assert report.per_symbol == {"AAA": 2} and report.notes == []
    assert store.cursors()["AAA"].inode == path.stat().st_ino != cursor.inode


def test_a_cursor_of_an_older_version_is_read_once_whole(folder: tuple[Path, BarStore]) -> None:
    """A cursor without a window (written before the windowed cursor) still loads; its file is
    parsed whole once, and the new cursor it gets has a window."""
    csv_dir, store = folder
    path = csv_dir / "AAA.csv"
    path.write_text(HEADER + rows(0, 5))
    ingest_directory(csv_dir, store)
    new = store.cursors()["AAA"]
    legacy = {"AAA": {"file": "AAA.csv", "offset": new.offset, "lines": new.lines,
                      "size": new.size, "header_sha256": new.header_sha256,
                      "prefix_sha256": "0" * 64, "last_timestamp": new.last_timestamp}}
    (store.root / CURSORS_FILE).write_bytes(msgspec.json.encode(legacy))
    old = store.cursors()["AAA"]
    assert old.window_sha256 == "" and old.inode == 0
    assert read_tail(path, old, ns(4), None) is None
    add(path, row(5))
    report = ingest_directory(csv_dir, store)
    assert report.per_symbol == {"AAA": 1} and report.notes == []
    assert store.cursors()["AAA"].window_sha256 != ""


def test_cursors_are_not_rewritten_when_nothing_changed(folder: tuple[Path, BarStore]) -> None:
    csv_dir, store = folder
    (csv_dir / "AAA.csv").write_text(HEADER + rows(0, 10))
    (csv_dir / "BBB.csv").write_text(HEADER + rows(0, 10))
    ingest_directory(csv_dir, store, not_after_ns=ns(4))
    cursors = store.root / CURSORS_FILE

    def version() -> tuple[int, int]:
        info = cursors.stat()
        return info.st_ino, info.st_mtime_ns

    written = version()
    for _ in range(3):  # nothing new at this bound: no write at all
        assert ingest_directory(csv_dir, store, not_after_ns=ns(4)).bars_added == 0
        assert version() == written
    assert ingest_directory(csv_dir, store, not_after_ns=ns(5)).bars_added == 2
    assert version() != written  # a step that reveals rows moves the cursors


def test_an_implausible_appended_row_is_rejected_by_row(folder: tuple[Path, BarStore]) -> None:
    csv_dir, store = folder
    path = csv_dir / "AAA.csv"
    path.write_text(HEADER + rows(0, 100))
    limits = BarLimits(not_after_ns=FAR, max_relative_jump=3.0)
    ingest_directory(csv_dir, store, limits=limits)
    add(path, row(100) + row(101, close=1000.0))
    report = ingest_directory(csv_dir, store, limits=limits)
    (rejection,) = report.rejections
    assert rejection.file == str(path) and rejection.problems[0].row == 103
    assert rejection.problems[0].reason.startswith("implausible jump: open 1000")
    assert store.count("AAA") == 100  # all or nothing: the good row 102 waits for the fix


# --- invariant: the tail path and the whole-file path agree on every outcome ---------------------

OPS = st.one_of(
    st.tuples(st.just("rows"), st.integers(1, 40)),
    st.tuples(st.just("bad"), st.sampled_from(["number", "older", "jump", "utf8", "fields"])),
    st.tuples(st.just("torn"), st.integers(1, 30)),
    st.tuples(st.just("blank"), st.just(0)),
    st.tuples(st.just("zone"), st.just(0)),
    st.tuples(st.just("edit"), st.integers(0, 10_000)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000)),
    st.tuples(st.just("replace"), st.just(0)),
    st.tuples(st.just("ingest"), st.integers(-1, 400)),
)


class _Evolving:
    """A CSV file changed by the operations above (days only move forward)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.next = 0
        path.write_text(HEADER + rows(0, 90))
        self.next = 90

    def apply(self, op: str, arg: int | str) -> None:
        path = self.path
        data = path.read_bytes()
        if op == "rows":
            add(path, rows(self.next, arg))
            self.next += arg
        elif op == "bad":
            text = {"number": f"{day(self.next)},1,2,zz,1.5,9\n", "older": row(self.next - 3),
                    "jump": row(self.next, close=9000.0), "fields": f"{day(self.next)},1,2\n",
                    "utf8": None}[arg]
            if text is None:
                with path.open("ab") as handle:
                    handle.write(day(self.next).encode() + b",1,2,\xff,1.5,9\n")
            else:
                add(path, text)
            self.next += 1
        elif op == "torn":
            add(path, row(self.next)[:arg])
        elif op == "blank":
            add(path, "  \n")
        elif op == "zone":
            add(path, f"{day(self.next)}T16:00:00-05:00,100,101,99,100,5\n")
            self.next += 1
        elif op == "edit" and len(data) > len(HEADER):  # one digit changed in place
            at = len(HEADER) + arg % (len(data) - len(HEADER))
            if chr(data[at]).isdigit():
                with path.open("r+b") as handle:
                    handle.seek(at)
                    handle.write(b"7" if data[at] != ord("7") else b"3")
        elif op == "truncate":
            os.truncate(path, arg % (len(data) + 1))
        elif op == "replace":
            fresh = path.with_suffix(".new")
            fresh.write_bytes(data)
            os.replace(fresh, path)


def _outcome(report: IngestReport, store: BarStore) -> object:
    arrays = store.arrays("AAA")
    return (report.bars_added, report.per_symbol, report.rejections, report.notes,
            arrays[0].tolist(), arrays[1].tolist(), store.cursors())


@settings(max_examples=60, deadline=None)
@given(st.lists(OPS, min_size=1, max_size=14))
@example([("ingest", 30), ("ingest", 31), ("rows", 3), ("ingest", -1), ("rows", 2),
          ("ingest", -1)])
@example([("ingest", -1), ("torn", 9), ("ingest", -1), ("ingest", -1), ("rows", 1),
          ("ingest", -1), ("bad", "jump"), ("ingest", -1), ("zone", 0), ("ingest", -1)])
@example([("ingest", -1), ("rows", 2), ("bad", "older"), ("ingest", 200), ("truncate", 900),
          ("rows", 5), ("ingest", -1), ("blank", 0), ("rows", 1), ("ingest", -1)])
def test_the_tail_path_gives_what_the_whole_file_path_gives(
    ops: list[tuple[str, int | str]],
) -> None:
    """Any sequence of appends (good, bad, torn, blank, another zone), in-place edits,
    truncations and replacements, ingested with or without a replay's bound: the store, the
    report and the cursors are those of the whole-file path (``read_tail`` switched off)."""
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        csv_dir = Path(tmp) / "csv"
        csv_dir.mkdir()
        evolving = _Evolving(csv_dir / "AAA.csv")
        (csv_dir / "BBB.csv").write_text(HEADER + rows(0, 50))
        tail_store, whole_store = BarStore(Path(tmp) / "tail"), BarStore(Path(tmp) / "whole")
        limits = BarLimits(not_after_ns=FAR, max_relative_jump=3.0)
        real_read_tail = ingest_module.read_tail
        for op, arg in [*ops, ("ingest", -1)]:
            if op != "ingest":
                evolving.apply(op, arg)
                continue
            bound = None if int(arg) < 0 else ns(int(arg))
            patch.setattr(ingest_module, "read_tail", real_read_tail)
            fast = ingest_directory(csv_dir, tail_store, limits=limits, not_after_ns=bound)
            patch.setattr(ingest_module, "read_tail", lambda *args: None)
            whole = ingest_directory(csv_dir, whole_store, limits=limits, not_after_ns=bound)
            assert _outcome(fast, tail_store) == _outcome(whole, whole_store), (op, arg)
