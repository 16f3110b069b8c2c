from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _support.csv_rows import HEADER, add, csv_folder, day
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.core.data.bars import format_csv
from aistock_actors.core.data.sample_data import generate_universe
from aistock_actors.errors import DataError
from aistock_actors.store.atomic import backup_path
from aistock_actors.store.bars import BarStore
from aistock_actors.store.ingest import IngestReport, Rejection, RowProblem, ingest_directory


def row(n: int, close: float | None = None) -> str:
    c = 100.0 + n if close is None else close
    return f"{day(n)},{c},{c + 1},{c - 1},{c},{1000 + n}\n"


def rows(first: int, count: int) -> str:
    return "".join(row(n) for n in range(first, first + count))




@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, BarStore]:
    return csv_folder(tmp_path)


def ingest(csv_dir: Path, store: BarStore) -> IngestReport:
    return ingest_directory(csv_dir, store)


# --- one test per malformation: file/row/reason, the other symbol ingests, history intact -------

TAIL_CASES = {
    "field_count": ("2020-01-05,1,2,0.5\n", 5, "wrong field count: expected 6 fields, got 4"),
    "bad_number": ("2020-01-05,1,2,zz,1.5,9\n", 5, "unparseable number 'zz' in column 'low'"),
    "bad_timestamp": ("05/01/2020,1,2,0.5,1.5,9\n", 5, "unparseable timestamp '05/01/2020'"),
    "missing_value": ("2020-01-05,1,2,0.5,,9\n", 5, "missing value or NaN in column 'close'"),
    "nan": ("2020-01-05,NaN,2,0.5,1.5,9\n", 5, "missing value or NaN in column 'open'"),
    "non_positive": ("2020-01-05,1,2,0,1.5,9\n", 5, "non-positive price: low is 0.0"),
    "negative_volume": ("2020-01-05,1,2,0.5,1.5,-9\n", 5, "negative volume: -9.0"),
    "low_too_high": ("2020-01-05,1,2,1.1,1.5,9\n", 5, "inconsistent OHLC: low 1.1 is above"),
    "high_too_low": ("2020-01-05,1,1.2,0.5,1.5,9\n", 5, "inconsistent OHLC: high 1.2 is below"),
    "duplicate": (
        row(5) + row(5),
        6,
        "timestamps not strictly increasing: 2020-01-06 duplicates line 5",
    ),
    "out_of_order": (
        row(6) + row(5),
        6,
        "timestamps not strictly increasing: 2020-01-06 is before 2020-01-07 on line 5",
    ),
    "older_than_stored": (
        row(1),
        5,
        "timestamp 2020-01-02 is not newer than the last stored bar 2020-01-03",
    ),
}

WHOLE_FILE_CASES = {
    "missing_column": (
        "timestamp,open,high,low,close\n2020-01-05,1,2,0.5,1.5\n",
        1,
        "missing required column(s): volume",
    ),
    "no_header": (rows(0, 4), 1, "no header line"),
    "not_utf8": (HEADER + rows(0, 3) + "2020-01-05,\udcff,2,0.5,1.5,9\n", 5, "not valid UTF-8"),
}


def _prepare(csv_dir: Path, store: BarStore) -> pd.DataFrame:
    (csv_dir / "GOOD.csv").write_text(HEADER + rows(0, 3))
    (csv_dir / "bad.csv").write_text(HEADER + rows(0, 3))
    first = ingest(csv_dir, store)
    assert first.bars_added == 6 and not first.rejections
    add(csv_dir / "GOOD.csv", row(3))
    return store.load("BAD")


def _assert_rejected(
    report: IngestReport,
    csv_dir: Path,
    store: BarStore,
    line: int,
    reason: str,
    before: pd.DataFrame,
) -> None:
    assert report.per_symbol == {"GOOD": 1} and report.bars_added == 1
    assert len(report.rejections) == 1
    rejection = report.rejections[0]
    assert (rejection.symbol, rejection.file) == ("BAD", str(csv_dir / "bad.csv"))
    assert len(rejection.problems) == 1
    assert rejection.problems[0].row == line
    assert rejection.problems[0].reason.startswith(reason), rejection.problems[0].reason
    pd.testing.assert_frame_equal(store.load("BAD"), before)
    assert len(store.load("GOOD")) == 4


