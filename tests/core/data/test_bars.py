from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.core.data.bars import (
    FIELDS,
    MAX_PROBLEMS,
    bars_frame,
    format_csv,
    format_timestamp,
    frame_arrays,
    parse,
    parse_header,
)
from aistock_actors.errors import DataError

D1 = int(datetime(2020, 1, 2, tzinfo=UTC).timestamp()) * 10**9
D2 = int(datetime(2020, 1, 3, tzinfo=UTC).timestamp()) * 10**9
STANDARD = "timestamp,open,high,low,close,volume\n"


def only_problem(text: str | bytes) -> tuple[int | None, str]:
    result = parse(text)
    assert len(result.problems) == 1, result.problems
    return result.problems[0].row, result.problems[0].reason


# --- header conventions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "timestamp,open,high,low,close,volume\n2020-01-02,1,2,0.5,1.5,100\n",
        "Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,1,2,0.5,1.5,1.2,100\n",
        ",timestamp,open,high,low,close,volume\n0,2020-01-02,1,2,0.5,1.5,100\n",
        ",open,high,low,close,volume\n2020-01-02,1,2,0.5,1.5,100\n",
        "Unnamed: 0,Open,High,Low,Close,Volume\n2020-01-02,1,2,0.5,1.5,100\n",
        "DATE,OPEN,HIGH,LOW,CLOSE,VOLUME\n2020-01-02,1,2,0.5,1.5,100\n",
        "  Datetime , open ,HIGH, Low,close , Volume \n 2020-01-02 , 1 ,2, 0.5,1.5 , 100 \n",
        "time,open,high,low,close,volume\n2020-01-02T00:00:00,1,2,0.5,1.5,100\n",
        "date,volume,close,low,high,open\n2020-01-02,100,1.5,0.5,2,1\n",
        '"Date","Open","High","Low","Close","Volume"\n"2020-01-02","1","2","0.5","1.5","100"\n',
        "\ufefftimestamp,open,high,low,close,volume\r\n2020-01-02,1,2,0.5,1.5,100\r\n",
        "timestamp,open,high,low,close,volume\n2020-01-02T05:00:00+05:00,1,2,0.5,1.5,100\n",
        "timestamp,open,high,low,close,volume\n2020-01-02T00:00:00Z,1,2,0.5,1.5,1e2\n",
    ],
)
def test_accepted_conventions_give_the_same_bar(text: str) -> None:
    result = parse(text)
    assert result.ok, result.problems
    assert result.timestamps.tolist() == [D1]
    assert result.values.tolist() == [[1.0, 2.0, 0.5, 1.5, 100.0]]
    assert result.rows.tolist() == [2]
    assert not result.pending


def test_finance_export_uses_close_not_adj_close() -> None:
    text = "Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,1,2,0.5,1.5,0.9,7\n"
    assert parse(text).values[0, FIELDS.index("close")] == 1.5


