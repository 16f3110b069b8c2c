"""Vectorized multi-symbol portfolio simulator (shares accounting, event-driven).

Inputs are ``bars x symbols`` panels: ``close``, ``open_`` (for ``fill="next_open"``), optional
``volume`` and ``target``: the fraction of equity each symbol should hold, in ``[-1, 1]`` (long,
short, flat, fractional; NaN means 0). Rules, in order of the bar:

1. **Decision and fill.** The target decided at bar ``t`` is filled at bar ``t+1``'s OPEN
   (``fill="next_open"``) or at bar ``t``'s CLOSE (``fill="close"``).
2. **Trade only on a change.** A symbol trades when its target differs from the last target that
   was EXECUTED for it (initially 0). It is then resized to ``target * equity / fill_price``
   shares, with ``equity`` valued at fill time (fill prices for symbols that have one, last known
   price otherwise). Between changes, holdings are left to drift with prices: a constant target of
   1.0 is buy-and-hold with no rebalancing cost. A change from 0.5 to 0.6 resizes to 0.6 of equity.
3. **Missing prices.** No trade ever happens at a NaN or non-positive fill price: the order stays
   pending and fills at the first later bar that has a valid price (if the target still differs
   from the executed one). Positions are valued at the last known close.
4. **Costs** (the system's one :class:`~aistock_actors.core.trading.costs.CostModel`), charged in
   cash on each fill's traded notional ``|shares| * price``: ``commission_rate`` +
   ``half_spread_bps / 1e4`` (half-spread / slippage, paid on every trade; a per-symbol
   ``symbol_bps`` overrides it, may be negative = price improvement, NaN = default) +
   ``impact_bps / 1e4 * sqrt(participation)`` where ``participation = |shares| / volume`` of the
   fill bar (1.0 when volume is missing or zero). Fills happen at the raw price; costs reduce
   cash. Without a cost model: :data:`BACKTEST_DEFAULT_COSTS`.
5. **Equity** at bar ``t`` = cash + sum(shares * last known close), after that bar's fills. Margin
   is not modelled: cash may go negative (long) or exceed equity (short).
6. **Fill limits** (optional :class:`FillLimits`, the paper trader's rules): a fill takes at
   most ``max_volume_share`` of its bar's volume (nothing without a valid volume; the remainder
   is dropped and the target counts as executed), and a trade under ``min_order_notional`` is
   skipped unless it closes the position. With a ``rebalance_band`` (the no-trade band,
   :func:`~aistock_actors.core.trading.band.holds_in_band`) a held position inside the band of
   its target is not resized, and one whose weight drifted out of it is resized on that bar
   although its target did not change (rule 2 then holds inside the band only).

Round-trip trades: a trade opens when a symbol's position leaves zero (or flips side) and closes
when it returns to zero (or flips). Resizing on the same side belongs to the same trade; entry and
exit prices are share-weighted averages; ``pnl`` is the round trip's cash flow net of ALL its costs
(a flip's cost is split between the closing and the opening trade by shares); ``ret`` is ``pnl``
over the entry notional. Trades still open at the end have ``exit_bar = -1``, are marked at the last
known close, and are not counted in ``win_rate`` / ``trade_count``.

Implementation: :mod:`aistock_actors.core.backtest.engine` loops over the bars where some order
fills only and builds every per-bar series afterwards, vectorized; the default regime labels come
from :mod:`aistock_actors.core.backtest.regime_labels`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import pandas as pd

from aistock_actors.core.backtest.engine import FillMode, Fills, prepare
from aistock_actors.core.backtest.engine import run as run_engine
from aistock_actors.core.backtest.loop import NO_LIMITS, FillLimits
from aistock_actors.core.backtest.metrics import BacktestMetrics, _summarize
from aistock_actors.core.backtest.regime_labels import market_regimes, transition_drawdown
from aistock_actors.core.trading.costs import CostModel

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

__all__ = [
    "BacktestMetrics",
    "BacktestResult",
    "CostModel",
    "FillLimits",
    "FillMode",
    "TradeLog",
    "simulate",
    "simulate_frame",
]


BACKTEST_DEFAULT_COSTS = CostModel(commission_rate=0.001, half_spread_bps=0.0, impact_bps=0.0)
"""The simulator's costs when none are given: 0.1 % commission, no spread, no impact."""


