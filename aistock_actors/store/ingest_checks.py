"""The plausibility checks of ingestion (#17): bars from the future or with absurd values, and
the time zones a CSV mixes; and the wording of ingestion's notes (zones, a shrunk file, a torn
or empty file), shared by the whole-file and the tail path."""

from __future__ import annotations

import functools
import math
import re

import msgspec
import numpy as np
from numpy.typing import NDArray

from aistock_actors.core.data.bars import (
    FIELDS,
    ParsedBars,
    RowProblem,
    format_timestamp,
    parse_header,
)
from aistock_actors.errors import DataError
from aistock_actors.store.bars import BarStore
from aistock_actors.store.file_cursor import FileCursor

MAX_PRICE = 1e7
"""No listed share trades above this (USD): a larger price is a data error, not a market move."""

_OPEN, _CLOSE, _VOLUME = FIELDS.index("open"), FIELDS.index("close"), FIELDS.index("volume")


MAX_VOLUME = 1e13
"""No bar trades more shares than this."""


class BarLimits(msgspec.Struct, frozen=True, kw_only=True):
    """What a plausible new bar satisfies (``data.*`` in the config; #17)."""

    not_after_ns: int
    """Latest acceptable timestamp: the clock's market time plus the tolerance."""
    max_relative_jump: float = 3.0
    """Open and close within ``[1 / (1 + j), 1 + j]`` times the previous close."""


_ZONE = re.compile(r"(Z|[+-]\d\d:?\d\d)$")


def _zones_seen(data: bytes, end: int, start: int) -> list[str]:
    """The zones of the first data line and of the lines ``data[start:end]`` just read: a new
    line in another zone than the file's first is noted without re-reading the whole file at
    every append (a replay appends one line per file per step)."""
    if start <= 0:
        return time_zones(data, end)
    second = data.find(b"\n", data.find(b"\n") + 1) + 1  # the end of the first data line
    found = time_zones(data, second) if 0 < second <= start else []
    for zone in time_zones(data, end, start):
        if zone not in found:
            found.append(zone)
    return found


def time_zones(data: bytes, end: int, start: int = 0) -> list[str]:
    """The distinct zone spellings of the timestamp column in ``data[start:end]`` (``naive``,
    ``Z``, ``+02:00``...), in order of first appearance (#17: mixed zones are noted)."""
    header, _, _ = data.partition(b"\n")
    column = zone_column(header)
    if column is None:
        return []
    return body_zones(data[max(start, len(header) + 1):end], column)


@functools.lru_cache(maxsize=64)
def zone_column(header: bytes) -> int | None:
    """The timestamp column :func:`time_zones` reads under ``header`` (the line without its
    newline); None when the header names none (then no zone is ever noted)."""
    try:
        return parse_header(header.decode("utf-8", "replace")).positions[0]
    except DataError:
        return None


def _stamp(line: str, column: int) -> str:
    fields = line.split(",")
    return fields[column].strip() if len(fields) > column else ""


def body_zones(body: bytes, column: int, seen: list[str] | None = None) -> list[str]:
    """:func:`time_zones` of data lines ``body`` whose timestamp is field ``column``, added to
    ``seen`` (in order of first appearance)."""
    seen = [] if seen is None else seen
    text = body.decode("utf-8", "replace")
    if "T" not in text and " " not in text:  # dates only (daily bars): every stamp is naive
        if "naive" not in seen and any(_stamp(line, column) for line in text.splitlines()):
            seen.append("naive")
        return seen
    for line in text.splitlines():
        raw = _stamp(line, column)
        if not raw:
            continue
        stamp = raw.strip('"')
        match = _ZONE.search(stamp) if "T" in stamp or " " in stamp else None
        zone = match.group(1) if match else "naive"
        if zone not in seen:
            seen.append(zone)
    return seen


def _last_close(store: BarStore, symbol: str) -> float | None:
    if store.last_timestamp(symbol) is None:
        return None
    _, values = store.arrays(symbol)
    return float(values[-1, _CLOSE]) if len(values) else None


BULK_ROWS = 64
"""From this many new bars on (a first ingest, a backfill), :func:`implausible_bars` screens
them with numpy and checks only the rows it flags one by one."""