def test_naive_datetimes_are_utc_and_offsets_are_converted() -> None:
    text = STANDARD + "2020-01-02 10:30:00,1,2,0.5,1.5,1\n2020-01-02T12:30:00+01:00,1,2,0.5,1.5,1\n"
    result = parse(text)
    hour = 3600 * 10**9
    assert result.timestamps.tolist() == [D1 + 10 * hour + hour // 2, D1 + 11 * hour + hour // 2]


def test_header_errors_name_the_problem() -> None:
    with pytest.raises(DataError, match=r"missing required column\(s\): volume"):
        parse_header("timestamp,open,high,low,close")
    with pytest.raises(DataError, match="no header line"):
        parse_header("2020-01-02,1,2,0.5,1.5,100")
    with pytest.raises(DataError, match="ambiguous header"):
        parse_header("date,time,open,high,low,close,volume")


# --- validation: one reason per malformation ----------------------------------------------------

ROW_CASES = [
    ("2020-01-03,1,2,0.5\n", "wrong field count: expected 6 fields, got 4"),
    ("2020-01-03,1,2,0.5,1.5,100,7\n", "wrong field count"),
    ("yesterday,1,2,0.5,1.5,100\n", "unparseable timestamp 'yesterday'"),
    ("2020-01-03,1,abc,0.5,1.5,100\n", "unparseable number 'abc' in column 'high'"),
    ("2020-01-03,1,inf,0.5,1.5,100\n", "unparseable number 'inf' in column 'high' (not finite)"),
    ("2020-01-03,1,2,,1.5,100\n", "missing value or NaN in column 'low'"),
    ("2020-01-03,1,2,0.5,NaN,100\n", "missing value or NaN in column 'close'"),
    ("2020-01-03,null,2,0.5,1.5,100\n", "missing value or NaN in column 'open'"),
    (",1,2,0.5,1.5,100\n", "missing value or NaN in column 'timestamp'"),
    ("2020-01-03,0,2,0.5,1.5,100\n", "non-positive price: open is 0.0"),
    ("2020-01-03,1,2,-0.5,1.5,100\n", "non-positive price: low is -0.5"),
    ("2020-01-03,1,2,0.5,1.5,-1\n", "negative volume: -1.0"),
    ("2020-01-03,1,2,1.2,1.5,100\n", "inconsistent OHLC: low 1.2 is above min(open, close) 1.0"),
    ("2020-01-03,1,1.4,0.5,1.5,100\n", "inconsistent OHLC: high 1.4 is below max(open, close) 1.5"),
    ("2020-01-02,1,2,0.5,1.5,100\n", "timestamps not strictly increasing: 2020-01-02 duplicates"),
    ("2020-01-01,1,2,0.5,1.5,100\n", "timestamps not strictly increasing: 2020-01-01 is before"),
]


@pytest.mark.parametrize(("line", "reason"), ROW_CASES)
def test_each_bad_row_is_reported_with_line_and_reason(line: str, reason: str) -> None:
    row, message = only_problem(STANDARD + "2020-01-02,1,2,0.5,1.5,100\n" + line)
    assert row == 3
    assert message.startswith(reason), message


def test_duplicate_and_out_of_order_reasons_differ() -> None:
    dup = only_problem(STANDARD + "2020-01-02,1,2,0.5,1.5,1\n2020-01-02,1,2,0.5,1.5,1\n")[1]
    old = only_problem(STANDARD + "2020-01-02,1,2,0.5,1.5,1\n2020-01-01,1,2,0.5,1.5,1\n")[1]
    assert "duplicates line 2" in dup
    assert "is before 2020-01-02 on line 2" in old


def test_whole_file_problems() -> None:
    assert only_problem("timestamp,open,high,low,close\n2020-01-02,1,2,0.5,1.5\n") == (
        1,
        "missing required column(s): volume",
    )
    row, reason = only_problem("2020-01-02,1,2,0.5,1.5,100\n2020-01-03,1,2,0.5,1.5,100\n")
    assert row == 1 and reason.startswith("no header line")
    row, reason = only_problem(STANDARD.encode() + b"2020-01-02,1,2,0.5,1.5,1\n\xff\xfe,1\n")
    assert row == 3 and reason.startswith("not valid UTF-8")


def test_empty_and_header_only_files_give_zero_bars_without_problems() -> None:
    for text in ("", "\n\n", STANDARD):
        result = parse(text)
        assert result.ok and len(result.timestamps) == 0 and not result.pending
    assert parse(STANDARD).consumed == len(STANDARD)
    assert parse(STANDARD).lines == 1


def test_blank_lines_are_skipped_but_counted() -> None:
    result = parse(STANDARD + "\n2020-01-02,1,2,0.5,1.5,1\n   \n2020-01-03,1,2,0.5,1.5,1\n")
    assert result.ok and result.rows.tolist() == [3, 5]


def test_at_most_max_problems_are_reported() -> None:
    text = STANDARD + "".join(f"2020-01-{d:02d},x,2,0.5,1.5,1\n" for d in range(1, 20))
    problems = parse(text).problems
    assert len(problems) == MAX_PROBLEMS
    assert [p.row for p in problems] == [2, 3, 4, 5, 6]


# --- incremental parsing ------------------------------------------------------------------------


def test_unterminated_last_line_is_left_pending() -> None:
    text = STANDARD + "2020-01-02,1,2,0.5,1.5,100\n2020-01-03,1,2,0.5,1."
    result = parse(text)
    assert result.ok and result.timestamps.tolist() == [D1] and result.pending
    assert result.consumed == text.index("2020-01-03") and result.lines == 2


def test_resume_parses_only_the_tail_with_file_line_numbers() -> None:
    head = STANDARD + "2020-01-02,1,2,0.5,1.5,100\n"
    text = head + "2020-01-03,1,2,0.5,1.5,100\n2020-01-06,1,2,0.5,x,100\n"
    first = parse(head)
    result = parse(text, offset=first.consumed, lines_before=first.lines, after=D1)
    assert [(p.row, p.reason) for p in result.problems] == [
        (4, "unparseable number 'x' in column 'close'")
    ]
    good = parse(text[: text.index("2020-01-06")], offset=first.consumed, lines_before=2, after=D1)
    assert good.timestamps.tolist() == [D2] and good.rows.tolist() == [3] and good.lines == 3


def test_after_rejects_rows_not_newer_than_stored() -> None:
    result = parse(STANDARD + "2020-01-03,1,2,0.5,1.5,1\n", after=D2)
    assert [(p.row, p.reason) for p in result.problems] == [
        (2, "timestamp 2020-01-03 is not newer than the last stored bar 2020-01-03")
    ]


def test_resume_offset_must_be_a_line_boundary() -> None:
    with pytest.raises(ValueError, match="not the end of a complete line"):
        parse(STANDARD, offset=3)


# --- formatting and frames ----------------------------------------------------------------------


def test_format_timestamp() -> None:
    assert format_timestamp(D1) == "2020-01-02"
    assert format_timestamp(D1 + 90 * 10**9) == "2020-01-02T00:01:30+00:00"


def test_frame_shape_and_dtypes() -> None:
    frame = bars_frame(np.array([D1, D2]), np.ones((2, 5)))
    assert frame.index.name == "timestamp" and str(frame.index.dtype) == "datetime64[ns, UTC]"
    assert list(frame.columns) == list(FIELDS) and (frame.dtypes == np.float64).all()


# --- invariants ---------------------------------------------------------------------------------

_TOKENS = st.sampled_from(
    ["2020-01-02", "2020-01-03", "x", "", "nan", "-1", "0", "1", "2.5", "1e309", '"', " ", "\x00"]
)
_NEAR_VALID = st.lists(
    st.lists(_TOKENS, min_size=4, max_size=8).map(",".join), max_size=8
).map(lambda rows: STANDARD + "\n".join(rows))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.binary(), _NEAR_VALID, _NEAR_VALID.map(str.encode)))
def test_any_input_gives_bars_or_problems_never_a_crash(data: str | bytes) -> None:
    try:
        result = parse(data)
    except DataError:
        return
    assert len(result.problems) <= MAX_PROBLEMS
    if result.ok:
        ts, values = result.timestamps, result.values
        assert (np.diff(ts) > 0).all() and np.isfinite(values).all()
        assert (values[:, :4] > 0).all() and (values[:, 4] >= 0).all()
        assert (values[:, 2] <= np.minimum(values[:, 0], values[:, 3])).all()
        assert (values[:, 1] >= np.maximum(values[:, 0], values[:, 3])).all()