@pytest.mark.parametrize("case", sorted(TAIL_CASES))
def test_bad_appended_row_rejects_the_file(folder: tuple[Path, BarStore], case: str) -> None:
    csv_dir, store = folder
    before = _prepare(csv_dir, store)
    text, line, reason = TAIL_CASES[case]
    add(csv_dir / "bad.csv", text)
    report = ingest(csv_dir, store)
    _assert_rejected(report, csv_dir, store, line, reason, before)
    again = ingest(csv_dir, store)  # rejected again until fixed, never half-ingested
    assert again.rejections == report.rejections and again.bars_added == 0


@pytest.mark.parametrize("case", sorted(WHOLE_FILE_CASES))
def test_bad_rewritten_file_is_rejected(folder: tuple[Path, BarStore], case: str) -> None:
    csv_dir, store = folder
    before = _prepare(csv_dir, store)
    text, line, reason = WHOLE_FILE_CASES[case]
    (csv_dir / "bad.csv").write_bytes(text.encode("utf-8", "surrogateescape"))
    report = ingest(csv_dir, store)
    _assert_rejected(report, csv_dir, store, line, reason, before)


def test_unreadable_entry_is_a_rejection(folder: tuple[Path, BarStore]) -> None:
    csv_dir, store = folder
    before = _prepare(csv_dir, store)
    (csv_dir / "bad.csv").unlink()
    (csv_dir / "bad.csv").mkdir()  # reading it fails like a permission error would
    report = ingest(csv_dir, store)
    assert report.per_symbol == {"GOOD": 1}
    (rejection,) = report.rejections
    assert rejection.problems[0].row is None
    assert rejection.problems[0].reason.startswith("unreadable file")
    pd.testing.assert_frame_equal(store.load("BAD"), before)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_permission_denied_is_a_rejection(folder: tuple[Path, BarStore]) -> None:
    csv_dir, store = folder
    _prepare(csv_dir, store)
    (csv_dir / "bad.csv").chmod(0)
    report = ingest(csv_dir, store)
    assert report.rejections[0].problems[0].reason.startswith("unreadable file")


def test_only_the_first_five_problems_are_reported(folder: tuple[Path, BarStore]) -> None:
    csv_dir, store = folder
    (csv_dir / "X.csv").write_text(HEADER + "".join(f"{day(n)},x,1,1,1,1\n" for n in range(9)))
    (rejection,) = ingest(csv_dir, store).rejections
    assert [p.row for p in rejection.problems] == [2, 3, 4, 5, 6]
    assert store.symbols() == []


def test_unreadable_store_is_a_rejection_and_others_ingest(folder: tuple[Path, BarStore]) -> None:
    csv_dir, store = folder
    _prepare(csv_dir, store)
    npz = store.path("BAD")
    npz.write_bytes(b"junk")
    backup_path(npz).write_bytes(b"junk")
    report = ingest(csv_dir, store)
    assert report.per_symbol == {"GOOD": 1}
    assert report.rejections[0].problems[0].reason.startswith("stored history unreadable")


# --- folder-level errors and conventions --------------------------------------------------------


def test_missing_folder_or_no_csv_is_a_data_error(tmp_path: Path) -> None:
    store = BarStore(tmp_path / "bars")
    with pytest.raises(DataError, match="does not exist"):
        ingest(tmp_path / "nope", store)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"no \*\.csv"):
        ingest(tmp_path / "empty", store)