@dataclass(frozen=True, slots=True)
class TradeLog:
    """Round-trip trades as parallel arrays (one row per trade, ordered by symbol then entry)."""

    symbol: IntArray
    side: IntArray
    entry_bar: IntArray
    exit_bar: IntArray
    entry_price: FloatArray
    exit_price: FloatArray
    pnl: FloatArray
    ret: FloatArray
    costs: FloatArray
    closed: BoolArray

    def __len__(self) -> int:
        return int(self.symbol.size)

    def to_frame(self, symbols: tuple[str, ...], index: npt.NDArray[Any]) -> pd.DataFrame:
        """One row per trade with symbol names and entry/exit bar labels (exit NaT/NaN if open)."""
        labels = pd.Index(index)
        exit_lbl = pd.Series(labels.take(np.maximum(self.exit_bar, 0))).where(self.closed)
        columns: dict[str, Any] = {"symbol": [symbols[i] for i in self.symbol.tolist()]}
        columns |= {"entry_time": labels.take(self.entry_bar), "exit_time": exit_lbl.to_numpy()}
        for name in ("side", "entry_bar", "exit_bar", "entry_price", "exit_price", "pnl"):
            columns[name] = getattr(self, name)
        columns |= {"return": self.ret, "costs": self.costs, "closed": self.closed}
        return pd.DataFrame(columns)


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """Everything a simulation produced; panels are ``bars x symbols``."""

    equity: FloatArray
    """Account value at the end of each bar."""
    returns: FloatArray
    """Per-bar simple equity returns (bar 0 against ``initial_cash``)."""
    positions: FloatArray
    """Shares held after each bar's fills (negative = short)."""
    fills: FloatArray
    """Shares traded at each bar (signed)."""
    costs: FloatArray
    """Cash cost of each bar's fills."""
    gross_exposure: FloatArray
    """Sum of ``|position value|`` at the end of each bar."""
    trades: TradeLog
    metrics: BacktestMetrics
    index: npt.NDArray[Any]
    symbols: tuple[str, ...]
    initial_cash: float

    def equity_series(self) -> pd.Series:
        """The equity curve as a Series over :attr:`index`."""
        return pd.Series(self.equity, index=pd.Index(self.index), name="equity")

    def trades_frame(self) -> pd.DataFrame:
        """The trade log as a DataFrame (see :meth:`TradeLog.to_frame`)."""
        return self.trades.to_frame(self.symbols, self.index)


def _extract_trades(f: Fills, final_shares: FloatArray, last_px: FloatArray) -> TradeLog:
    sym, bar, after, before = f.symbol, f.bar, f.after, f.before  # symbol-major order
    px, cost = f.price, f.cost
    sa, sb = np.sign(after), np.sign(before)
    a_abs, b_abs = np.abs(after), np.abs(before)
    opens, closes, same = (sa != 0) & (sa != sb), (sb != 0) & (sa != sb), sa == sb
    n_opened = np.cumsum(opens)
    seg_after = n_opened - 1
    seg_before = np.maximum(n_opened - opens - 1, 0)  # only used with zero weight when < 0
    add = np.where(opens, a_abs, np.where(same & (a_abs > b_abs), a_abs - b_abs, 0.0))
    red = np.where(closes, b_abs, np.where(same & (a_abs < b_abs), b_abs - a_abs, 0.0))
    close_share = np.where(opens & closes, b_abs / np.maximum(a_abs + b_abs, 1e-300), 0.0)
    close_share = np.where(closes & ~opens, 1.0, close_share)
    k = int(n_opened[-1]) if n_opened.size else 0

    def total(seg: IntArray, weights: FloatArray) -> FloatArray:
        return np.bincount(seg, weights=weights, minlength=k).astype(np.float64)

    entry_notional, added = total(seg_after, add * px), total(seg_after, add)
    exit_notional = total(seg_before, red * px)
    seg_cost = total(seg_before, cost * close_share) + total(seg_after, cost * (1 - close_share))
    first = np.flatnonzero(opens)
    symbol, side, entry_bar = sym[first], sa[first].astype(np.int64), bar[first]
    exit_bar = np.full(k, -1, dtype=np.int64)
    exit_bar[seg_before[closes]] = bar[closes]
    closed = exit_bar >= 0
    remaining = np.where(closed, 0.0, np.abs(final_shares[symbol]) if k else 0.0)
    exit_value = exit_notional + remaining * last_px[symbol]
    pnl = side * (exit_value - entry_notional) - seg_cost
    return TradeLog(
        symbol=symbol,
        side=side,
        entry_bar=entry_bar,
        exit_bar=exit_bar,
        entry_price=entry_notional / added,
        exit_price=exit_value / added,
        pnl=pnl,
        ret=pnl / entry_notional,
        costs=seg_cost,
        closed=closed,
    )


def _bar_and_symbol_labels(
    index: npt.ArrayLike | None, symbols: tuple[str, ...] | None, shape: tuple[int, ...]
) -> tuple[npt.NDArray[Any], tuple[str, ...]]:
    labels = np.arange(shape[0]) if index is None else np.asarray(index)
    names = tuple(str(i) for i in range(shape[1])) if symbols is None else tuple(symbols)
    if labels.shape != (shape[0],) or len(names) != shape[1]:
        raise ValueError("index / symbols do not match the panel shape")
    return labels, names