_PRICE = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False)


@st.composite
def valid_frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(min_value=0, max_value=20))
    gaps = draw(st.lists(st.integers(1, 10**6), min_size=n, max_size=n))
    start = draw(st.integers(-(10**12), 10**12)) * 10**6
    timestamps = start + np.cumsum(np.array(gaps, dtype=np.int64) * 10**6 * 60)
    rows = []
    for _ in range(n):
        o, c, extra_high = (draw(_PRICE) for _ in range(3))
        high, low = max(o, c) + extra_high, min(o, c) * draw(st.floats(0.01, 1.0))
        volume = draw(st.floats(0, 1e12, allow_nan=False))
        rows.append([o, high, low, c, volume])
    return bars_frame(timestamps.astype(np.int64), np.array(rows, dtype=np.float64))


@settings(max_examples=100, deadline=None)
@given(valid_frames())
def test_valid_frames_round_trip_exactly(frame: pd.DataFrame) -> None:
    result = parse(format_csv(frame))
    assert result.ok, result.problems
    timestamps, values = frame_arrays(frame)
    assert result.timestamps.tolist() == timestamps.tolist()
    assert result.values.tolist() == values.tolist()
    pd.testing.assert_frame_equal(bars_frame(result.timestamps, result.values), frame)


def test_round_trip_keeps_awkward_floats() -> None:
    frame = bars_frame(np.array([D1]), np.array([[0.1 + 0.2, 1e300, math.ulp(0.0), 0.3, 2**60]]))
    assert parse(format_csv(frame)).values.tolist() == frame.to_numpy().tolist()