@pytest.mark.parametrize(
    "text",
    [
        "timestamp,open,high,low,close,volume\n2020-01-02,1,2,0.5,1.5,7\n",
        "Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,1,2,0.5,1.5,1.1,7\n",
        ",open,high,low,close,volume\n2020-01-02,1,2,0.5,1.5,7\n",
        ",Date,Open,High,Low,Close,Volume\n0,2020-01-02,1,2,0.5,1.5,7\n",
        "DateTime , OPEN,High,low , Close,VOLUME\n 2020-01-02 00:00:00 ,1, 2,0.5 ,1.5 ,7\n",
        "time,open,high,low,close,volume\r\n2020-01-02T00:00:00Z,1,2,0.5,1.5,7\r\n",
    ],
)
def test_header_conventions_ingest(folder: tuple[Path, BarStore], text: str) -> None:
    csv_dir, store = folder
    (csv_dir / "msft.csv").write_text(text, newline="")
    report = ingest(csv_dir, store)
    assert report.per_symbol == {"MSFT": 1} and report.symbols_seen == 1
    frame = store.load("MSFT")
    assert frame.index[0] == pd.Timestamp("2020-01-02", tz="UTC")
    assert frame.iloc[0].tolist() == [1.0, 2.0, 0.5, 1.5, 7.0]


def test_files_map_to_upper_case_symbols_in_sorted_order(folder: tuple[Path, BarStore]) -> None:
    csv_dir, store = folder
    for name in ("b.csv", "A.CSV", "brk.b.csv"):
        (csv_dir / name).write_text(HEADER + rows(0, 2))
    (csv_dir / "a.csv").write_text(HEADER + rows(0, 2))
    report = ingest(csv_dir, store)
    assert list(report.per_symbol) == ["A", "B", "BRK.B"] and report.symbols_seen == 3
    reason = "duplicate symbol A: A.CSV already maps to it"
    assert report.rejections == [Rejection("A", str(csv_dir / "a.csv"), [RowProblem(None, reason)])]


def test_empty_and_header_only_files_are_notes_not_rejections(
    folder: tuple[Path, BarStore],
) -> None:
    csv_dir, store = folder
    (csv_dir / "E.csv").write_text("")
    (csv_dir / "H.csv").write_text(HEADER)
    report = ingest(csv_dir, store)
    assert report.rejections == [] and report.per_symbol == {"E": 0, "H": 0}
    assert report.notes == ["E.csv: empty file, no bars yet", "H.csv: header only, no bars yet"]
    assert ingest(csv_dir, store).notes == []  # said once, not every run
    add(csv_dir / "H.csv", rows(0, 2))
    (csv_dir / "E.csv").write_text(HEADER + rows(0, 1))
    assert ingest(csv_dir, store).per_symbol == {"E": 1, "H": 2}


# --- incremental behaviour ----------------------------------------------------------------------


def test_incremental_append_counts_only_new_bars(folder: tuple[Path, BarStore]) -> None:
    csv_dir, store = folder
    path = csv_dir / "AAA.csv"
    path.write_text(HEADER + rows(0, 5))
    assert ingest(csv_dir, store).bars_added == 5
    add(path, rows(5, 3))
    report = ingest(csv_dir, store)
    assert report.bars_added == 3 and report.per_symbol == {"AAA": 3} and report.notes == []
    assert ingest(csv_dir, store).bars_added == 0
    cursor = store.cursors()["AAA"]
    assert cursor.offset == cursor.size == path.stat().st_size and cursor.lines == 9
    assert store.count("AAA") == 8


def test_torn_last_line_waits_until_complete(folder: tuple[Path, BarStore]) -> None:
    csv_dir, store = folder
    path = csv_dir / "AAA.csv"
    path.write_text(HEADER + rows(0, 2))
    ingest(csv_dir, store)
    full = row(2)
    add(path, full[:15])
    report = ingest(csv_dir, store)
    assert report.bars_added == 0 and report.rejections == [] and report.notes == []
    report = ingest(csv_dir, store)  # unchanged since: probably a missing final newline
    assert report.bars_added == 0 and report.rejections == []
    assert report.notes == [
        "AAA.csv: line 4 still has no line end; it is read once it is terminated"
    ]
    add(path, full[15:])
    report = ingest(csv_dir, store)
    assert report.bars_added == 1 and report.notes == []
    assert store.load("AAA")["close"].iloc[-1] == 102.0