def implausible_bars(
    timestamps: NDArray[np.int64],
    values: NDArray[np.float64],
    rows: NDArray[np.int64],
    previous_close: float | None,
    limits: BarLimits,
) -> list[RowProblem]:
    """Up to five reasons why new bars cannot be real (future, impossible, a jump), by row."""
    if len(rows) < BULK_ROWS:
        return _row_by_row(timestamps, values, rows, previous_close, limits)
    problems: list[RowProblem] = []
    for i in _suspects(timestamps, values, previous_close, limits).tolist():
        prev = previous_close if i == 0 else float(values[i - 1, _CLOSE])
        problems += _row_by_row(timestamps[i : i + 1], values[i : i + 1], rows[i : i + 1], prev,
                                limits)
        if len(problems) >= 5:
            break
    return problems


def _suspects(
    timestamps: NDArray[np.int64],
    values: NDArray[np.float64],
    previous_close: float | None,
    limits: BarLimits,
) -> NDArray[np.int64]:
    """Every row that :func:`_row_by_row` could flag (the same comparisons, as arrays; a NaN
    fails them all), so checking only these rows gives the same problems."""
    bound = 1.0 + limits.max_relative_jump
    prev = np.empty(len(values))
    prev[0] = np.nan if previous_close is None else previous_close
    prev[1:] = values[:-1, _CLOSE]
    with np.errstate(invalid="ignore", divide="ignore"):
        bad = (timestamps > limits.not_after_ns) | ~np.isfinite(values).all(axis=1)
        bad |= (values[:, :_VOLUME].max(axis=1) > MAX_PRICE) | (values[:, _VOLUME] > MAX_VOLUME)
        for column in (_OPEN, _CLOSE):
            ratio = values[:, column] / prev
            jump = ~((1.0 / bound <= ratio) & (ratio <= bound))
            jump[0] &= previous_close is not None
            bad |= jump
    return np.flatnonzero(bad)


def _row_by_row(
    timestamps: NDArray[np.int64],
    values: NDArray[np.float64],
    rows: NDArray[np.int64],
    previous_close: float | None,
    limits: BarLimits,
) -> list[RowProblem]:
    """:func:`implausible_bars`, one row after another."""
    problems: list[RowProblem] = []
    bound = 1.0 + limits.max_relative_jump
    prev = previous_close
    # Python floats, not numpy rows: a cycle checks one new bar per symbol, where numpy's
    # per-call overhead is most of the cost (the same comparisons, the same messages).
    for ts, bar, row in zip(timestamps.tolist(), values.tolist(), rows.tolist(), strict=True):
        reason = None
        prices = bar[:_VOLUME]
        if ts > limits.not_after_ns:
            reason = (f"bar from the future: {format_timestamp(ts)} is later than the clock's "
                      f"{format_timestamp(limits.not_after_ns)} (tolerance included)")
        elif (not all(map(math.isfinite, bar)) or max(prices) > MAX_PRICE
              or bar[_VOLUME] > MAX_VOLUME):
            top = float(np.max(prices))  # NaN if any price is NaN, as before
            reason = (f"impossible magnitude: price up to {top:.6g} (max {MAX_PRICE:g}) "
                      f"or volume {bar[_VOLUME]:.6g} (max {MAX_VOLUME:g})")
        elif prev is not None:
            for name, price in (("open", bar[_OPEN]), ("close", bar[_CLOSE])):
                ratio = float(price) / prev
                if not 1.0 / bound <= ratio <= bound:
                    reason = (f"implausible jump: {name} {float(price):.6g} is {ratio:.3g}x the "
                              f"previous close {prev:.6g} (data.max_relative_jump "
                              f"{limits.max_relative_jump:g})")
                    break
        if reason is not None:
            problems.append(RowProblem(int(row), reason))
            if len(problems) >= 5:
                break
        prev = float(bar[_CLOSE])
    return problems


def zones_note(name: str, zones: list[str]) -> str:
    return (f"{name}: mixed time zones in the timestamp column ({', '.join(zones)}); each is "
            "converted to UTC, so two bars may fall on one date: check the source")


def shrank_note(name: str, before: int, after: int) -> str:
    return (f"{name}: shrank from {before} to {after} bytes since the last run; stored bars "
            "kept, only bars newer than them are added")


def file_notes(
    name: str, data: bytes, parsed: ParsedBars, last: int | None, previous: FileCursor | None
) -> list[str]:
    """Notes that need no action unless they persist, so each is said once, not every run."""
    unchanged = previous is not None and previous.file == name and previous.size == len(data)
    if parsed.pending:
        # Seen for the first time, the line is most likely still being written: say nothing.
        if not unchanged:
            return []
        line = parsed.lines + 1
        return [f"{name}: line {line} still has no line end; it is read once it is terminated"]
    if last is None and not unchanged:
        what = "empty file" if not data.strip() else "header only"
        return [f"{name}: {what}, no bars yet"]
    return []
