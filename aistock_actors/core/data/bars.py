"""Pure parsing and validation of OHLCV CSV text (no file I/O).

Accepted conventions: ``timestamp,open,high,low,close,volume``; finance-site exports
``Date,Open,High,Low,Close,Adj Close,Volume`` (``Close`` is used, ``Adj Close`` ignored); an unnamed
first index column as written by ``DataFrame.to_csv`` (ignored when another column holds the
timestamp, used as the timestamp otherwise); any header case; ``date``/``datetime``/``time`` for the
timestamp; whitespace and double quotes around fields. Timestamps are ISO dates or datetimes, naive
ones are UTC, and are kept as int64 nanoseconds UTC (parsed to microsecond precision).

Only complete lines (ending in ``\\n``) are consumed: an unterminated last line is probably still
being written and is left for the next call. Row problems are returned, never raised, so a caller
can reject a whole file with line numbers (the header is line 1) and reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import msgspec
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from aistock_actors.core.data.bar_arrays import _clean_prefix
from aistock_actors.core.data.bar_fields import (
    _DAY_NS,
    _EPOCH,
    FIELDS,
    _clean,
    _parse_timestamp,
    check_values,
    parse_number,
)
from aistock_actors.errors import DataError

__all__ = [
    "FIELDS",
    "MAX_PROBLEMS",
    "TIMESTAMP_NAMES",
    "Columns",
    "ParsedBars",
    "RowProblem",
    "bars_frame",
    "format_csv",
    "format_timestamp",
    "frame_arrays",
    "parse",
    "parse_header",
    "parse_row",
]

MAX_PROBLEMS = 5
"""A file is rejected whole; this many problems are enough to tell the operator what is wrong."""

TIMESTAMP_NAMES = ("timestamp", "datetime", "date", "time")
_REQUIRED = ("timestamp", *FIELDS)
_INDEX_NAMES = frozenset({"", "unnamed: 0"})


class RowProblem(msgspec.Struct, frozen=True):
    """Why a line of a CSV file was refused; ``row`` is the 1-based line (None: whole file)."""

    row: int | None
    reason: str


@dataclass(frozen=True)
class Columns:
    """Where the timestamp and the five value columns sit in a row of ``n_fields`` fields."""

    n_fields: int
    positions: tuple[int, int, int, int, int, int]


@dataclass(frozen=True)
class ParsedBars:
    """Bars parsed from the complete lines of a CSV (valid only when ``problems`` is empty)."""

    timestamps: NDArray[np.int64]
    values: NDArray[np.float64]
    """Shape ``(n, 5)``: open, high, low, close, volume."""
    rows: NDArray[np.int64]
    """1-based line number of each bar in the file."""
    problems: tuple[RowProblem, ...]
    consumed: int
    """Byte offset just past the last complete line (the resume point of the next call)."""
    lines: int
    """Number of complete lines up to ``consumed`` (the header included)."""
    pending: bool
    """An unterminated, non-blank last line was left unread."""

    @property
    def ok(self) -> bool:
        """True when no row or header problem was found."""
        return not self.problems


def format_timestamp(ns: int) -> str:
    """Render int64 nanoseconds UTC as an ISO date (midnight) or ISO datetime."""
    moment = _EPOCH + timedelta(microseconds=ns // 1000)
    if ns % _DAY_NS == 0:
        return moment.date().isoformat()
    return moment.isoformat()


def parse_header(line: str) -> Columns:
    """Locate the required columns in a header line; raise ``DataError`` if any is missing."""
    names = [" ".join(_clean(field).lower().split()) for field in line.split(",")]
    positions: dict[str, int] = {}
    for i, name in enumerate(names):
        key = "timestamp" if name in TIMESTAMP_NAMES else name
        if key not in _REQUIRED:
            continue
        if key in positions:
            clash = f"{names[positions[key]]!r} and {name!r}"
            raise DataError(f"ambiguous header: columns {clash} both name the {key} column")
        positions[key] = i
    if not positions:
        raise DataError(
            "no header line: line 1 names none of the columns "
            "(expected e.g. timestamp,open,high,low,close,volume)"
        )
    if "timestamp" not in positions and names[0] in _INDEX_NAMES:
        positions["timestamp"] = 0
    missing = [name for name in _REQUIRED if name not in positions]
    if missing:
        raise DataError(f"missing required column(s): {', '.join(missing)}")
    ts, o, h, lo, c, v = (positions[name] for name in _REQUIRED)
    return Columns(n_fields=len(names), positions=(ts, o, h, lo, c, v))


def parse(
    data: bytes | str,
    *,
    offset: int = 0,
    lines_before: int = 0,
    after: int | None = None,
    max_problems: int = MAX_PROBLEMS,
) -> ParsedBars:
    """Parse the complete lines of a CSV file's content.

    ``offset``/``lines_before`` resume after a prefix (a line boundary) parsed by an earlier call;
    the header is always read from the start. ``after`` requires every bar to be strictly newer
    (the last stored bar when appending). Never raises for bad content: see ``problems``.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    end = raw.rfind(b"\n") + 1
    if not 0 <= offset <= end or (offset > 0 and raw[offset - 1 : offset] != b"\n"):
        raise ValueError(f"offset {offset} is not the end of a complete line")
    pending = bool(raw[end:].strip())
    if not raw[:end].strip():
        return _result([], [], [], [], consumed=0, lines=0, pending=bool(raw.strip()))
    header_end = raw.find(b"\n") + 1
    header = _decode(raw[:header_end], first_line=1)
    if isinstance(header, RowProblem):
        return _result([], [], [], [header], consumed=0, lines=0, pending=pending)
    try:
        columns = parse_header(header.removeprefix("\ufeff").strip())
    except DataError as exc:
        return _result([], [], [], [RowProblem(1, str(exc))], consumed=0, lines=0, pending=pending)
    start, first_line = (offset, lines_before + 1) if offset >= header_end else (header_end, 2)
    body = _decode(raw[start:end], first_line=first_line)
    if isinstance(body, RowProblem):
        return _result([], [], [], [body], consumed=0, lines=0, pending=pending)
    ts_list, value_list, rows, problems = _parse_lines(
        body, columns, first_line=first_line, after=after, max_problems=max_problems
    )
    lines = first_line - 1 + body.count("\n")
    return _result(ts_list, value_list, rows, problems, consumed=end, lines=lines, pending=pending)


