"""The array-based CSV parse gives exactly what the row-by-row reference parse gives.

``bars.parse`` vouches for the longest clean prefix of the lines with array operations and hands
the rest to the row-by-row reference (``bars._parse_rows``). These tests run both on the same
text, with every kind of anomaly planted at a random line, and require the same bars (bit for
bit), line numbers, problems and messages.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.core.data import bars
from aistock_actors.core.data.bars import parse, parse_header

HEADER = "timestamp,open,high,low,close,volume"

ANOMALIES = [
    "",
    "   ",
    "\r",
    "2020-02-30,1,2,0.5,1.5,100",
    "2021-02-29,1,2,0.5,1.5,100",
    "2020-13-01,1,2,0.5,1.5,100",
    "2020-00-10,1,2,0.5,1.5,100",
    "0000-01-01,1,2,0.5,1.5,100",
    "1677-09-21,1,2,0.5,1.5,100",
    "1677-09-22,1,2,0.5,1.5,100",
    "2262-04-11,1,2,0.5,1.5,100",
    "2262-04-12,1,2,0.5,1.5,100",
    "9999-12-31,1,2,0.5,1.5,100",
    "2020-1-02,1,2,0.5,1.5,100",
    "20200102,1,2,0.5,1.5,100",
    "2020-01-02T10:00:00,1,2,0.5,1.5,100",
    "2020-01-02 10:00:00+02:00,1,2,0.5,1.5,100",
    "2020-01-02Z,1,2,0.5,1.5,100",
    "\uff12\uff10\uff12\uff10-01-02,1,2,0.5,1.5,100",  # fullwidth digits
    '"2020-01-02",1,2,0.5,1.5,100',
    " 2020-01-02 ,1,2,0.5,1.5,100",
    "2020-01-02,1,2,0.5,1.5",
    "2020-01-02,1,2,0.5,1.5,100,7",
    "2020-01-02,nan,2,0.5,1.5,100",
    "2020-01-02,1,inf,0.5,1.5,100",
    "2020-01-02,1,2,0.5,1.5,-inf",
    "2020-01-02,1,2,0.5,1.5,NA",
    "2020-01-02,1,2,-,1.5,100",
    "2020-01-02,1,2,0.5,1.5,",
    "2020-01-02,1_0,20,5,15,100",
    "2020-01-02,\u0661,2,0.5,1.5,100",  # an Arabic-Indic digit: float() takes it
    '2020-01-02,"1",2,0.5,1.5,100',
    "2020-01-02, 1 ,2,0.5,1.5,100\r",
    "2020-01-02,0,2,0.5,1.5,100",
    "2020-01-02,-0.0,2,0.5,1.5,100",
    "2020-01-02,1,2,0.5,1.5,-1",
    "2020-01-02,1,2,1.2,1.5,100",
    "2020-01-02,1,1.4,0.5,1.5,100",
    "2020-01-02,1,2,0.5,1.5,1e400",
    "2020-01-02,1e-400,2,0.5,1.5,100",
    "2020-01-02,0x10,20,5,15,100",
    "2020-01-02,abc,2,0.5,1.5,100",
]


Reference = tuple[list[int], list[list[float]], list[int], list[tuple[int | None, str]]]


def reference(text: str, *, after: int | None = None) -> Reference:
    """The row-by-row parse of a whole text (header on line 1, terminated lines only)."""
    head, _, body = text.partition("\n")
    columns = parse_header(head.strip())
    lines = body[: body.rfind("\n") + 1].split("\n")[:-1]
    ts, values, rows, problems = bars._parse_rows(
        lines, columns, first_line=2, after=after, max_problems=bars.MAX_PROBLEMS
    )
    return ts, [list(v) for v in values], rows, [(p.row, p.reason) for p in problems]


def assert_same(text: str, *, after: int | None = None) -> None:
    got = parse(text, after=after)
    ts, values, rows, problems = reference(text, after=after)
    assert [(p.row, p.reason) for p in got.problems] == problems
    assert got.timestamps.tolist() == ts
    assert got.rows.tolist() == rows
    expected = np.array(values, dtype=np.float64).reshape(-1, 5)
    assert got.values.shape == expected.shape
    assert got.values.tobytes() == expected.tobytes()  # bit for bit (-0.0, subnormals)


def clean_rows(n: int, seed: int, start: datetime = datetime(2020, 1, 2, tzinfo=UTC)) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        day = (start + timedelta(days=i)).date().isoformat()
        o, c = (float(p) for p in rng.uniform(1, 500, 2).round(int(rng.integers(0, 9))))
        h = max(o, c) * (1 + float(rng.uniform(0, 0.05)))
        lo = min(o, c) * (1 - float(rng.uniform(0, 0.05)))
        v = int(rng.integers(0, 10**7))
        out.append(f"{day},{o!r},{h!r},{lo!r},{c!r},{v}")
    return out


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(0, 40),
    seed=st.integers(0, 2**16),
    plants=st.lists(
        st.tuples(st.integers(0, 60), st.sampled_from(ANOMALIES) | st.text(max_size=30)),
        max_size=4,
    ),
    swaps=st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), max_size=2),
    after_row=st.none() | st.integers(0, 40),
)
def test_vectorised_parse_equals_row_by_row(
    n: int,
    seed: int,
    plants: list[tuple[int, str]],
    swaps: list[tuple[int, int]],
    after_row: int | None,
) -> None:
    lines = clean_rows(n, seed)
    for a, b in swaps:  # out-of-order and duplicate timestamps
        if lines:
            lines[a % len(lines)] = lines[b % len(lines)]
    for at, text in plants:
        lines.insert(at % (len(lines) + 1), text.replace("\n", " "))
    after = None
    if after_row is not None:
        first = int(datetime(2020, 1, 2, tzinfo=UTC).timestamp()) * 10**9
        after = first + after_row * 86_400 * 10**9
    assert_same("\n".join([HEADER, *lines]) + "\n", after=after)


def test_clean_rows_are_clean() -> None:
    text = "\n".join([HEADER, *clean_rows(200, 9)]) + "\n"
    assert parse(text).ok and len(parse(text).timestamps) == 200
    assert_same(text)


@pytest.mark.parametrize("anomaly", ANOMALIES)
def test_each_anomaly_in_the_middle_of_a_clean_file(anomaly: str) -> None:
    lines = clean_rows(30, 3)
    assert_same("\n".join([HEADER, *lines[:15], anomaly, *lines[15:]]) + "\n")


def test_intraday_and_other_column_orders() -> None:
    rows = [
        f"{(datetime(2020, 1, 2, 9, 30, tzinfo=UTC) + timedelta(minutes=i)).isoformat()},"
        f"{10 + i},{12 + i},{9 + i},{11 + i},{1000 * i}"
        for i in range(50)
    ]
    assert_same("\n".join([HEADER, *rows]) + "\n")
    reordered = "date,volume,close,low,high,open,extra\n" + "".join(
        f"2020-01-{d:02d},{d * 10},1.5,0.5,2,1,x\n" for d in range(1, 29)
    )
    assert_same(reordered)


def test_many_problems_stop_at_max_problems() -> None:
    lines = clean_rows(20, 1)
    bad = [line.replace(",", ";", 1) for line in lines]
    assert_same("\n".join([HEADER, *lines[:5], *bad]) + "\n")


def test_resumed_tail_uses_file_line_numbers() -> None:
    lines = clean_rows(20, 2)
    text = "\n".join([HEADER, *lines]) + "\n"
    head = "\n".join([HEADER, *lines[:12]]) + "\n"
    got = parse(text, offset=len(head.encode()), lines_before=13)
    assert got.ok and got.rows.tolist() == list(range(14, 22))
    assert got.timestamps.tolist() == parse(text).timestamps[12:].tolist()
