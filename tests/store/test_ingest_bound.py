"""A replay's bound on ingestion (``not_after_ns``): rows after the market clock are "not
written yet", like an unterminated last line; the cursor stops before them."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.core.replay.plan import parse_date
from aistock_actors.store.bars import BarStore
from aistock_actors.store.ingest import csv_timestamps, ingest_directory, parse_until

HEADER = "timestamp,open,high,low,close,volume\n"


def day(n: int) -> str:
    return (date(2020, 1, 1) + timedelta(days=n)).isoformat()


def row(n: int) -> str:
    c = 100.0 + n
    return f"{day(n)},{c},{c + 1},{c - 1},{c},{1000 + n}\n"


def ns(n: int) -> int:
    return parse_date(day(n))


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, BarStore]:
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    return csv_dir, BarStore(tmp_path / "state" / "bars")


def test_rows_after_the_bound_wait_and_arrive_once_the_clock_passes_them(
    folder: tuple[Path, BarStore],
) -> None:
    csv_dir, store = folder
    (csv_dir / "AAA.csv").write_text(HEADER + "".join(row(n) for n in range(10)))
    first = ingest_directory(csv_dir, store, not_after_ns=ns(3))
    assert first.bars_added == 4 and first.notes == [] and first.rejections == []
    assert store.last_timestamp("AAA") == ns(3)
    cursor = store.cursors()["AAA"]
    assert cursor.lines == 5  # the header and four rows: the cursor stops before day 4
    assert ingest_directory(csv_dir, store, not_after_ns=ns(3)).bars_added == 0
    assert ingest_directory(csv_dir, store, not_after_ns=ns(4)).bars_added == 1
    assert ingest_directory(csv_dir, store).bars_added == 5  # the live daemon: everything
    assert store.count("AAA") == 10


def test_a_bad_row_after_the_bound_is_not_this_runs_problem(
    folder: tuple[Path, BarStore],
) -> None:
    csv_dir, store = folder
    (csv_dir / "AAA.csv").write_text(
        HEADER + row(0) + row(1) + row(2) + f"{day(3)},1,2,zz,1.5,9\n" + row(4)
    )
    report = ingest_directory(csv_dir, store, not_after_ns=ns(2))
    assert report.rejections == [] and report.bars_added == 3
    later = ingest_directory(csv_dir, store, not_after_ns=ns(4))
    assert [r.symbol for r in later.rejections] == ["AAA"]  # now it is written: rejected
    assert store.count("AAA") == 3


def test_a_symbol_with_no_bar_yet_is_no_empty_file(folder: tuple[Path, BarStore]) -> None:
    csv_dir, store = folder
    (csv_dir / "AAA.csv").write_text(HEADER + row(0) + row(1))
    (csv_dir / "LATE.csv").write_text(HEADER + row(5) + row(6))
    report = ingest_directory(csv_dir, store, not_after_ns=ns(1))
    assert report.per_symbol == {"AAA": 2, "LATE": 0} and report.notes == []
    assert ingest_directory(csv_dir, store, not_after_ns=ns(5)).per_symbol["LATE"] == 1


def test_csv_timestamps_lists_every_symbols_bar_times(folder: tuple[Path, BarStore]) -> None:
    csv_dir, _ = folder
    (csv_dir / "aaa.csv").write_text(HEADER + row(0) + row(2))
    (csv_dir / "BBB.csv").write_text(HEADER + row(1))
    found = csv_timestamps(csv_dir)
    assert sorted(found) == ["AAA", "BBB"]
    assert list(found["AAA"]) == [ns(0), ns(2)] and list(found["BBB"]) == [ns(1)]


@settings(max_examples=12, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=8), st.integers(60, 200))
def test_stepping_the_bound_bar_by_bar_stores_what_one_full_ingest_stores(
    tmp_path_factory: pytest.TempPathFactory, strides: list[int], n: int
) -> None:
    tmp = tmp_path_factory.mktemp("bound")
    (tmp / "csv").mkdir()
    (tmp / "csv" / "AAA.csv").write_text(HEADER + "".join(row(i) for i in range(n)))
    (tmp / "csv" / "BBB.csv").write_text(HEADER + "".join(row(i) for i in range(3, n, 2)))
    stepped, whole = BarStore(tmp / "stepped"), BarStore(tmp / "whole")
    at = 0
    for stride in strides * (n // len(strides) + 1):
        if at >= n:
            break
        report = ingest_directory(tmp / "csv", stepped, not_after_ns=ns(at))
        assert report.rejections == []
        assert stepped.last_timestamp("AAA") == ns(at)
        at += stride
    ingest_directory(tmp / "csv", stepped)
    ingest_directory(tmp / "csv", whole)
    for symbol in ("AAA", "BBB"):
        a, b = stepped.arrays(symbol), whole.arrays(symbol)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_parse_until_reads_only_up_to_the_bound() -> None:
    data = (HEADER + "".join(row(i) for i in range(300))).encode()
    parsed, hidden = parse_until(data, ns(99))
    assert hidden and len(parsed.timestamps) == 100 and parsed.timestamps[-1] == ns(99)
    assert data[: parsed.consumed].endswith(row(99).encode())
    whole, hidden = parse_until(data, ns(1000))
    assert not hidden and len(whole.timestamps) == 300


def test_a_line_in_another_time_zone_is_noted_when_it_arrives(
    folder: tuple[Path, BarStore],
) -> None:
    csv_dir, store = folder
    path = csv_dir / "AAA.csv"
    path.write_text(HEADER + "2024-01-02T21:00:00Z,10,11,9,10.5,1000\n"
                    "2024-01-03T21:00:00Z,10.5,11,10,10.8,1200\n")
    assert ingest_directory(csv_dir, store).notes == []
    with path.open("a") as handle:  # appended: only the new line (and the first) is read
        handle.write("2024-01-04T16:00:00-05:00,10.8,11,10,10.9,1300\n")
    notes = ingest_directory(csv_dir, store).notes
    assert [n for n in notes if "mixed time zones" in n] == [
        "AAA.csv: mixed time zones in the timestamp column (Z, -05:00); each is converted to "
        "UTC, so two bars may fall on one date: check the source"]
