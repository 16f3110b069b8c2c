"""Event-driven kernel of :func:`aistock_actors.core.backtest.simulator.simulate` (rules: that
module).

Holdings only change on bars where some symbol's target differs from its last EXECUTED target and
the symbol has a valid fill price ("order bars"; with a no-trade band, also every bar where a
symbol has a nonzero target and a valid fill price: a drift out of the band resizes it). Which
orders fill where does not depend on the path: the executed target is the decision of the last
bar with a valid fill price (a forward fill), so every order is known up front. Only the sizing is
path-dependent (``target * equity / price`` with the equity at fill time), so the one Python loop
(:mod:`aistock_actors.core.backtest.loop`) visits the order bars only. Everything per bar, i.e.
positions between order bars, equity, gross exposure, last known prices, fills, costs, traded
notional, is built afterwards in a few vectorized passes (forward fills, blocks of row sums, one
scatter).

Every fill, every cash update and every per-bar sum uses the same floating-point operations in the
same order as a bar-by-bar loop (the same dot products of contiguous vectors, the same pairwise row
sums, cash and traded notional accumulated bar after bar), so results are bit-identical to it; a
frozen bar-by-bar implementation, ``tests/core/backtest/_reference_backtest_v1.py``, checks that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from aistock_actors.core.backtest.loop import NO_LIMITS, FillLimits, Orders, event_loop, fill_costs

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FillMode = Literal["next_open", "close"]


@dataclass(frozen=True, slots=True)
class Panels:
    """Validated ``bars x symbols`` inputs (the caller's arrays when they are float64 already)."""

    close: FloatArray
    fill_px: FloatArray
    """``open_`` for ``fill="next_open"``; ``close`` itself (same object) for ``fill="close"``."""
    target: FloatArray
    """Target decided at each bar (NaN -> 0); it fills ``lag`` bars later."""
    lag: int
    volume: FloatArray | None


@dataclass(frozen=True, slots=True)
class Fills:
    """Every fill with a nonzero size, symbol-major then by bar (the trade log's input)."""

    symbol: IntArray
    bar: IntArray
    before: FloatArray
    """Shares held just before the fill."""
    after: FloatArray
    price: FloatArray
    cost: FloatArray


@dataclass(frozen=True, slots=True)
class Run:
    equity: FloatArray
    gross: FloatArray
    positions: FloatArray
    fills: FloatArray
    costs: FloatArray
    last_px: FloatArray
    """Last known close of each symbol at the end."""
    final_shares: FloatArray
    traded_notional: float
    trades_input: Fills
    close_ok: BoolArray | None
    """Valid-close mask, or None when every close is a valid price."""


def _panel(values: npt.ArrayLike, shape: tuple[int, ...] | None, name: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)  # never written to: no defensive copy
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or (shape is not None and arr.shape != shape):
        raise ValueError(f"{name} must be a bars x symbols panel of shape {shape}, got {arr.shape}")
    return arr


def prepare(
    close: npt.ArrayLike,
    target: npt.ArrayLike,
    open_: npt.ArrayLike | None,
    volume: npt.ArrayLike | None,
    fill: FillMode,
) -> Panels:
    """Validate and convert the inputs (same checks and messages, in the same order, as before)."""
    px = _panel(close, None, "close")
    tgt = _panel(target, px.shape, "target")
    low, high = (float(tgt.min()), float(tgt.max())) if tgt.size else (0.0, 0.0)
    if not (math.isfinite(low) and math.isfinite(high)):  # NaN -> 0, +-inf -> out of range
        tgt = np.nan_to_num(tgt, nan=0.0, posinf=2.0, neginf=-2.0)  # a copy
        low, high = float(tgt.min()), float(tgt.max())
    if high > 1.0 + 1e-12 or low < -(1.0 + 1e-12):  # i.e. any |w| > 1 + 1e-12
        raise ValueError("target weights must lie in [-1, 1]")
    if fill == "next_open":
        if open_ is None:
            raise ValueError('fill="next_open" needs open prices')
        fill_px, lag = _panel(open_, px.shape, "open_"), 1
    elif fill == "close":
        fill_px, lag = px, 0
    else:
        raise ValueError(f"unknown fill mode {fill!r}")
    vol = None if volume is None else _panel(volume, px.shape, "volume")
    return Panels(px, fill_px, tgt, lag, vol)


def valid_mask(px: FloatArray) -> BoolArray | None:
    """``isfinite(px) & (px > 0)``, or None when that is true everywhere (two cheap reductions)."""
    if px.size == 0 or (float(px.min()) > 0.0 and float(px.max()) < math.inf):
        return None
    return np.isfinite(px) & (px > 0)


def _last_valid_rows(ok: BoolArray) -> npt.NDArray[np.intp]:
    """Per cell, the latest row ``<= t`` where ``ok`` holds in that column (-1 if none)."""
    rows = np.where(ok, np.arange(ok.shape[0])[:, None], -1)
    np.maximum.accumulate(rows, axis=0, out=rows)
    return rows


def last_known(values: FloatArray, ok: BoolArray | None) -> FloatArray:
    """Forward fill of ``values`` over the rows where ``ok`` holds; 0 before the first one."""
    if ok is None:
        return values
    out = values.copy()
    bad = np.flatnonzero(~ok.all(axis=0))
    if bad.size:
        rows = _last_valid_rows(ok[:, bad])
        filled = np.take_along_axis(values[:, bad], np.maximum(rows, 0), axis=0)
        filled[rows < 0] = 0.0
        out[:, bad] = filled
    return out


def _orders(decisions: FloatArray, ok: BoolArray | None) -> BoolArray:
    """Cells where the decision differs from the last executed one and the fill price is valid.

    The executed target after a bar is that bar's decision where its fill price is valid, else the
    previous executed target (0 at first): a forward fill, known before any sizing.
    """
    need = np.empty(decisions.shape, dtype=np.bool_)
    if decisions.shape[0]:
        np.not_equal(decisions[0], 0.0, out=need[0])
        np.not_equal(decisions[1:], decisions[:-1], out=need[1:])
    if ok is not None:
        bad = np.flatnonzero(~ok.all(axis=0))
        if bad.size:
            sub_ok, sub = ok[:, bad], decisions[:, bad]
            rows = _last_valid_rows(sub_ok)
            done = np.take_along_axis(sub, np.maximum(rows, 0), axis=0)
            done[rows < 0] = 0.0
            before = np.zeros_like(done)
            before[1:] = done[:-1]
            need[:, bad] = (sub != before) & sub_ok
    return need


def _collect_orders(p: Panels, need: BoolArray, rates: FloatArray, with_volume: bool) -> Orders:
    cells = np.flatnonzero(need).astype(np.int64)  # row-major: by bar, then by symbol
    dec_row, symbol = np.divmod(cells, max(need.shape[1], 1))
    bar = dec_row + p.lag
    starts = np.flatnonzero(np.diff(dec_row, prepend=-1)).astype(np.int64)
    return Orders(
        symbol=symbol,
        bar=bar,
        decision=p.target[dec_row, symbol],
        price=p.fill_px[bar, symbol],
        rate=rates[symbol],
        volume=p.volume[bar, symbol] if with_volume and p.volume is not None else None,
        starts=starts,
        sizes=np.diff(starts, append=dec_row.size).astype(np.int64),
    )


def _valuation_rows(
    p: Panels, o: Orders, fill_ok: BoolArray | None, last: FloatArray
) -> tuple[FloatArray, list[int]]:
    """Prices that value the book at fill time on each order bar, as ``(matrix, row per bar)``.

    A symbol is valued at its fill price when it has one, else at its last known close (before
    the bar for next-open fills; a close fill's own close is its fill price). Rows are contiguous
    (the dot products must see contiguous vectors, as a bar-by-bar loop's ``np.where`` gives).
    """
    bars = o.bars
    own = list(range(bars.size))
    src = p.close if p.lag == 0 else p.fill_px
    if fill_ok is None:  # every fill price is valid: the fill prices themselves
        return (src, bars.tolist()) if src.flags.c_contiguous else (src[bars], own)
    if p.lag == 0:  # fill at the close: the last known close, this bar's included
        return last[bars], own
    return np.where(fill_ok[bars], src[bars], last[bars - 1]), own


def _fill_gaps(
    positions: FloatArray, bars: IntArray, cash_after: FloatArray, cash0: float
) -> FloatArray:
    """Carry holdings over the bars without orders (in place); return the cash of every bar."""
    n_bars = positions.shape[0]
    mark = np.full(n_bars, -1, dtype=np.int64)
    mark[bars] = np.arange(bars.size)
    np.maximum.accumulate(mark, out=mark)  # index of the last order bar <= t (-1: none yet)
    gaps = np.ones(n_bars, dtype=np.bool_)
    gaps[bars] = False
    lead = gaps & (mark < 0)
    positions[lead] = 0.0
    carried = np.flatnonzero(gaps & (mark >= 0))
    positions[carried] = positions[bars[mark[carried]]]
    return np.concatenate(([cash0], cash_after))[mark + 1]


def _traded_notional(notional: FloatArray, first: IntArray, sizes: IntArray) -> float:
    """``sum over order bars of notional[bar].sum()``, accumulated bar after bar.

    Each bar's sum must be numpy's pairwise sum of that bar's fills: row sums of a matrix are, so
    the bars are grouped by their number of fills and each group summed as one matrix.
    """
    if not first.size:
        return 0.0
    per_bar = np.empty(first.size)
    for size in np.unique(sizes).tolist():
        sel = np.flatnonzero(sizes == size)
        per_bar[sel] = notional[first[sel][:, None] + np.arange(size)].sum(axis=1)
    return float(np.cumsum(per_bar)[-1])


def _book_value(positions: FloatArray, last: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per bar, ``sum(shares * last)`` and ``sum(|shares * last|)`` (pairwise row sums, as a
    bar-by-bar loop's), a block of rows at a time so the temporary stays in cache."""
    n_bars, n_sym = positions.shape
    net, gross = np.empty(n_bars), np.empty(n_bars)
    step = max(1, 2**16 // max(n_sym, 1))
    buf = np.empty((min(step, n_bars), n_sym))
    for lo in range(0, n_bars, step):
        hi = min(lo + step, n_bars)
        value = np.multiply(positions[lo:hi], last[lo:hi], out=buf[: hi - lo])
        value.sum(axis=1, out=net[lo:hi])
        np.abs(value, out=value).sum(axis=1, out=gross[lo:hi])
    return net, gross


def run(
    p: Panels,
    rates: FloatArray,
    impact_coef: float,
    cash: float,
    integer: bool,
    limits: FillLimits = NO_LIMITS,
) -> Run:
    """Simulate the panels (rules in :mod:`aistock_actors.core.backtest.simulator`)."""
    n_bars, n_sym = p.close.shape
    close_ok = valid_mask(p.close)
    fill_ok = close_ok if p.fill_px is p.close else valid_mask(p.fill_px)
    n_dec = max(n_bars - p.lag, 0)
    need = _orders(p.target[:n_dec], None if fill_ok is None else fill_ok[p.lag :])
    if limits.rebalance_band is not None:  # a held position is checked every bar
        need |= p.target[:n_dec] != 0.0
        if fill_ok is not None:
            need &= fill_ok[p.lag :]
    impact = impact_coef != 0.0 and p.volume is not None
    o = _collect_orders(p, need, rates, impact or limits.max_volume_share is not None)
    last = last_known(p.close, close_ok)
    val, val_rows = _valuation_rows(p, o, fill_ok, last)
    positions = np.empty((n_bars, n_sym))
    cash_after = event_loop(o, val, val_rows, positions, cash, impact_coef, integer, limits)
    cash_path = _fill_gaps(positions, o.bars, np.asarray(cash_after, dtype=np.float64), cash)

    # Per-fill sizes and costs, recomputed vectorized from the holdings after each fill: the
    # holding before a fill is the one after the same symbol's previous fill (0 at first).
    # Symbol-major order, bars ascending within a symbol (a radix sort on small integers).
    order = np.argsort(o.symbol.astype(np.int16 if n_sym < 2**15 else np.int64), kind="stable")
    sym, bar, px = o.symbol[order], o.bar[order], o.price[order]
    cell = bar * n_sym + sym  # flat index into the C-ordered panels
    after = positions.reshape(-1)[cell]
    before = np.empty_like(after)
    before[1:] = after[:-1]
    before[np.concatenate(([True], sym[1:] != sym[:-1]))[: sym.size]] = 0.0
    delta = after - before
    notional = np.abs(delta) * px
    vol = None if o.volume is None or not impact else o.volume[order]
    cost = fill_costs(notional, delta, rates[sym], impact_coef, vol)
    fills, paid = np.zeros((n_bars, n_sym)), np.zeros((n_bars, n_sym))
    fills.reshape(-1)[cell], paid.reshape(-1)[cell] = delta, cost
    in_sequence = np.empty_like(notional)
    in_sequence[order] = notional
    traded = _traded_notional(in_sequence, o.starts, o.sizes)

    net, gross = _book_value(positions, last)
    equity = cash_path + net
    moved = delta != 0
    trades_input = Fills(
        symbol=sym[moved],
        bar=bar[moved],
        before=before[moved],
        after=after[moved],
        price=px[moved],
        cost=cost[moved],
    )
    last_px = last[-1].copy() if n_bars else np.zeros(n_sym)
    final = positions[-1].copy() if n_bars else np.zeros(n_sym)
    return Run(
        equity, gross, positions, fills, paid, last_px, final, traded, trades_input, close_ok
    )
