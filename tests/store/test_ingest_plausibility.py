"""#17: bars from the future or from another planet are refused with file, row and reason; a
shrunk CSV is noted; the rejected symbol keeps its bars and the rest ingest."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from _support.paper_support import Rig, step_data
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.core.data.bars import format_timestamp
from aistock_actors.store.bars import BarStore
from aistock_actors.store.ingest import BarLimits, ingest_directory
from aistock_actors.store.ingest_checks import (
    BULK_ROWS,
    _row_by_row,
    body_zones,
    implausible_bars,
)

HEADER = "timestamp,open,high,low,close,volume\n"
ROWS = ["2024-01-02,10,11,9,10.5,1000", "2024-01-03,10.5,11,10,10.8,1200"]
NOW = 1_710_000_000 * 10**9  # 2024-03-09


def write(folder: Path, name: str, rows: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(HEADER + "".join(r + "\n" for r in rows))
    return path


def ingest(tmp_path: Path, jump: float = 3.0) -> tuple[BarStore, object]:
    store = BarStore(tmp_path / "bars")
    return store, ingest_directory(tmp_path / "data", store,
                                   limits=BarLimits(not_after_ns=NOW, max_relative_jump=jump))


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("2099-01-01,10,11,9,10.5,1000", "bar from the future: 2099-01-01"),
        ("2024-01-04,1e300,1e300,1e300,1e300,1000", "impossible magnitude"),
        ("2024-01-04,10,11,9,10.5,1e300", "impossible magnitude"),
        ("2024-01-04,60,61,59,60,1000", "implausible jump: open 60 is 5.56x the previous close"),
        ("2024-01-04,10.8,11,1,1.5,1000", "implausible jump: close 1.5 is 0.139x"),
    ],
)
def test_an_absurd_row_rejects_its_file_naming_row_and_reason(
    tmp_path: Path, row: str, reason: str
) -> None:
    write(tmp_path / "data", "AAA.csv", [*ROWS, row])
    write(tmp_path / "data", "BBB.csv", ROWS)
    store, report = ingest(tmp_path)
    assert report.per_symbol == {"BBB": 2}  # type: ignore[attr-defined]
    (rejection,) = report.rejections  # type: ignore[attr-defined]
    assert rejection.file.endswith("AAA.csv") and rejection.problems[0].row == 4
    assert reason in rejection.problems[0].reason
    assert store.last_timestamp("AAA") is None


def test_a_jump_is_measured_from_the_stored_close_across_runs(tmp_path: Path) -> None:
    path = write(tmp_path / "data", "AAA.csv", ROWS)
    ingest(tmp_path)
    path.write_text(path.read_text() + "2024-01-04,100,101,99,100,1000\n")
    store, report = ingest(tmp_path)
    assert "implausible jump" in report.rejections[0].problems[0].reason  # type: ignore[attr-defined]
    assert store.arrays("AAA")[0].size == 2
    _, relaxed = ingest(tmp_path, jump=20.0)  # the threshold is the config's
    assert relaxed.per_symbol == {"AAA": 1}  # type: ignore[attr-defined]


def test_a_shrunk_csv_is_noted_once(tmp_path: Path) -> None:
    path = write(tmp_path / "data", "AAA.csv", ROWS)
    ingest(tmp_path)
    path.write_text(HEADER + ROWS[0] + "\n")
    _, report = ingest(tmp_path)
    assert any("AAA.csv: shrank from" in n for n in report.notes)  # type: ignore[attr-defined]
    _, again = ingest(tmp_path)
    assert not any("shrank" in n for n in again.notes)  # type: ignore[attr-defined]


def test_the_2099_row_is_rejected_and_trading_continues(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.once()
    csv = tmp_path / "data" / "SYM000.csv"
    clean = csv.read_text()
    csv.write_text(clean + "2099-01-01,10,11,9,10.5,1000\n")
    summary = rig.once()
    assert step_data(summary, "trade")["step_status"] == "ok"
    alerts = [json.loads(p.read_text()) for p in (rig.state_dir / "alerts" / "error").glob("*")]
    rejected = [a for a in alerts if a["code"] == "csv_rejected"]
    assert rejected and "SYM000.csv" in rejected[0]["message"]
    assert "row 202: bar from the future: 2099-01-01" in rejected[0]["message"]
    assert not rig.ledger().as_of.startswith("2099")
    csv.write_text(clean)  # the operator removes the row: new bars flow again
    rig.grow(205)
    rig.once()
    last = BarStore(rig.state_dir / "bars").last_timestamp("SYM000")
    assert last is not None and format_timestamp(last) == format_timestamp(
        int(rig.frames["SYM000"].index[204].value))


def test_a_garbled_bar_file_without_bak_fails_that_symbol_only(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.once()
    bars = rig.state_dir / "bars"
    (bars / "SYM001.npz").write_bytes(b"garbled")
    (bars / "SYM001.npz.bak").unlink(missing_ok=True)
    rig.grow(201)
    summary = rig.once()
    ingest = step_data(summary, "ingest")
    assert ingest["step_status"] == "ok" and ingest["symbols_rejected"] == ["SYM001"]
    assert step_data(summary, "trade")["step_status"] == "ok"
    store = BarStore(bars)
    assert store.readable_symbols() == ["SYM000", "SYM002", "SYM003"]
    assert store.symbols() == ["SYM000", "SYM001", "SYM002", "SYM003"]
    assert all(store.count(s) == 201 for s in store.readable_symbols())
    assert sorted(store.load_many()) == ["SYM000", "SYM002", "SYM003"]


def test_mixed_time_zones_in_one_csv_are_noted(tmp_path: Path) -> None:
    write(tmp_path / "data", "AAA.csv", ["2024-01-02T21:00:00Z,10,11,9,10.5,1000",
                                         "2024-01-03T16:00:00-05:00,10.5,11,10,10.8,1200"])
    write(tmp_path / "data", "BBB.csv", ["2024-01-02T21:00:00Z,10,11,9,10.5,1000",
                                         "2024-01-03T21:00:00Z,10.5,11,10,10.8,1200"])
    _, report = ingest(tmp_path)
    notes = report.notes  # type: ignore[attr-defined]
    assert [n for n in notes if "mixed time zones" in n] == [
        "AAA.csv: mixed time zones in the timestamp column (Z, -05:00); each is converted to "
        "UTC, so two bars may fall on one date: check the source"]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(BULK_ROWS, 150),
    seed=st.integers(0, 10_000),
    previous=st.sampled_from([None, 10.0, 0.5, float("nan")]),
    planted=st.lists(st.tuples(st.integers(0, 149), st.sampled_from(
        ["future", "nan", "huge_price", "huge_volume", "jump_up", "jump_down", "inf"])),
        max_size=12),
)
def test_a_bulk_ingest_flags_exactly_the_rows_the_row_by_row_check_does(
    n: int, seed: int, previous: float | None, planted: list[tuple[int, str]]
) -> None:
    """#18: a first ingest (>= BULK_ROWS new bars) screens the rows with numpy and checks the
    flagged ones one by one: the same (at most five) problems, reasons and rows as checking
    every row in turn."""
    rng = np.random.default_rng(seed)
    close = 10.0 * np.exp(np.cumsum(rng.normal(0.0, 0.3, n)))  # jumps happen on their own too
    values = np.column_stack([close, close * 1.01, close * 0.99, close, rng.uniform(1, 1e4, n)])
    timestamps = np.arange(n, dtype=np.int64) * 86_400 * 10**9 + NOW - n * 86_400 * 10**9
    for row, kind in planted:
        if row >= n:
            continue
        if kind == "future":
            timestamps[row] = NOW + 10**12
        elif kind in ("nan", "inf"):
            values[row, rng.integers(0, 5)] = np.nan if kind == "nan" else np.inf
        elif kind == "huge_price":
            values[row, :4] = 2e7
        elif kind == "huge_volume":
            values[row, 4] = 1e14
        else:
            values[row, [0, 3]] *= 9.0 if kind == "jump_up" else 1 / 9.0
    rows = np.arange(2, n + 2, dtype=np.int64)
    limits = BarLimits(not_after_ns=NOW, max_relative_jump=3.0)
    assert implausible_bars(timestamps, values, rows, previous, limits) == _row_by_row(
        timestamps, values, rows, previous, limits)


def _zones_one_line_at_a_time(body: bytes, column: int) -> list[str]:
    """The rule as written before #18's fast path: every line split, stripped and matched."""
    seen: list[str] = []
    for line in body.decode("utf-8", "replace").splitlines():
        fields = line.split(",")
        if len(fields) <= column or not fields[column].strip():
            continue
        stamp = fields[column].strip().strip('"')
        match = re.search(r"(Z|[+-]\d\d:?\d\d)$", stamp) if "T" in stamp or " " in stamp else None
        zone = match.group(1) if match else "naive"
        if zone not in seen:
            seen.append(zone)
    return seen


@settings(max_examples=80, deadline=None)
@given(
    lines=st.lists(st.one_of(
        st.sampled_from(["2024-01-02", "2024-01-02T10:00:00Z", "2024-01-02 10:00:00+02:00",
                         "2024-01-02T10:00:00-0500", '"2024-01-03"', "", "  ", '""']),
        st.text(alphabet="0123456789-:TZ+ ", max_size=12)), max_size=30),
    column=st.integers(0, 2),
)
def test_time_zones_of_a_body_are_the_line_by_line_rule(lines: list[str], column: int) -> None:
    """#18: a body of dates only (no ``T``, no space) takes a shortcut; every body gives the
    zones of the line-by-line rule, in order of first appearance."""
    body = "".join(",".join(["x"] * column + [stamp, "1", "2"]) + "\n" for stamp in lines)
    assert body_zones(body.encode(), column) == _zones_one_line_at_a_time(body.encode(), column)
