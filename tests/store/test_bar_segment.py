"""The bar store's append-only segment: no whole-file rewrite per bar, same crash safety."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
from _support.store_helpers import load_helper

from aistock_actors.store.atomic import backup_path
from aistock_actors.store.bar_segment import (
    FOLD_RECORDS,
    HEADER_SIZE,
    SEGMENT_MIN_BARS,
    read_segment,
    segment_path,
)
from aistock_actors.store.bars import BarStore

DAY = 86_400 * 10**9
T0 = 18_262 * DAY
HELPERS = Path(__file__).resolve().parent / "_helpers"


procs = load_helper("procs")


def bars(start_day: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    ts = T0 + (start_day + np.arange(n, dtype=np.int64)) * DAY
    close = 100.0 + np.arange(n) + start_day
    return ts, np.column_stack([close, close + 1, close - 1, close, close * 10])


def long_store(folder: Path) -> BarStore:
    store = BarStore(folder)
    store.append("AAA", *bars(0, SEGMENT_MIN_BARS))
    return store


def assert_history(folder: Path, n: int) -> None:
    ts, values = BarStore(folder).arrays("AAA")  # a fresh process's view
    expected_ts, expected_values = bars(0, n)
    np.testing.assert_array_equal(ts, expected_ts)
    np.testing.assert_array_equal(values, expected_values)


def test_appends_to_a_long_history_leave_the_npz_alone_and_read_back(tmp_path: Path) -> None:
    store = long_store(tmp_path)
    npz = (tmp_path / "AAA.npz").read_bytes()
    reader = BarStore(tmp_path / ".." / tmp_path.name)  # another cache: reads the segment
    for day in range(SEGMENT_MIN_BARS, SEGMENT_MIN_BARS + 5):
        assert store.append("AAA", *bars(day, 1)) == 1
        assert reader.count("AAA") == day + 1
    assert (tmp_path / "AAA.npz").read_bytes() == npz
    assert not backup_path(tmp_path / "AAA.npz").exists()  # written once, never rotated
    assert read_segment(segment_path(tmp_path / "AAA.npz")) is not None
    assert store.symbols() == ["AAA"]
    assert_history(tmp_path, SEGMENT_MIN_BARS + 5)


def test_the_segment_is_folded_every_fold_records_appends_and_at_start(tmp_path: Path) -> None:
    store = long_store(tmp_path)
    seg = segment_path(tmp_path / "AAA.npz")
    day = SEGMENT_MIN_BARS
    for _ in range(FOLD_RECORDS):
        store.append("AAA", *bars(day, 1))
        day += 1
    assert seg.exists()
    store.append("AAA", *bars(day, 2))  # the fold: everything in the .npz
    day += 2
    assert not seg.exists()
    assert_history(tmp_path, day)
    store.append("AAA", *bars(day, 1))
    assert BarStore(tmp_path).fold_all() == 1 and not seg.exists()
    assert_history(tmp_path, day + 1)


def test_a_torn_last_record_is_ignored_and_cut_by_the_next_append(tmp_path: Path) -> None:
    store = long_store(tmp_path)
    store.append("AAA", *bars(SEGMENT_MIN_BARS, 1))
    store.append("AAA", *bars(SEGMENT_MIN_BARS + 1, 1))
    seg = segment_path(tmp_path / "AAA.npz")
    data = seg.read_bytes()
    seg.write_bytes(data[:-7])  # a crash mid-write of the second record
    assert_history(tmp_path, SEGMENT_MIN_BARS + 1)
    fresh = BarStore(tmp_path)
    assert fresh.append("AAA", *bars(SEGMENT_MIN_BARS + 1, 1)) == 1
    assert_history(tmp_path, SEGMENT_MIN_BARS + 2)
    assert seg.stat().st_size == len(data)


def test_a_crash_between_the_fold_and_the_segment_removal_reads_each_bar_once(
    tmp_path: Path,
) -> None:
    store = long_store(tmp_path)
    store.append("AAA", *bars(SEGMENT_MIN_BARS, 3))
    seg = segment_path(tmp_path / "AAA.npz")
    stale = seg.read_bytes()
    store.fold("AAA")
    seg.write_bytes(stale)  # as if the process died after the .npz replace
    assert_history(tmp_path, SEGMENT_MIN_BARS + 3)
    fresh = BarStore(tmp_path)
    assert fresh.append("AAA", *bars(SEGMENT_MIN_BARS + 3, 1)) == 1  # a new segment replaces it
    assert_history(tmp_path, SEGMENT_MIN_BARS + 4)


def test_a_corrupt_segment_header_keeps_the_npz_history(tmp_path: Path) -> None:
    store = long_store(tmp_path)
    store.append("AAA", *bars(SEGMENT_MIN_BARS, 2))
    seg = segment_path(tmp_path / "AAA.npz")
    seg.write_bytes(b"X" * HEADER_SIZE + seg.read_bytes()[HEADER_SIZE:])
    assert_history(tmp_path, SEGMENT_MIN_BARS)  # the unreadable tail is re-ingested later


def test_a_corrupt_npz_falls_back_to_its_bak_with_the_segment_that_extends_it(
    tmp_path: Path,
) -> None:
    store = BarStore(tmp_path)
    store.append("AAA", *bars(0, SEGMENT_MIN_BARS - 1))
    store.append("AAA", *bars(SEGMENT_MIN_BARS - 1, 1))  # rewritten: the .bak is 63 bars
    store.append("AAA", *bars(SEGMENT_MIN_BARS, 2))  # the segment on the 64-bar .npz
    (tmp_path / "AAA.npz").write_bytes(b"junk")
    assert_history(tmp_path, SEGMENT_MIN_BARS - 1)  # the .bak: the segment does not extend it
    fresh = BarStore(tmp_path)
    assert fresh.append("AAA", *bars(SEGMENT_MIN_BARS - 1, 3)) == 3  # repaired by a rewrite
    assert_history(tmp_path, SEGMENT_MIN_BARS + 2)
    assert not segment_path(tmp_path / "AAA.npz").exists()


def test_drop_after_folds_first_and_removes_bars_from_the_segment(tmp_path: Path) -> None:
    store = long_store(tmp_path)
    store.append("AAA", *bars(SEGMENT_MIN_BARS, 4))
    assert store.drop_after("AAA", T0 + (SEGMENT_MIN_BARS + 1) * DAY) == 2
    assert_history(tmp_path, SEGMENT_MIN_BARS + 2)
    assert not segment_path(tmp_path / "AAA.npz").exists()
    assert store.drop_after("AAA", T0 - DAY) == SEGMENT_MIN_BARS + 2
    assert BarStore(tmp_path).symbols() == []


KILLS = 8


def test_sigkill_at_any_moment_loses_no_acknowledged_bar(tmp_path: Path) -> None:
    folder = tmp_path / "bars"
    rng = random.Random(11)
    acked: dict[str, int] = {}
    for run in range(KILLS):
        proc = subprocess.Popen([sys.executable, "-u", str(HELPERS / "bar_appender.py"),
                                 str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        reader = procs.LineReader(proc)
        try:
            assert reader.wait_for_lines(rng.randint(1, 120), timeout=60), f"run {run}: no acks"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        reader.wait_for_lines(10**9, timeout=0.5)  # drain what was printed before the kill
        assert proc.stdout is not None and proc.stderr is not None
        stderr = proc.stderr.read().decode()
        proc.stdout.close()
        proc.stderr.close()
        assert "Traceback" not in stderr, f"run {run}:\n{stderr}"
        for line in reader.lines:
            symbol, day = line.split()
            acked[symbol] = int(day)
        store = BarStore(folder)
        for symbol, last in acked.items():
            ts, values = store.arrays(symbol)
            assert len(ts) >= last + 1, f"run {run}: {symbol} lost acknowledged bars"
            np.testing.assert_array_equal(ts, T0 + np.arange(len(ts), dtype=np.int64) * DAY)
            np.testing.assert_array_equal(values[:, 3], 100.0 + np.arange(len(ts)))
    assert max(acked.values()) > SEGMENT_MIN_BARS + FOLD_RECORDS  # segments and folds were hit


def test_readable_arrays_reads_each_symbol_once_and_leaves_out_a_garbled_one(
    tmp_path: Path,
) -> None:
    store = long_store(tmp_path)
    store.append("AAA", *bars(SEGMENT_MIN_BARS, 2))
    store.append("BBB", *bars(0, 3))
    (tmp_path / "CCC.npz").write_bytes(b"garbled")
    got = BarStore(tmp_path).readable_arrays()
    assert list(got) == ["AAA", "BBB"]
    np.testing.assert_array_equal(got["AAA"][0], bars(0, SEGMENT_MIN_BARS + 2)[0])
    assert len(got["BBB"][0]) == 3
    assert BarStore(tmp_path).readable_symbols() == ["AAA", "BBB"]
