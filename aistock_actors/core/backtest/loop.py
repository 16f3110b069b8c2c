"""The sequential part of :mod:`aistock_actors.core.backtest.engine`: sizing orders, bar by bar.

Sizing is path-dependent (``target * equity / price`` with the equity at fill time), so the order
bars are visited in sequence; nothing else is. On each order bar, every operation is the one a
bar-by-bar simulation performs, in the same order, so the results are bit-identical to it:

* equity at fill time: ``cash + shares . prices`` (a BLAS dot product of contiguous vectors);
* new holding ``target * equity / price`` (truncated toward zero for whole shares), size
  ``delta = new - old``, notional ``|delta| * price``, cost ``notional * rate`` (plus impact);
* ``cash -= delta . price + sum(costs)`` (a BLAS dot product and numpy's sum).

Bars where only a few symbols trade (the common case) are done on Python floats, which is several
times faster than numpy calls on tiny arrays. IEEE arithmetic is the same; the two reductions are
too on machines where BLAS and numpy add short vectors left to right without fused multiply-adds,
which :func:`short_sums_are_sequential` checks once: elsewhere only single-fill bars use floats.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aistock_actors.core.trading.band import holds_in_band

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SHORT = 8
"""Order bars with fewer fills than this are sized on Python floats (when that is exact)."""

_add_reduce = np.add.reduce


@dataclass(frozen=True, slots=True)
class FillLimits:
    """The paper trader's fill rules, applied by the backtest too (issue #14: one sizing path).

    ``max_volume_share``: a fill takes at most this share of its bar's volume (none without a
    positive, finite volume); the remainder is dropped, not carried (the backtest under-promises a
    position the paper trader, with ``paper.remainder_policy = carry``, would finish later).
    ``min_order_notional``: a resize or an opening trade smaller than this is skipped; a position
    is always closed in full (the paper trader's ``plan_orders`` rule).
    ``rebalance_band`` and ``max_weight``: the no-trade band
    (:func:`~aistock_actors.core.trading.band.holds_in_band`, ``paper.rebalance_band``): a held
    position inside the band of its target is not resized, and one that drifted out of it is,
    on any bar, even if its target did not change (band 0: every drift, as the paper trader
    without a band). None: no band, a position is resized only when its target changes.
    """

    max_volume_share: float | None = None
    min_order_notional: float = 0.0
    rebalance_band: float | None = None
    max_weight: float = math.inf

    @property
    def active(self) -> bool:
        return (self.max_volume_share is not None or self.min_order_notional > 0.0
                or self.rebalance_band is not None)


NO_LIMITS = FillLimits()


@dataclass(frozen=True, slots=True)
class Orders:
    """Every order in fill sequence (bar-major, symbols ascending) and the bars they fill on."""

    symbol: IntArray
    bar: IntArray
    decision: FloatArray
    price: FloatArray
    rate: FloatArray
    volume: FloatArray | None
    """Fill-bar volume when the impact term or a volume cap is on, else None."""
    starts: IntArray
    """Index of each order bar's first order."""
    sizes: IntArray
    """Number of orders on each order bar."""

    @property
    def bars(self) -> IntArray:
        return self.bar[self.starts]


def fill_costs(
    notional: FloatArray,
    delta: FloatArray,
    rates: FloatArray,
    impact_coef: float,
    volume: FloatArray | None,
) -> FloatArray:
    """Cash cost of fills: ``notional * (rate + impact_coef * sqrt(|delta| / volume))``."""
    if impact_coef == 0.0 or volume is None:
        return notional * rates
    participation = np.ones(delta.size, dtype=np.float64)
    ok = np.isfinite(volume) & (volume > 0)
    np.divide(np.abs(delta), volume, out=participation, where=ok)
    return notional * (rates + impact_coef * np.sqrt(participation))


def _limited(
    delta: float, new: float, price: float, volume: float, limits: FillLimits, *,
    held: float, equity: float, target: float,
) -> float:
    """``delta`` after the :class:`FillLimits`: 0 inside the no-trade band (the position of
    ``held`` shares is kept), 0 under the minimum notional unless it closes the position
    (``new == 0``), then cut to the volume share."""
    band = limits.rebalance_band
    if band is not None and equity > 0.0 and holds_in_band(held * price / equity, target, band,
                                                           limits.max_weight):
        return 0.0
    if new != 0.0 and abs(delta) * price < limits.min_order_notional:
        return 0.0
    if limits.max_volume_share is not None:
        cap = limits.max_volume_share * volume if 0.0 < volume < math.inf else 0.0
        if abs(delta) > cap:
            return math.copysign(cap, delta)
    return delta


def _band_todo(
    shares: FloatArray, o: Orders, a: int, c: int, n: int, equity: float, limits: FillLimits
) -> range | list[int]:
    """The positions (from ``c`` on) of the ``n`` orders from ``a`` on that the no-trade band
    does not hold: :func:`~aistock_actors.core.trading.band.holds_in_band` on a bar's orders at
    once (the same floating-point operations; ``_limited`` asks it again per fill), so the many
    held positions of a bar skip the per-fill path."""
    band = limits.rebalance_band
    if n < 2 or band is None or not band > 0.0 or not equity > 0.0:
        return range(c, c + n)
    target = o.decision[a:a + n]
    current = shares[o.symbol[a:a + n]] * o.price[a:a + n] / equity
    held = ((current * target > 0.0) & (np.abs(current) <= limits.max_weight)
            & (np.abs(target - current) <= band * np.abs(target)))
    todo: list[int] = (np.flatnonzero(~held) + c).tolist()
    return todo


def _trunc(x: float) -> float:
    """``np.trunc`` of one float (sign of zero kept), without a numpy call."""
    return math.copysign(float(math.trunc(x)), x) if math.isfinite(x) else x


@functools.cache
def short_sums_are_sequential() -> bool:
    """Whether ``a.dot(b)`` and ``np.add.reduce(a)`` of fewer than :data:`SHORT` floats equal a
    left-to-right Python sum here (no fused multiply-add, no reordering), on random vectors.
    """
    draw = random.Random(20_240_601)  # stdlib: numpy.random would take ~15 ms to import

    def vector(n: int) -> list[float]:
        return [draw.gauss(0.0, 1.0) * 10.0 ** draw.uniform(-8.0, 8.0) for _ in range(n)]

    for n in range(2, SHORT):
        for _ in range(32):
            xs, ys = vector(n), vector(n)
            dot = total = 0.0
            for x, y in zip(xs, ys, strict=True):
                dot += x * y
                total += x
            a, b = np.array(xs), np.array(ys)
            if dot != float(a.dot(b)) or total != float(_add_reduce(a)):
                return False
    return True


def event_loop(
    o: Orders,
    val: FloatArray,
    val_rows: list[int],
    positions: FloatArray,
    cash: float,
    impact_coef: float,
    integer: bool,
    limits: FillLimits = NO_LIMITS,
) -> list[float]:
    """Fill the orders bar after bar (rules in :mod:`aistock_actors.core.backtest.simulator`).

    ``val[val_rows[k]]`` prices the book at fill time on order bar ``k``. Writes the holdings
    after each order bar into ``positions`` (other rows are left alone) and returns the cash
    after each order bar. With active :class:`FillLimits` every bar takes the Python-float path
    (each fill is cut one at a time), so only the limit-free path is bit-identical to the
    bar-by-bar reference.
    """
    n_sym = positions.shape[1]
    shares = np.zeros(n_sym)
    cash_after: list[float] = []
    record = cash_after.append
    impact = o.volume is not None and impact_coef != 0.0
    sym, dec, price, rate = o.symbol, o.decision, o.price, o.rate
    volume = o.volume if o.volume is not None else price
    share = limits.max_volume_share
    banded = limits.rebalance_band is not None
    # The orders of short bars, as Python lists (compact: only those are needed).
    short = SHORT if short_sums_are_sequential() else 2
    if limits.active:
        short = o.sizes.max(initial=0) + 1  # every bar on the cut-one-at-a-time float path
    is_short = o.sizes < short
    picked = np.flatnonzero(np.repeat(is_short, o.sizes))
    s_sym, s_dec, s_px, s_rate = (a[picked].tolist() for a in (sym, dec, price, rate))
    s_vol = volume[picked].tolist() if impact or share is not None else []
    short_sizes = np.where(is_short, o.sizes, 0)
    s_first = (np.cumsum(short_sizes) - short_sizes).tolist()
    one_val = val[val_rows, 0].tolist() if n_sym == 1 else []
    bars, starts, sizes = o.bars.tolist(), o.starts.tolist(), o.sizes.tolist()
    for k, (t, a, n, c) in enumerate(zip(bars, starts, sizes, s_first, strict=True)):
        if n_sym == 1:  # a one-element dot product is one multiplication
            eq = cash + float(shares[0]) * one_val[k]
        else:
            eq = cash + float(shares.dot(val[val_rows[k]]))
        if n < short:  # a few symbols trade: the same operations on Python floats
            dot = total = 0.0
            for i in _band_todo(shares, o, a, c, n, eq, limits) if banded else range(c, c + n):
                j, x = s_sym[i], s_px[i]
                new = s_dec[i] * eq / x
                if integer:
                    new = _trunc(new)
                delta = new - shares.item(j)
                if limits.active:
                    delta = _limited(delta, new, x, s_vol[i] if share is not None else 0.0,
                                     limits, held=shares.item(j), equity=eq, target=s_dec[i])
                    new = shares.item(j) + delta
                shares[j] = new
                notional = abs(delta) * x
                if impact:
                    vol = s_vol[i]
                    part = abs(delta) / vol if 0.0 < vol < math.inf else 1.0
                    total += notional * (s_rate[i] + impact_coef * math.sqrt(part))
                else:
                    total += notional * s_rate[i]
                dot += delta * x
            cash -= dot + total
        else:
            b = a + n
            idx, px = sym[a:b], price[a:b]
            new_v = dec[a:b] * eq
            new_v /= px
            if integer:
                np.trunc(new_v, out=new_v)
            delta_v = new_v - shares[idx]
            shares[idx] = new_v
            cost_v = np.abs(delta_v)
            cost_v *= px  # the notional
            if impact:
                cost_v = fill_costs(cost_v, delta_v, rate[a:b], impact_coef, volume[a:b])
            else:
                cost_v *= rate[a:b]
            cash -= float(delta_v.dot(px)) + float(_add_reduce(cost_v))
        positions[t] = shares
        record(cash)
    return cash_after
