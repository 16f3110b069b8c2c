"""The field-level rules of an OHLCV CSV row: cleaning a field, reading a timestamp or a number,
and the OHLC consistency checks (shared by the row-by-row and the array parse of ``bars.py``)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

FIELDS = ("open", "high", "low", "close", "volume")
"""Value columns, in the order of the ``values`` arrays used everywhere in this project."""

_MISSING_TOKENS = frozenset({"", "nan", "na", "n/a", "null", "none", "nat", "-"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS_MIN = -(2**63) + 1  # int64 minimum is pandas' NaT
_NS_MAX = 2**63 - 1
_DAY_NS = 86_400 * 10**9


def _clean(field: str) -> str:
    field = field.strip()
    if len(field) >= 2 and field[0] == field[-1] == '"':
        field = field[1:-1].strip()
    return field


def _parse_timestamp(text: str) -> int | str:
    if text.lower() in _MISSING_TOKENS:
        return "missing value or NaN in column 'timestamp'"
    try:
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        return f"unparseable timestamp {text[:40]!r} (expected an ISO date or datetime)"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    ns = (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000
    if not _NS_MIN <= ns <= _NS_MAX:
        return f"unparseable timestamp {text[:40]!r} (outside 1677-09-22..2262-04-11)"
    return ns


def timestamp_ns(text: str) -> int | None:
    """An ISO date or datetime (naive = UTC) as int64 nanoseconds UTC; None if it does not parse."""
    parsed = _parse_timestamp(text)
    return parsed if isinstance(parsed, int) else None


def parse_number(text: str, column: str) -> float | str:
    if text.lower() in _MISSING_TOKENS:
        return f"missing value or NaN in column {column!r}"
    try:
        number = float(text)
    except ValueError:
        return f"unparseable number {text[:40]!r} in column {column!r}"
    if math.isnan(number):
        return f"missing value or NaN in column {column!r}"
    if math.isinf(number):
        return f"unparseable number {text[:40]!r} in column {column!r} (not finite)"
    return number


def check_values(o: float, h: float, lo: float, c: float, v: float) -> str | None:
    for name, price in (("open", o), ("high", h), ("low", lo), ("close", c)):
        if price <= 0:
            return f"non-positive price: {name} is {price!r}"
    if v < 0:
        return f"negative volume: {v!r}"
    if lo > min(o, c):
        return f"inconsistent OHLC: low {lo!r} is above min(open, close) {min(o, c)!r}"
    if max(o, c) > h:
        return f"inconsistent OHLC: high {h!r} is below max(open, close) {max(o, c)!r}"
    return None