def simulate(
    close: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    open_: npt.ArrayLike | None = None,
    volume: npt.ArrayLike | None = None,
    fill: FillMode = "next_open",
    costs: CostModel | None = None,
    initial_cash: float = 100_000.0,
    integer_shares: bool = False,
    periods_per_year: int = 252,
    regime_labels: npt.ArrayLike | None = None,
    regime_radius: int = 3,
    index: npt.ArrayLike | None = None,
    symbols: tuple[str, ...] | None = None,
    limits: FillLimits = NO_LIMITS,
) -> BacktestResult:
    """Simulate ``target`` weights on a price panel (rules in the module docstring).

    ``limits`` (:class:`FillLimits`): the paper trader's volume cap and minimum order notional,
    so a backtest promises only what paper trading can fill (rule 6).

    ``integer_shares`` truncates every position to whole shares (toward zero). ``regime_labels``
    (per bar) feed ``metrics.transition_max_drawdown``; by default they are the
    :func:`~aistock_actors.core.market.regimes.market_regimes` of ``close``.
    """
    cost_model = costs if costs is not None else BACKTEST_DEFAULT_COSTS
    if not (math.isfinite(initial_cash) and initial_cash > 0):
        raise ValueError("initial_cash must be a positive number")
    if cost_model.impact_bps != 0.0 and volume is None:
        raise ValueError("impact_coef needs a volume panel")
    if limits.max_volume_share is not None and volume is None:
        raise ValueError("max_volume_share needs a volume panel")
    panels = prepare(close, target, open_, volume, fill)
    labels_index, names = _bar_and_symbol_labels(index, symbols, panels.close.shape)
    rates = cost_model.commission_rate + cost_model.slippage_rates(panels.close.shape[1])
    run = run_engine(
        panels, rates, cost_model.impact_fraction, float(initial_cash), integer_shares, limits
    )
    trades = _extract_trades(run.trades_input, run.final_shares, run.last_px)
    # By default the regimes of the universe: market_regimes(close), computed faster.
    labels = market_regimes(panels.close, run.close_ok) if regime_labels is None else regime_labels
    transition_dd = transition_drawdown(run.equity, labels, regime_radius)
    metrics, returns = _summarize(  # and the returns of [initial_cash, *equity] it computed
        run.equity,
        initial_cash,
        trades.pnl[trades.closed],
        gross_exposure=run.gross,
        traded_notional=run.traded_notional,
        total_costs=float(run.costs.sum()),
        transition_max_drawdown=transition_dd,
        periods=periods_per_year,
    )
    return BacktestResult(
        equity=run.equity,
        returns=returns,
        positions=run.positions,
        fills=run.fills,
        costs=run.costs,
        gross_exposure=run.gross,
        trades=trades,
        metrics=metrics,
        index=labels_index,
        symbols=names,
        initial_cash=float(initial_cash),
    )


def simulate_frame(
    close: pd.DataFrame,
    target: pd.DataFrame,
    *,
    open_: pd.DataFrame | None = None,
    volume: pd.DataFrame | None = None,
    symbol_bps: Mapping[str, float] | None = None,
    costs: CostModel | None = None,
    **kwargs: Any,
) -> BacktestResult:
    """:func:`simulate` on DataFrames (DatetimeIndex rows, one column per symbol).

    ``target``, ``open_`` and ``volume`` are aligned to ``close``'s index and columns (missing
    targets are 0, missing prices NaN). ``symbol_bps`` maps symbol -> calibrated slippage bps and
    replaces ``costs.symbol_bps``.
    """
    cols, idx = close.columns, close.index

    def align(frame: pd.DataFrame | None) -> FloatArray | None:
        if frame is None:
            return None
        return frame.reindex(index=idx, columns=cols).to_numpy(dtype=np.float64, na_value=np.nan)

    model = costs if costs is not None else BACKTEST_DEFAULT_COSTS
    if symbol_bps is not None:
        bps = tuple(float(symbol_bps.get(str(c), math.nan)) for c in cols)
        model = msgspec.structs.replace(model, symbol_bps=bps)
    tgt = target.reindex(index=idx, columns=cols).to_numpy(dtype=np.float64, na_value=np.nan)
    return simulate(
        close.to_numpy(dtype=np.float64, na_value=np.nan),
        tgt,
        open_=align(open_),
        volume=align(volume),
        costs=model,
        index=idx.to_numpy(),
        symbols=tuple(str(c) for c in cols),
        **kwargs,
    )
