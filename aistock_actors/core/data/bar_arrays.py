"""The array fast path of the CSV parse: the longest clean prefix of lines, vouched for with
numpy operations exactly as the row-by-row reference of ``bars.py`` would judge it."""

from __future__ import annotations

from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from aistock_actors.core.data.bar_fields import (
    _DAY_NS,
    _NS_MAX,
    _NS_MIN,
    FIELDS,
    _clean,
    _parse_timestamp,
)

if TYPE_CHECKING:
    from aistock_actors.core.data.bars import Columns


def _clean_prefix(
    lines: list[str], columns: Columns, *, after: int | None
) -> tuple[NDArray[np.int64], NDArray[np.float64], int]:
    """The bars of the longest prefix of ``lines`` whose every row parses and passes every check.

    Returns ``(timestamps, values, n)``: the first ``n`` lines are good bars (no blank line among
    them). A row is only accepted here when the row-by-row parse would accept it with the same
    result: a field ``float()`` takes and finds finite is exactly what ``parse_number`` returns
    (``float`` strips the same whitespace ``_clean`` does and never accepts a quote), and a
    ``YYYY-MM-DD`` timestamp is checked as ``datetime.fromisoformat`` would check it; anything
    else (quotes, blank lines, other timestamp forms that fail, missing values) ends the prefix.
    """
    n = len(lines)
    fields = columns.n_fields
    if n:
        commas = np.fromiter(map(str.count, lines, repeat(",", n)), dtype=np.int64, count=n)
        n = _first(commas != fields - 1, n)
    if n == len(lines):  # every line: the fields in order, without a join per line
        flat = "\n".join(lines).replace("\n", ",").split(",") if n else []
    else:
        flat = ",".join(lines[:n]).split(",")
    ts_pos, *value_pos = columns.positions
    columns_out: list[NDArray[np.float64]] = []
    for position in value_pos:
        numbers, n = _floats(flat[position : n * fields : fields], n)
        columns_out = [column[:n] for column in columns_out]
        columns_out.append(numbers)
    ts, n = _timestamps(flat[ts_pos : n * fields : fields], n)
    values = np.column_stack(columns_out)[:n] if columns_out else np.empty((0, len(FIELDS)))
    ts = ts[:n]
    if n:
        o, h, lo, c, v = values.T
        bad = (o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0) | (v < 0)
        bad |= lo > np.minimum(o, c)
        bad |= np.maximum(o, c) > h
        if after is not None:
            bad |= ts <= after
        bad[1:] |= ts[1:] <= ts[:-1]
        n = _first(bad, n)
    return ts[:n], np.ascontiguousarray(values[:n]).reshape(-1, len(FIELDS)), n


def _first(bad: NDArray[np.bool_], default: int) -> int:
    """Index of the first True in ``bad`` (``default`` if none)."""
    return int(np.argmax(bad)) if bad.any() else default


def _floats(texts: list[str], n: int) -> tuple[NDArray[np.float64], int]:
    """``float()`` of each text while they parse to finite numbers: (numbers, how many)."""
    texts = texts[:n]
    try:
        numbers = np.fromiter(map(float, texts), dtype=np.float64, count=len(texts))
    except ValueError:
        for i, text in enumerate(texts):
            try:
                float(text)
            except ValueError:
                n = i
                break
        numbers = np.fromiter(map(float, texts[:n]), dtype=np.float64, count=n)
    n = _first(~np.isfinite(numbers), n)
    return numbers[:n], n


_DAYS_MIN = -(-_NS_MIN // _DAY_NS)  # first midnight inside pandas' range (1677-09-22)
_DAYS_MAX = _NS_MAX // _DAY_NS  # last one (2262-04-11)
_DIGIT_AT = np.array([0, 1, 2, 3, 5, 6, 8, 9])


def _timestamps(texts: list[str], n: int) -> tuple[NDArray[np.int64], int]:
    """Timestamps in ns while they parse: (timestamps, how many parse)."""
    texts = texts[:n]
    if n and set(map(len, texts)) == {10} and (joined := "".join(texts)).isascii():
        chars = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(n, 10)
        digits = chars[:, _DIGIT_AT].astype(np.int64) - ord("0")
        if ((digits >= 0) & (digits <= 9)).all() and (chars[:, [4, 7]] == ord("-")).all():
            return _dates(digits, n)
    out = np.empty(n, dtype=np.int64)
    for i, text in enumerate(texts):
        ts = _parse_timestamp(_clean(text))
        if isinstance(ts, str):
            return out[:i], i
        out[i] = ts
    return out, n


def _dates(digits: NDArray[np.int64], n: int) -> tuple[NDArray[np.int64], int]:
    """ISO ``YYYY-MM-DD`` dates (digit columns) as midnight UTC in ns, while they are valid."""
    year = digits[:, 0] * 1000 + digits[:, 1] * 100 + digits[:, 2] * 10 + digits[:, 3]
    month = digits[:, 4] * 10 + digits[:, 5]
    day = digits[:, 6] * 10 + digits[:, 7]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    in_month = month_days[np.clip(month, 1, 12) - 1] + (leap & (month == 2))
    valid = (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= in_month)
    # days since 1970-01-01 of the proleptic Gregorian date (H. Hinnant's days_from_civil)
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    days = era * 146_097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719_468
    valid &= (days >= _DAYS_MIN) & (days <= _DAYS_MAX)
    n = _first(~valid, n)
    return days[:n] * _DAY_NS, n
