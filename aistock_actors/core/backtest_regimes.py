"""The backtester's default regime labels, computed from what the simulation already knows.

:func:`aistock_actors.core.regimes.market_regimes` of the close panel, bit for bit: the same
equal-weight index (:func:`~aistock_actors.core.regimes.equal_weight_index`), built with the
valid-price mask the simulation has already computed (or none when every price is valid) and
without a boolean-mask round trip, then labelled by
:func:`~aistock_actors.core.regimes.label_regimes` with ``market_regimes``' parameters.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from aistock_actors.core import regimes
from aistock_actors.core.regimes import label_regimes

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def equal_weight_index(close: FloatArray, ok: BoolArray | None) -> FloatArray:
    """:func:`aistock_actors.core.regimes.equal_weight_index` of a C-contiguous panel.

    ``ok`` is ``isfinite(close) & (close > 0)``, or None when it holds everywhere.
    """
    n_bars, n_sym = close.shape
    rets = np.zeros((max(n_bars - 1, 0), n_sym), dtype=np.float64)
    if ok is None:
        np.divide(close[1:], close[:-1], out=rets)
        rets -= 1.0
        counts = np.full(rets.shape[0], n_sym, dtype=np.int64)
        started = np.full(n_bars, n_sym > 0)
    else:
        both = ok[1:] & ok[:-1]
        np.divide(close[1:], close[:-1], out=rets, where=both)
        np.subtract(rets, 1.0, out=rets, where=both)
        counts = both.sum(axis=1)
        started = np.logical_or.accumulate(ok.any(axis=1))
    mean_ret = np.zeros(n_bars, dtype=np.float64)
    np.divide(rets.sum(axis=1), counts, out=mean_ret[1:], where=counts > 0)
    index = np.cumprod(1.0 + mean_ret)
    return np.where(started, index, np.nan)


def market_regimes(close: FloatArray, ok: BoolArray | None) -> IntArray:
    """:func:`aistock_actors.core.regimes.market_regimes` of ``close`` with its defaults."""
    return label_regimes(
        equal_weight_index(close, ok),
        vol_window=20,
        trend_window=50,
        vol_threshold=1.25,
        min_persistence=3,
    )


def transition_drawdown(equity: FloatArray, labels: npt.ArrayLike, radius: int) -> float:
    """:func:`aistock_actors.core.regimes.transition_drawdown`, without a loop over windows.

    Each window's running peak is a segmented running maximum, built by doubling (max is exact),
    and ``1 - equity / peak`` is the same division, so the value is identical. Curves with a
    non-finite value (whose gaps that function fills) and bad inputs go to that function.
    """
    eq = np.asarray(equity, dtype=np.float64).ravel()
    lab = np.asarray(labels, dtype=np.int64).ravel()
    if radius < 0 or eq.size != lab.size or not np.isfinite(eq).all():
        return regimes.transition_drawdown(equity, labels, radius)
    where = np.flatnonzero(regimes.transition_windows(lab, radius))
    if where.size == 0:
        return 0.0
    starts = np.ones(where.size, dtype=np.bool_)
    starts[1:] = where[1:] != where[:-1] + 1  # a new window (run of the mask) begins
    start_pos = np.flatnonzero(starts)
    first = start_pos[np.cumsum(starts) - 1]  # position of each bar's window start
    longest = int(np.diff(np.append(start_pos, where.size)).max())
    x = eq[where]
    peak = x.copy()
    pos = np.arange(where.size)
    step = 1
    while step < longest:  # peak[i] = max of x over [max(first[i], i - 2 * step + 1), i]
        reach = pos[step:][pos[step:] - step >= first[step:]]
        peak[reach] = np.maximum(peak[reach], peak[reach - step])
        step *= 2
    dd = np.ones(where.size, dtype=np.float64)
    positive = peak > 0
    dd[positive] = 1.0 - x[positive] / peak[positive]
    return min(1.0, max(0.0, float(dd.max())))
