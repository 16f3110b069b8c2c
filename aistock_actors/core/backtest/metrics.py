"""Performance metrics of an equity curve and a list of closed trades.

Every function takes plain arrays (or anything ``np.asarray`` accepts) and returns plain floats, so
the same code scores a backtest, a paper-trading account or a walk-forward fold. Conventions:

* ``equity`` is a curve of account values, oldest first; ``returns`` are simple per-bar returns.
* Drawdowns are POSITIVE fractions of the running peak, clipped into ``[0, 1]`` (an account that
  goes to zero or below has lost everything: drawdown 1).
* Non-finite inputs never raise: they are dropped (returns) or make the result degenerate but
  finite (``0.0``), so a gate comparing a metric with a threshold never sees NaN.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

RETURN_OVER_DRAWDOWN_CAP = 1_000.0
"""Upper bound of :func:`return_over_drawdown`.

A profitable curve without any drawdown would divide by zero; it is reported as this finite cap
instead of ``inf`` so the metric survives JSON (msgspec encodes ``inf`` as ``null``) and still
passes any sane ``>=`` threshold.
"""


class BacktestMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """Summary of one backtest; every field is finite."""

    total_return: float
    """``final_equity / initial_cash - 1``."""
    cagr: float
    """Compound annual growth rate (``periods_per_year`` bars per year)."""
    sharpe: float
    """Annualised Sharpe ratio of per-bar equity returns, risk-free rate 0."""
    max_drawdown: float
    """Largest peak-to-trough loss of the equity curve, a positive fraction in ``[0, 1]``."""
    win_rate: float
    """Fraction of CLOSED round-trip trades with a positive net pnl (0 when there is none)."""
    trade_count: int
    """Number of closed round-trip trades."""
    return_over_drawdown: float
    """``total_return / max_drawdown``; see :func:`return_over_drawdown` for the zero case."""
    exposure: float
    """Time-averaged gross exposure: mean over bars of ``sum(|position value|) / equity``."""
    turnover: float
    """Annualised one-way turnover: traded notional per year divided by the mean equity."""
    total_costs: float
    """Commission + spread + impact paid, in cash."""
    transition_max_drawdown: float = 0.0
    """Largest drawdown inside a regime-transition window (see ``core.regimes``), T2."""
    bars_per_year: float = 252.0
    """The bars per year Sharpe, CAGR and turnover were annualised with (inferred from the
    timestamps by :func:`~aistock_actors.core.backtest.frequency.infer_bars_per_year` in the
    walk-forward backtest)."""


def _finite(values: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    return arr[np.isfinite(arr)]


def simple_returns(equity: npt.ArrayLike) -> FloatArray:
    """Per-bar simple returns ``e[t] / e[t-1] - 1`` (length ``len(equity) - 1``).

    A step from a non-positive or non-finite value has no defined return and is reported as 0.
    """
    eq = np.asarray(equity, dtype=np.float64).ravel()
    return _simple_returns(eq, bool(np.isfinite(eq).all()))


def _simple_returns(eq: FloatArray, finite: bool) -> FloatArray:
    """:func:`simple_returns` of a flat float64 curve; ``finite``: every value is finite."""
    if eq.size < 2:
        return np.zeros(0, dtype=np.float64)
    prev, cur = eq[:-1], eq[1:]
    if finite and (prev > 0).all():  # every step defined: the same divisions, unmasked
        out = cur / prev
        out -= 1.0
        return out
    ok = np.isfinite(prev) & np.isfinite(cur) & (prev > 0)
    out = np.zeros(cur.size, dtype=np.float64)
    np.divide(cur, prev, out=out, where=ok)
    out[ok] -= 1.0
    return out


def sharpe(returns: npt.ArrayLike, periods: int = 252) -> float:
    """Annualised Sharpe ratio, risk-free 0: ``mean / std(ddof=1) * sqrt(periods)``.

    Non-finite returns are dropped. Fewer than two returns or a zero standard deviation give 0.
    """
    r = _finite(returns)
    if r.size < 2:
        return 0.0
    sd = float(r.std(ddof=1))  # the methods np.std / np.mean call, without their wrappers
    if not sd > 1e-15:
        return 0.0
    return float(r.mean()) / sd * math.sqrt(periods)


def drawdown_series(equity: npt.ArrayLike) -> FloatArray:
    """Per-bar drawdown ``1 - equity / running_peak``, clipped into ``[0, 1]``.

    Non-finite values carry the previous value forward (a missing mark is not a loss). While the
    running peak is not positive (an account that never had money) the drawdown is 1.
    """
    eq = np.asarray(equity, dtype=np.float64).ravel()
    if eq.size == 0:
        return eq.copy()
    return _drawdown_series(eq, bool(np.isfinite(eq).all()))


def _drawdown_series(eq: FloatArray, finite: bool) -> FloatArray:
    """:func:`drawdown_series` of a non-empty flat float64 curve (read only); ``finite``: every
    value is finite."""
    if not finite:
        idx = np.where(np.isfinite(eq), np.arange(eq.size), 0)
        np.maximum.accumulate(idx, out=idx)
        eq = eq[idx]
        eq[~np.isfinite(eq)] = 0.0  # leading gaps: nothing known yet
    peak = np.maximum.accumulate(eq)
    if peak[0] > 0:  # then every peak is positive: the same divisions, unmasked
        dd = np.divide(eq, peak)
        np.subtract(1.0, dd, out=dd)
    else:
        dd = np.ones(eq.size, dtype=np.float64)
        pos = peak > 0
        dd[pos] = 1.0 - eq[pos] / peak[pos]
    np.maximum(dd, 0.0, out=dd)  # np.clip's result, without its overhead
    return np.minimum(dd, 1.0, out=dd)


def max_drawdown(equity: npt.ArrayLike) -> float:
    """Largest drawdown of the curve, a positive fraction in ``[0, 1]``; 0 for an empty curve."""
    dd = drawdown_series(equity)
    return float(dd.max()) if dd.size else 0.0


def cagr(equity: npt.ArrayLike, periods: int = 252) -> float:
    """Compound annual growth rate from the first to the last point of ``equity``.

    The curve spans ``len(equity) - 1`` bars of ``1 / periods`` years. A curve that ends at or
    below zero has CAGR -1; a curve with fewer than two points or a non-positive start has 0.
    """
    return _cagr(_finite(equity), periods)


def _cagr(eq: FloatArray, periods: int) -> float:
    """:func:`cagr` of a curve whose values are all finite."""
    if eq.size < 2 or eq[0] <= 0:
        return 0.0
    if eq[-1] <= 0:
        return -1.0
    years = (eq.size - 1) / periods
    growth = math.log(float(eq[-1]) / float(eq[0])) / years
    return math.expm1(min(growth, 700.0))


def win_rate(trade_pnls: npt.ArrayLike) -> float:
    """Fraction of trades with a strictly positive pnl; 0 when there is no trade."""
    pnl = _finite(trade_pnls)
    return float(np.mean(pnl > 0)) if pnl.size else 0.0


def return_over_drawdown(total_return: float, max_dd: float) -> float:
    """``total_return / max_dd``, finite and clipped to ``±RETURN_OVER_DRAWDOWN_CAP``.

    With no drawdown (``max_dd <= 0``) a positive return scores the cap and anything else 0.
    """
    if not (math.isfinite(total_return) and math.isfinite(max_dd)):
        return 0.0
    if max_dd <= 0:
        return RETURN_OVER_DRAWDOWN_CAP if total_return > 0 else 0.0
    ratio = total_return / max_dd
    return max(-RETURN_OVER_DRAWDOWN_CAP, min(RETURN_OVER_DRAWDOWN_CAP, ratio))


def summarize(
    equity: npt.ArrayLike,
    initial_cash: float,
    closed_trade_pnls: npt.ArrayLike,
    *,
    gross_exposure: npt.ArrayLike | None = None,
    traded_notional: float = 0.0,
    total_costs: float = 0.0,
    transition_max_drawdown: float = 0.0,
    periods: int = 252,
) -> BacktestMetrics:
    """Build :class:`BacktestMetrics` for an equity curve that started at ``initial_cash``.

    ``equity[t]`` is the account value at the end of bar ``t``; the curve used for returns,
    drawdown and CAGR is ``[initial_cash, *equity]``. ``gross_exposure[t]`` is the gross position
    value at the end of bar ``t`` (same length as ``equity``).
    """
    return _summarize(
        equity,
        initial_cash,
        closed_trade_pnls,
        gross_exposure=gross_exposure,
        traded_notional=traded_notional,
        total_costs=total_costs,
        transition_max_drawdown=transition_max_drawdown,
        periods=periods,
    )[0]


def _summarize(
    equity: npt.ArrayLike,
    initial_cash: float,
    closed_trade_pnls: npt.ArrayLike,
    *,
    gross_exposure: npt.ArrayLike | None,
    traded_notional: float,
    total_costs: float,
    transition_max_drawdown: float,
    periods: int,
) -> tuple[BacktestMetrics, FloatArray]:
    """:func:`summarize`, and the simple returns of ``[initial_cash, *equity]`` it used.

    The curve's finiteness is checked once and shared by the drawdown, CAGR and returns.
    """
    eq = np.asarray(equity, dtype=np.float64).ravel()
    curve = np.concatenate(([float(initial_cash)], eq))
    finite = bool(np.isfinite(curve).all())
    total = float(curve[-1] / curve[0] - 1.0) if curve[0] > 0 and eq.size else 0.0
    dd = _drawdown_series(curve, finite)
    mdd = float(dd.max())
    pnls = _finite(closed_trade_pnls)
    exposure = 0.0
    if gross_exposure is not None and eq.size:
        gross = np.asarray(gross_exposure, dtype=np.float64).ravel()
        if finite and gross.shape == eq.shape and (eq > 0).all() and np.isfinite(gross).all():
            exposure = float((gross / eq).sum() / eq.size)  # every bar counts: no masking
        else:
            ok = np.isfinite(gross) & np.isfinite(eq) & (eq > 0)
            if ok.any():
                exposure = float(np.sum(gross[ok] / eq[ok]) / eq.size)
    turnover = 0.0
    mean_eq = float(curve.mean())
    if eq.size and mean_eq > 0:
        turnover = traded_notional / mean_eq * periods / eq.size
    returns = _simple_returns(curve, finite)
    metrics = BacktestMetrics(
        total_return=total,
        cagr=_cagr(curve if finite else curve[np.isfinite(curve)], periods),
        sharpe=sharpe(returns, periods),
        max_drawdown=mdd,
        win_rate=win_rate(pnls),
        trade_count=int(pnls.size),
        return_over_drawdown=return_over_drawdown(total, mdd),
        exposure=exposure,
        turnover=turnover,
        total_costs=float(total_costs),
        transition_max_drawdown=float(transition_max_drawdown),
        bars_per_year=float(periods),
    )
    return metrics, returns
