"""Vectorized multi-symbol portfolio simulator (shares accounting, one numpy pass per bar).

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
4. **Costs**, charged in cash on each fill's traded notional ``|shares| * price``:
   ``commission_rate`` + ``spread_bps / 1e4`` (half-spread / slippage, paid on every trade; a
   per-symbol ``symbol_bps`` overrides it, may be negative = price improvement, NaN = default)
   + ``impact_coef * sqrt(participation)`` where ``participation = |shares| / volume`` of the fill
   bar (1.0 when volume is missing or zero). Fills happen at the raw price; costs reduce cash.
5. **Equity** at bar ``t`` = cash + sum(shares * last known close), after that bar's fills. Margin
   is not modelled: cash may go negative (long) or exceed equity (short).

Round-trip trades: a trade opens when a symbol's position leaves zero (or flips side) and closes
when it returns to zero (or flips). Resizing on the same side belongs to the same trade; entry and
exit prices are share-weighted averages; ``pnl`` is the round trip's cash flow net of ALL its costs
(a flip's cost is split between the closing and the opening trade by shares); ``ret`` is ``pnl``
over the entry notional. Trades still open at the end have ``exit_bar = -1``, are marked at the last
known close, and are not counted in ``win_rate`` / ``trade_count``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from aistock_actors.core.backtest.metrics import BacktestMetrics, simple_returns, summarize
from aistock_actors.core.market.regimes import market_regimes, transition_drawdown

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FillMode = Literal["next_open", "close"]

__all__ = [
    "BacktestMetrics",
    "BacktestResult",
    "CostModel",
    "FillMode",
    "TradeLog",
    "simulate",
    "simulate_frame",
]


@dataclass(frozen=True, slots=True)
class CostModel:
    """Trading costs (see module docstring, rule 4)."""

    commission_rate: float = 0.001
    """Fraction of traded notional, e.g. 0.001 = 0.1 %."""
    spread_bps: float = 0.0
    """Half-spread / slippage in basis points of traded notional, paid on every fill."""
    impact_coef: float = 0.0
    """Coefficient of the ``sqrt(participation)`` impact term (needs ``volume``)."""
    symbol_bps: tuple[float, ...] | None = None
    """Optional per-symbol replacement of ``spread_bps`` (calibrated bps); NaN keeps the default."""

    def slippage_rates(self, n_symbols: int) -> FloatArray:
        """Per-symbol slippage as a fraction of notional (``spread_bps`` or its override)."""
        rates = np.full(n_symbols, self.spread_bps / 1e4, dtype=np.float64)
        if self.symbol_bps is not None:
            override = np.asarray(self.symbol_bps, dtype=np.float64)
            if override.shape != (n_symbols,):
                raise ValueError(f"symbol_bps needs {n_symbols} values, got {override.shape}")
            known = np.isfinite(override)
            rates[known] = override[known] / 1e4
        return rates


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


@dataclass(frozen=True, slots=True)
class _Panels:
    close: FloatArray
    fill_px: FloatArray
    decisions: FloatArray
    volume: FloatArray | None


@dataclass(frozen=True, slots=True)
class _Run:
    equity: FloatArray
    gross: FloatArray
    positions: FloatArray
    fills: FloatArray
    costs: FloatArray
    last_px: FloatArray
    traded_notional: float


def _panel(values: npt.ArrayLike, shape: tuple[int, ...] | None, name: str) -> FloatArray:
    arr = np.array(values, dtype=np.float64)  # a copy: inputs are never modified
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or (shape is not None and arr.shape != shape):
        raise ValueError(f"{name} must be a bars x symbols panel of shape {shape}, got {arr.shape}")
    return arr


def _prepare(
    close: npt.ArrayLike,
    target: npt.ArrayLike,
    open_: npt.ArrayLike | None,
    volume: npt.ArrayLike | None,
    fill: FillMode,
) -> _Panels:
    px = _panel(close, None, "close")
    tgt = np.nan_to_num(_panel(target, px.shape, "target"), nan=0.0, posinf=2.0, neginf=-2.0)
    if np.any(np.abs(tgt) > 1.0 + 1e-12):
        raise ValueError("target weights must lie in [-1, 1]")
    if fill == "next_open":
        if open_ is None:
            raise ValueError('fill="next_open" needs open prices')
        fill_px = _panel(open_, px.shape, "open_")
        decisions = np.vstack((np.zeros((1, px.shape[1])), tgt[:-1]))
    elif fill == "close":
        fill_px, decisions = px, tgt
    else:
        raise ValueError(f"unknown fill mode {fill!r}")
    vol = None if volume is None else _panel(volume, px.shape, "volume")
    return _Panels(px, fill_px, decisions, vol)


def _fill_costs(
    notional: FloatArray,
    delta: FloatArray,
    rates: FloatArray,
    impact_coef: float,
    volume: FloatArray | None,
) -> FloatArray:
    if impact_coef == 0.0 or volume is None:
        return notional * rates
    participation = np.ones(delta.size, dtype=np.float64)
    ok = np.isfinite(volume) & (volume > 0)
    np.divide(np.abs(delta), volume, out=participation, where=ok)
    return notional * (rates + impact_coef * np.sqrt(participation))


def _run(p: _Panels, costs: CostModel, cash: float, next_open: bool, integer: bool) -> _Run:
    n_bars, n_sym = p.close.shape
    positions, fills, paid = (np.zeros((n_bars, n_sym)) for _ in range(3))
    equity, gross = np.empty(n_bars), np.empty(n_bars)
    shares, last, done = np.zeros(n_sym), np.zeros(n_sym), np.zeros(n_sym)
    close_ok = np.isfinite(p.close) & (p.close > 0)
    fill_ok = close_ok if p.fill_px is p.close else np.isfinite(p.fill_px) & (p.fill_px > 0)
    rates = costs.commission_rate + costs.slippage_rates(n_sym)
    traded = 0.0
    for t in range(n_bars):
        if not next_open:
            np.copyto(last, p.close[t], where=close_ok[t])
        need = (p.decisions[t] != done) & fill_ok[t]
        if need.any():
            idx = np.flatnonzero(need)
            px = p.fill_px[t, idx]
            eq_now = cash + float(shares @ np.where(fill_ok[t], p.fill_px[t], last))
            new = p.decisions[t, idx] * eq_now / px
            if integer:
                new = np.trunc(new)
            delta = new - shares[idx]
            notional = np.abs(delta) * px
            vol = None if p.volume is None else p.volume[t, idx]
            cost = _fill_costs(notional, delta, rates[idx], costs.impact_coef, vol)
            cash -= float(delta @ px) + float(cost.sum())
            shares[idx] = new
            done[idx] = p.decisions[t, idx]
            fills[t, idx], paid[t, idx] = delta, cost
            traded += float(notional.sum())
        if next_open:
            np.copyto(last, p.close[t], where=close_ok[t])
        value = shares * last
        positions[t] = shares
        equity[t] = cash + float(value.sum())
        gross[t] = float(np.abs(value).sum())
    return _Run(equity, gross, positions, fills, paid, last, traded)


def _extract_trades(run: _Run, fill_px: FloatArray) -> TradeLog:
    sym, bar = (a.astype(np.int64) for a in np.nonzero(run.fills.T))  # symbol-major order
    after = run.positions[bar, sym]
    before = np.where(bar > 0, run.positions[np.maximum(bar - 1, 0), sym], 0.0)
    px, cost = fill_px[bar, sym], run.costs[bar, sym]
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
    remaining = np.where(closed, 0.0, np.abs(run.positions[-1, symbol]) if k else 0.0)
    exit_value = exit_notional + remaining * run.last_px[symbol]
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
) -> BacktestResult:
    """Simulate ``target`` weights on a price panel (rules in the module docstring).

    ``integer_shares`` truncates every position to whole shares (toward zero). ``regime_labels``
    (per bar) feed ``metrics.transition_max_drawdown``; by default they are the
    :func:`~aistock_actors.core.market.regimes.market_regimes` of ``close``.
    """
    cost_model = costs if costs is not None else CostModel()
    if not (math.isfinite(initial_cash) and initial_cash > 0):
        raise ValueError("initial_cash must be a positive number")
    if cost_model.impact_coef != 0.0 and volume is None:
        raise ValueError("impact_coef needs a volume panel")
    panels = _prepare(close, target, open_, volume, fill)
    labels_index, names = _bar_and_symbol_labels(index, symbols, panels.close.shape)
    run = _run(panels, cost_model, float(initial_cash), fill == "next_open", integer_shares)
    trades = _extract_trades(run, panels.fill_px)
    labels = market_regimes(panels.close) if regime_labels is None else regime_labels
    transition_dd = transition_drawdown(run.equity, labels, regime_radius)
    metrics = summarize(
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
        returns=simple_returns(np.concatenate(([float(initial_cash)], run.equity))),
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

    model = costs if costs is not None else CostModel()
    if symbol_bps is not None:
        bps = tuple(float(symbol_bps.get(str(c), math.nan)) for c in cols)
        model = CostModel(model.commission_rate, model.spread_bps, model.impact_coef, bps)
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