def row_timestamp(line: str, columns: Columns) -> int | None:
    """The timestamp (ns) of a CSV row whose timestamp field parses, even if another field does
    not (a replay's clock decides from it whether a bad row is written yet); else None."""
    fields = line.split(",")
    position = columns.positions[0]
    if position >= len(fields):
        return None
    ts = _parse_timestamp(_clean(fields[position]))
    return ts if isinstance(ts, int) else None


def bars_frame(timestamps: NDArray[np.int64], values: NDArray[np.float64]) -> pd.DataFrame:
    """Build the project's bar frame: UTC DatetimeIndex ``timestamp``, float64 value columns."""
    index = pd.DatetimeIndex(np.asarray(timestamps, dtype="datetime64[ns]"), name="timestamp")
    # One copy, already in pandas' layout (one contiguous row per column), then no second copy.
    columns = np.array(np.asarray(values, dtype=np.float64).reshape(-1, len(FIELDS)).T, order="C")
    return pd.DataFrame(columns.T, index=index.tz_localize("UTC"), columns=list(FIELDS), copy=False)


def frame_arrays(frame: pd.DataFrame) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Inverse of ``bars_frame``: int64 ns UTC timestamps and an ``(n, 5)`` float64 array."""
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise DataError("a bar frame needs a timezone-aware DatetimeIndex")
    timestamps = np.asarray(index.tz_convert("UTC").as_unit("ns").asi8, dtype=np.int64)
    values = frame.loc[:, list(FIELDS)].to_numpy(dtype=np.float64, copy=True)
    return timestamps, values


def format_csv(frame: pd.DataFrame) -> str:
    """Render bars as ``timestamp,open,high,low,close,volume`` CSV that re-parses exactly."""
    timestamps, values = frame_arrays(frame)
    out = [",".join(("timestamp", *FIELDS))]
    for ns, row in zip(timestamps.tolist(), values.tolist(), strict=True):
        out.append(",".join((format_timestamp(ns), *(_format_number(v) for v in row))))
    return "\n".join(out) + "\n"


def _format_number(value: float) -> str:
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _decode(chunk: bytes, *, first_line: int) -> str | RowProblem:
    try:
        return chunk.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + chunk.count(b"\n", 0, exc.start)
        return RowProblem(line, f"not valid UTF-8 text ({exc.reason} at byte {exc.start})")


def _parse_lines(
    text: str, columns: Columns, *, first_line: int, after: int | None, max_problems: int
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int64], list[RowProblem]]:
    """Parse every line: array operations over the longest clean prefix, then row by row.

    :func:`_clean_prefix` vouches for the leading lines that are well formed and pass every check
    (the common case: all of them); from the first line it cannot vouch for, the row-by-row
    reference (:func:`_parse_rows`) takes over with the same state, so the bars, the problems and
    their messages are exactly those of a row-by-row parse of the whole text.
    """
    lines = text.split("\n")[:-1]
    ts, values, good = _clean_prefix(lines, columns, after=after)
    previous = (int(ts[-1]), first_line + good - 1) if good else None
    tail_ts, tail_values, tail_rows, problems = _parse_rows(
        lines[good:],
        columns,
        first_line=first_line + good,
        after=after,
        max_problems=max_problems,
        previous=previous,
    )
    if good == len(lines):
        rows = np.arange(first_line, first_line + good, dtype=np.int64)
        return ts, values, rows, problems
    return (
        np.concatenate([ts, np.array(tail_ts, dtype=np.int64)]),
        np.concatenate([values, np.array(tail_values, dtype=np.float64).reshape(-1, len(FIELDS))]),
        np.concatenate(
            [
                np.arange(first_line, first_line + good, dtype=np.int64),
                np.array(tail_rows, dtype=np.int64),
            ]
        ),
        problems,
    )


def _parse_rows(
    lines: list[str],
    columns: Columns,
    *,
    first_line: int,
    after: int | None,
    max_problems: int,
    previous: tuple[int, int] | None = None,
) -> tuple[list[int], list[tuple[float, ...]], list[int], list[RowProblem]]:
    """The row-by-row reference parse; ``previous`` is the (timestamp, line) of the last good
    row before ``lines``."""
    timestamps: list[int] = []
    values: list[tuple[float, ...]] = []
    rows: list[int] = []
    problems: list[RowProblem] = []
    for line_no, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        parsed = parse_row(line, columns, previous, after)
        if isinstance(parsed, str):
            problems.append(RowProblem(line_no, parsed))
            if len(problems) >= max_problems:
                break
            continue
        ts, row_values = parsed
        previous = (ts, line_no)
        timestamps.append(ts)
        values.append(row_values)
        rows.append(line_no)
    return timestamps, values, rows, problems


def parse_row(
    line: str, columns: Columns, previous: tuple[int, int] | None, after: int | None
) -> tuple[int, tuple[float, ...]] | str:
    """One non-blank data line as the row-by-row reference judges it: ``(timestamp, values)``
    or the reason it is refused; ``previous`` is the (timestamp, line) of the last good row."""
    parsed = _parse_row(line, columns)
    return parsed if isinstance(parsed, str) else check_order(parsed, previous, after)


def _parse_row(line: str, columns: Columns) -> tuple[int, tuple[float, ...]] | str:
    fields = line.split(",")
    if len(fields) != columns.n_fields:
        return f"wrong field count: expected {columns.n_fields} fields, got {len(fields)}"
    ts = _parse_timestamp(_clean(fields[columns.positions[0]]))
    if isinstance(ts, str):
        return ts
    numbers: list[float] = []
    for name, position in zip(FIELDS, columns.positions[1:], strict=True):
        number = parse_number(_clean(fields[position]), name)
        if isinstance(number, str):
            return number
        numbers.append(number)
    problem = check_values(*numbers)
    return problem if problem is not None else (ts, tuple(numbers))


def check_order(
    parsed: tuple[int, tuple[float, ...]], previous: tuple[int, int] | None, after: int | None
) -> tuple[int, tuple[float, ...]] | str:
    ts = parsed[0]
    if after is not None and ts <= after:
        when, last = format_timestamp(ts), format_timestamp(after)
        return f"timestamp {when} is not newer than the last stored bar {last}"
    if previous is not None and ts <= previous[0]:
        when, line = format_timestamp(ts), previous[1]
        if ts == previous[0]:
            return f"timestamps not strictly increasing: {when} duplicates line {line}"
        before = format_timestamp(previous[0])
        return f"timestamps not strictly increasing: {when} is before {before} on line {line}"
    return parsed


def _result(
    timestamps: list[int] | NDArray[np.int64],
    values: list[tuple[float, ...]] | NDArray[np.float64],
    rows: list[int] | NDArray[np.int64],
    problems: list[RowProblem],
    *,
    consumed: int,
    lines: int,
    pending: bool,
) -> ParsedBars:
    return ParsedBars(
        timestamps=np.array(timestamps, dtype=np.int64),
        values=np.array(values, dtype=np.float64).reshape(-1, len(FIELDS)),
        rows=np.array(rows, dtype=np.int64),
        problems=tuple(problems),
        consumed=consumed,
        lines=lines,
        pending=pending,
    )
