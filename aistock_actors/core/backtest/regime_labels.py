"""The backtester's default regime labels, computed from what the simulation already knows.

:func:`aistock_actors.core.market.regimes.market_regimes` of the close panel, bit for bit: the same
equal-weight index (:func:`~aistock_actors.core.market.regimes.equal_weight_index`), built with the
valid-price mask the simulation has already computed (or none when every price is valid) and
without a boolean-mask round trip, then labelled by
:func:`~aistock_actors.core.market.regimes.label_regimes` with ``market_regimes``' parameters.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from aistock_actors.core.market import regimes
from aistock_actors.core.market.regimes import label_regimes

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def equal_weight_index(close: FloatArray, ok: BoolArray | None) -> FloatArray:
    """:func:`aistock_actors.core.market.regimes.equal_weight_index` of a C-contiguous panel.

    ``ok`` is ``isfinite(close) & (close > 0)``, or None when it holds everywhere.
    """
    n_bars, n_sym = close.shape
    if ok is None and n_sym == 1 and n_bars > 0:  # the mean of one return is that return
        mean_ret = np.zeros(n_bars, dtype=np.float64)
        col = close[:, 0]
        np.divide(col[1:], col[:-1], out=mean_ret[1:])
        mean_ret[1:] -= 1.0
        mean_ret += 1.0
        return np.multiply.accumulate(mean_ret)  # started everywhere: no NaN
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
    """:func:`aistock_actors.core.market.regimes.market_regimes` of ``close`` with its defaults."""
    return label_regimes(
        equal_weight_index(close, ok),
        vol_window=20,
        trend_window=50,
        vol_threshold=1.25,
        min_persistence=3,
    )


def transition_drawdown(equity: FloatArray, labels: npt.ArrayLike, radius: int) -> float:
    """:func:`aistock_actors.core.market.regimes.transition_drawdown`, without a loop over windows.

    The windows (runs of the transition mask) come straight from the regime changes. Each window's
    running peak is a segmented running maximum (max is exact): one ``maximum.accumulate`` over a
    windows x longest-window table padded with ``-inf`` when that table is small, else built by
    doubling; ``1 - equity / peak`` is the same division, so the value is identical. Curves with
    a non-finite value (whose gaps that function fills) and bad inputs go to that function.
    """
    eq = np.asarray(equity, dtype=np.float64).ravel()
    lab = np.asarray(labels, dtype=np.int64).ravel()
    n = eq.size
    if radius < 0 or n != lab.size or not np.isfinite(eq).all():
        return regimes.transition_drawdown(equity, labels, radius)
    changes = regimes.regime_changes(lab)
    if changes.size == 0:
        return 0.0
    lo = changes - radius
    np.maximum(lo, 0, out=lo)
    hi = changes + (radius + 1)
    np.minimum(hi, n, out=hi)  # window [lo, hi); both sorted, so a run breaks where lo > prev hi
    new_run = np.empty(lo.size, dtype=np.bool_)
    new_run[0] = True
    np.greater(lo[1:], hi[:-1], out=new_run[1:])
    first_of_run = new_run.nonzero()[0]
    run_lo = lo[first_of_run]
    run_hi = hi[np.append(first_of_run[1:] - 1, lo.size - 1)]
    sizes = run_hi - run_lo
    longest = int(sizes.max())
    if run_lo.size * longest <= 4 * n + 1024:
        return _padded_drawdown(eq, run_lo, sizes, longest)
    return _doubling_drawdown(eq, run_lo, sizes)


def _clipped_max(dd: FloatArray) -> float:
    return min(1.0, max(0.0, float(dd.max())))


def _padded_drawdown(eq: FloatArray, run_lo: IntArray, sizes: IntArray, longest: int) -> float:
    """Max drawdown over the runs from a runs x ``longest`` table (padding: ``-inf``, dd 0)."""
    offs = np.arange(longest)
    inside = offs < sizes[:, None]
    idx = run_lo[:, None] + offs
    np.minimum(idx, eq.size - 1, out=idx)
    x = eq[idx]
    np.copyto(x, -np.inf, where=~inside)
    peak = np.maximum.accumulate(x, axis=1)
    dd = np.zeros(x.shape, dtype=np.float64)  # padding: 0 never changes the clipped maximum
    np.copyto(dd, 1.0, where=inside & (peak <= 0))
    positive = peak > 0
    positive &= inside  # the padding after a run keeps the run's peak
    np.divide(x, peak, out=dd, where=positive)
    np.subtract(1.0, dd, out=dd, where=positive)
    return _clipped_max(dd)


def _doubling_drawdown(eq: FloatArray, run_lo: IntArray, sizes: IntArray) -> float:
    """Max drawdown over the runs, their running peaks built by doubling."""
    total = int(sizes.sum())
    start_pos = np.cumsum(sizes) - sizes
    first = start_pos.repeat(sizes)  # position of each bar's window start
    where = (np.arange(total) - first) + run_lo.repeat(sizes)
    longest = int(sizes.max())
    x = eq[where]
    peak = x.copy()
    pos = np.arange(total)
    step = 1
    while step < longest:  # peak[i] = max of x over [max(first[i], i - 2 * step + 1), i]
        reach = pos[step:][pos[step:] - step >= first[step:]]
        peak[reach] = np.maximum(peak[reach], peak[reach - step])
        step *= 2
    dd = np.ones(total, dtype=np.float64)
    positive = peak > 0
    dd[positive] = 1.0 - x[positive] / peak[positive]
    return _clipped_max(dd)
