"""The CSV row checks applied to bars that arrive as arrays (a provider's answer, not a file).

Same predicates and the same wording as :func:`aistock_actors.core.data.bars.parse`, so a bar is
accepted from a provider exactly when it would be accepted as a CSV row.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from aistock_actors.core.data.bar_fields import check_values, parse_number
from aistock_actors.core.data.bars import FIELDS, check_order


def check_arrays(
    timestamps: NDArray[np.int64], values: NDArray[np.float64], *, after: int | None = None
) -> tuple[int, str | None]:
    """Apply the checks every CSV row gets to bars that arrive as arrays (a provider's answer).

    Returns how many leading bars pass and the reason the next one fails (None if all pass),
    worded as :func:`parse` words it: finite values, positive prices, non-negative volume,
    consistent OHLC, strictly increasing timestamps newer than ``after``. Vectorised; only the
    first failing bar is explained row by row, by the same functions :func:`parse` uses.
    """
    ts = np.asarray(timestamps, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float64).reshape(-1, len(FIELDS))
    n = len(ts)
    if n == 0:
        return 0, None
    o, h, lo, c, v = vals.T
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(vals).all(axis=1)
        bad |= (o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0) | (v < 0)
        bad |= lo > np.minimum(o, c)
        bad |= np.maximum(o, c) > h
    if after is not None:
        bad |= ts <= after
    bad[1:] |= ts[1:] <= ts[:-1]
    if not bad.any():
        return n, None
    i = int(np.argmax(bad))
    row = tuple(float(x) for x in vals[i])
    for name, number in zip(FIELDS, row, strict=True):
        problem = parse_number(repr(number), name)
        if isinstance(problem, str):
            return i, problem
    reason = check_values(*row)
    if reason is None:
        previous = (int(ts[i - 1]), i + 1) if i else None  # "line" = 1-based bar, header-less
        checked = check_order((int(ts[i]), row), previous, after)
        reason = checked if isinstance(checked, str) else "rejected"
    return i, reason
