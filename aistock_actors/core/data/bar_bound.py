"""A replay's bound on a CSV parse: the lines up to the first bar newer than the market clock.

Rows after the bound do not exist yet for a replay (like an unterminated last line): they are
neither parsed nor judged, and the parse's resume point stops before the first of them.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from aistock_actors.core.data.bars import ParsedBars, parse, parse_header, row_timestamp
from aistock_actors.errors import DataError

_NEWLINE = ord("\n")


def parse_until(
    data: bytes,
    bound: int | None,
    *,
    offset: int = 0,
    lines_before: int = 0,
    after: int | None = None,
) -> tuple[ParsedBars, bool]:
    """:func:`parse` of the lines up to the first bar newer than ``bound``; ``(parsed, hidden)``
    where ``hidden`` says that rows after the bound exist (then ``consumed`` stops before them).

    The lines are read in growing chunks from ``offset``, so a replay step that reveals one bar
    parses a few lines, not the rest of the file. Rows after the bound do not exist yet: their
    problems are not this run's either.
    """
    if bound is None:
        return parse(data, offset=offset, lines_before=lines_before, after=after), False
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == _NEWLINE) + 1
    first = int(np.searchsorted(ends, offset, side="right"))  # first line end after offset
    chunk = 4  # a replay step usually reveals one bar
    while True:
        last = first + chunk - 1
        cut = int(ends[last]) if last < len(ends) else len(data)
        parsed = parse(data[:cut], offset=offset, lines_before=lines_before, after=after)
        row = _first_row_after(data, ends, parsed, bound)
        if row is not None:  # 1-based line: it starts where line row - 1 ends
            return _before_row(parsed, row, int(ends[row - 2])), True
        if cut == len(data):
            return parsed, False
        chunk *= 4


def _before_row(parsed: ParsedBars, row: int, stop: int) -> ParsedBars:
    """``parsed`` cut before line ``row`` (which starts at byte ``stop``): exactly the parse of
    the bytes before it, since a row's checks look only at the rows before it."""
    keep = parsed.rows < row
    return ParsedBars(
        timestamps=parsed.timestamps[keep],
        values=parsed.values[keep],
        rows=parsed.rows[keep],
        problems=tuple(p for p in parsed.problems if p.row is None or p.row < row),
        consumed=stop,
        lines=row - 1,
        pending=False,
    )


def _first_row_after(
    data: bytes, ends: NDArray[np.int64], parsed: ParsedBars, bound: int
) -> int | None:
    """The first line holding a bar newer than ``bound``: a good row, or a bad one whose own
    timestamp says it is not written yet at the bound."""
    later = np.flatnonzero(parsed.timestamps > bound)
    first = int(parsed.rows[later[0]]) if len(later) else None
    bad = [p.row for p in parsed.problems if p.row is not None and p.row > 1]
    if not bad:
        return first
    try:
        columns = parse_header(data[: int(ends[0])].decode("utf-8").removeprefix("\ufeff").strip())
    except (DataError, UnicodeDecodeError):
        return first
    for line in bad:
        if first is not None and line > first:
            break
        text = data[int(ends[line - 2]) : int(ends[line - 1])].decode("utf-8", "replace")
        ts = row_timestamp(text.rstrip("\r\n"), columns)
        if ts is not None and ts > bound:
            return line
    return first