def test_header_being_written_is_not_an_error(folder: tuple[Path, BarStore]) -> None:
    csv_dir, store = folder
    (csv_dir / "AAA.csv").write_text("timestamp,op")
    report = ingest(csv_dir, store)
    assert report.rejections == [] and report.bars_added == 0 and report.notes == []
    add(csv_dir / "AAA.csv", "en,high,low,close,volume\n" + rows(0, 2))
    assert ingest(csv_dir, store).bars_added == 2


def test_rewritten_file_with_same_history_adds_only_newer(folder: tuple[Path, BarStore]) -> None:
    csv_dir, store = folder
    path = csv_dir / "AAA.csv"
    path.write_text(HEADER + rows(0, 5))
    ingest(csv_dir, store)
    path.write_text("Date,Open,High,Low,Close,Volume\n" + rows(0, 7))  # re-downloaded
    report = ingest(csv_dir, store)
    assert report.bars_added == 2 and report.notes == [] and report.rejections == []
    path.write_text(HEADER + rows(6, 2))  # shrunk: only the recent days
    report = ingest(csv_dir, store)
    assert report.bars_added == 1  # #17: a file that shrank is said (once), not silent
    assert len(report.notes) == 1 and report.notes[0].startswith("AAA.csv: shrank from")
    assert store.count("AAA") == 8


def test_rewritten_file_with_different_history_keeps_stored_and_notes_it(
    folder: tuple[Path, BarStore],
) -> None:
    csv_dir, store = folder
    path = csv_dir / "AAA.csv"
    path.write_text(HEADER + rows(0, 5))
    ingest(csv_dir, store)
    before = store.load("AAA")
    path.write_text(HEADER + rows(0, 2) + row(2, close=55.0) + rows(3, 4))
    report = ingest(csv_dir, store)
    assert report.bars_added == 2 and report.rejections == []
    (note,) = report.notes
    assert note.startswith("AAA.csv: rewritten; 1 of 5 bar(s)") and "line 4, 2020-01-03" in note
    pd.testing.assert_frame_equal(store.load("AAA").iloc[:5], before)


def test_stale_or_lost_cursor_is_harmless(folder: tuple[Path, BarStore]) -> None:
    csv_dir, store = folder
    path = csv_dir / "AAA.csv"
    path.write_text(HEADER + rows(0, 3))
    ingest(csv_dir, store)
    old_cursors = (store.root / "cursors.json").read_bytes()
    add(path, rows(3, 2))
    assert ingest(csv_dir, store).bars_added == 2
    (store.root / "cursors.json").write_bytes(old_cursors)  # crash before the cursor was saved
    report = ingest(csv_dir, store)
    assert report.bars_added == 0 and report.rejections == [] and report.notes == []
    (store.root / "cursors.json").unlink()
    backup_path(store.root / "cursors.json").unlink()
    add(path, rows(5, 1))
    assert ingest(csv_dir, store).bars_added == 1 and store.count("AAA") == 6


def test_report_summary() -> None:
    report = IngestReport(3, {"A": 3}, [Rejection("B", "b.csv", [])], ["n"], 2)
    assert report.summary() == "3 new bar(s) for 1 symbol(s); rejected: B; 1 note(s)"


# --- invariant: growing a file in arbitrary pieces gives the same store as one read -------------

_CSV = format_csv(generate_universe(1, 40, seed=3)["SYM000"]).encode()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(_CSV) - 1), max_size=5))
def test_incremental_ingestion_equals_one_read(cuts: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        csv_dir, store = Path(tmp) / "csv", BarStore(Path(tmp) / "bars")
        csv_dir.mkdir()
        path, total = csv_dir / "AAA.csv", 0
        for cut in [*sorted(set(cuts)), len(_CSV)]:
            path.write_bytes(_CSV[:cut])
            report = ingest(csv_dir, store)
            assert report.rejections == []
            total += report.bars_added
        assert total == 40
        expected = generate_universe(1, 40, seed=3)["SYM000"]
        pd.testing.assert_frame_equal(store.load("AAA"), expected)
        assert np.array_equal(store.arrays("AAA")[0], expected.index.asi8)
