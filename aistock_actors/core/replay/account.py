"""The account figures of a replay's summary, pure: the paper account from its equity curve and
fills, and an equal-weight buy-and-hold of the same symbols over the same bars, each as an
:class:`~aistock_actors.core.replay.summary.Account` (total return, CAGR by calendar time,
Sharpe at the data's own bar frequency, max drawdown, turnover, costs).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

from aistock_actors.core.backtest.metrics import max_drawdown, sharpe, simple_returns
from aistock_actors.core.replay.summary import Account

YEAR_NS = 365.25 * 86_400 * 10**9


def _years(start_ns: int, end_ns: int) -> float:
    return max(end_ns - start_ns, 0) / YEAR_NS


def _figures(
    times: NDArray[np.int64], equity: NDArray[np.float64], initial: float
) -> tuple[float, float, float, float]:
    """(total return, CAGR by calendar time, Sharpe at the data's own bar frequency, max DD)."""
    final = float(equity[-1])
    total = final / initial - 1.0 if initial > 0 else math.nan
    years = _years(int(times[0]), int(times[-1])) if len(times) > 1 else 0.0
    cagr = (final / initial) ** (1.0 / years) - 1.0 if years > 0 and final > 0 else math.nan
    per_year = max(round((len(times) - 1) / years), 1) if years > 0 else 252
    ratio = sharpe(simple_returns(equity), periods=per_year) if len(equity) > 2 else 0.0
    return total, cagr, float(ratio), float(max_drawdown(equity)) if len(equity) > 1 else 0.0


def paper_account(
    curve: Sequence[tuple[int, float]],
    initial: float,
    fills: Iterable[tuple[float, float, float, float]],
) -> Account | None:
    """The paper account from its equity curve (``(ns, equity)``) and fills
    (``(quantity, price, reference_price, commission)``)."""
    points = [(t, v) for t, v in curve if math.isfinite(v)]
    if not points:
        return None
    times = np.array([t for t, _ in points], dtype=np.int64)
    equity = np.array([v for _, v in points], dtype=np.float64)
    traded = costs = 0.0
    trades = 0
    for quantity, price, reference, commission in fills:
        traded += abs(quantity * price)
        costs += commission + abs(quantity) * abs(price - reference)
        trades += 1
    total, cagr, ratio, drawdown = _figures(times, equity, initial)
    mean = float(equity.mean())
    return Account(
        initial=initial, final_equity=float(equity[-1]), total_return=total, cagr=cagr,
        sharpe=ratio, max_drawdown=drawdown, turnover=traded / mean if mean > 0 else 0.0,
        costs=costs, trades=trades,
    )


def buy_and_hold(
    times: NDArray[np.int64], closes: NDArray[np.float64], initial: float, entry_cost: float
) -> Account | None:
    """Equal-weight buy-and-hold: at the first bar, ``initial`` less ``entry_cost`` (a fraction:
    commission and half spread) split equally over the symbols with a close there, held to the
    end, marked at each symbol's last close. ``closes`` is bars x symbols, NaN where a symbol has
    no bar."""
    equity = buy_and_hold_curve(closes, initial, entry_cost)
    if equity is None or len(times) != len(equity):
        return None
    held = int(np.isfinite(closes[0]).sum())
    total, cagr, ratio, drawdown = _figures(times, equity, initial)
    return Account(
        initial=initial, final_equity=float(equity[-1]), total_return=total, cagr=cagr,
        sharpe=ratio, max_drawdown=drawdown, turnover=1.0, costs=initial * entry_cost,
        trades=held,
    )


def buy_and_hold_curve(
    closes: NDArray[np.float64], initial: float, entry_cost: float
) -> NDArray[np.float64] | None:
    """The equity of :func:`buy_and_hold` at each bar (None: no symbol has a first close)."""
    if closes.size == 0:
        return None
    marks = _forward_filled(closes)
    start = marks[0]
    held = np.isfinite(start) & (start > 0)
    if not held.any():
        return None
    invested = initial * (1.0 - entry_cost)
    shares = np.where(held, invested / held.sum() / np.where(held, start, 1.0), 0.0)
    return np.asarray(np.nansum(np.where(held, marks, 0.0) * shares, axis=1), dtype=np.float64)


def _forward_filled(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each column's last finite value carried forward (NaN before its first)."""
    filled = np.array(values, dtype=np.float64, copy=True)
    valid = np.isfinite(filled)
    index = np.where(valid, np.arange(len(filled))[:, None], 0)
    np.maximum.accumulate(index, axis=0, out=index)
    taken = np.take_along_axis(filled, index, axis=0)
    seen = np.maximum.accumulate(valid, axis=0)
    return np.where(seen, taken, np.nan)
