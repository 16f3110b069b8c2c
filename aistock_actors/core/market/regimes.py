"""Causal per-bar market regimes and the drawdown suffered around regime changes (T2).

A regime label combines two binary states, both computed from bars ``<= t`` only:

* volatility: the rolling standard deviation of log returns (``vol_window`` bars) is above
  ``vol_threshold`` times the expanding median of that same rolling volatility (everything known
  up to ``t``; the margin keeps sampling noise of a stationary series from reading as "high");
* trend: the close is below its ``trend_window``-bar simple moving average.

``code = 2 * high_vol + down_trend`` gives :data:`REGIME_NAMES`; bars without enough history are
:data:`UNKNOWN` (-1). A raw label only becomes the regime once it has held for ``min_persistence``
consecutive bars (hysteresis against flicker around the thresholds; still causal).

Transition windows: a regime CHANGE happens at bar ``c`` when the known label at ``c`` differs from
the last known label before ``c``. Its window is bars ``[c - radius, c + radius]`` (clipped to the
series); overlapping or touching windows merge into one run of the boolean mask.

Transition drawdown: inside each run of the mask the drawdown is measured against the run's OWN
running peak, starting at the run's first bar (equity outside the window is ignored), so only losses
suffered during the transition count. The result is the maximum over runs, in ``[0, 1]``.
"""

from __future__ import annotations

import importlib
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from aistock_actors.core.backtest.metrics import drawdown_series

_agg: Any
try:  # pandas' Cython window kernels, called directly (see _window_stats)
    _agg = importlib.import_module("pandas._libs.window.aggregations")
except ImportError:  # pragma: no cover - a pandas without them: the public rolling API
    _agg = None

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]

UNKNOWN: Final = -1
CALM_UP: Final = 0
CALM_DOWN: Final = 1
VOLATILE_UP: Final = 2
VOLATILE_DOWN: Final = 3

REGIME_NAMES: Final[dict[int, str]] = {
    UNKNOWN: "unknown",
    CALM_UP: "calm_up",
    CALM_DOWN: "calm_down",
    VOLATILE_UP: "volatile_up",
    VOLATILE_DOWN: "volatile_down",
}


def regime_name(code: int) -> str:
    """Return the name of a regime code (``"unknown"`` for anything unrecognised)."""
    return REGIME_NAMES.get(int(code), "unknown")


def _carry_forward(close: npt.ArrayLike | pd.Series) -> FloatArray:
    """Positive prices as float64, missing / non-positive ones carried forward (leading: NaN)."""
    values = np.asarray(close, dtype=np.float64).ravel()
    valid = values > 0  # False for NaN and non-positive prices
    if valid.all():  # nothing to carry: the same values (callers only read them)
        return values
    last = np.where(valid, np.arange(values.size), -1)
    np.maximum.accumulate(last, out=last)
    return np.where(last >= 0, values[last], np.nan)


def _debounce(raw: IntArray, min_persistence: int) -> IntArray:
    """Adopt a new known label only after it held for ``min_persistence`` bars (causal).

    The first known label is adopted at once; afterwards a known label is adopted on the bar its
    run of identical raw labels reaches ``min_persistence`` bars, and the last adopted label holds
    in between (so no Python loop over the bars is needed).
    """
    if min_persistence <= 1 or raw.size == 0:
        return raw
    n = raw.size
    # Runs of identical raw labels: a known run of at least ``min_persistence`` bars is adopted on
    # its ``min_persistence``-th bar, the first known run (which starts a run) on its first bar.
    starts = np.flatnonzero(raw[1:] != raw[:-1])
    starts += 1
    starts = np.concatenate(([0], starts))
    lengths = np.empty(starts.size, dtype=np.int64)
    np.subtract(starts[1:], starts[:-1], out=lengths[:-1])
    lengths[-1] = n - starts[-1]
    run_label = raw[starts]
    known = run_label != UNKNOWN
    if not known.any():
        return np.full(n, UNKNOWN, dtype=np.int64)
    first = int(known.argmax())
    adopt = known & (lengths >= min_persistence)
    adopt[first] = True
    at = starts[adopt]  # strictly increasing adoption bars
    at[1:] += min_persistence - 1
    out = np.empty(n, dtype=np.int64)
    out[: at[0]] = UNKNOWN
    seg = np.empty(at.size, dtype=np.int64)
    np.subtract(at[1:], at[:-1], out=seg[:-1])
    seg[-1] = n - at[-1]
    out[at[0] :] = run_label[adopt].repeat(seg)
    return out


def _window_stats(
    px: FloatArray, vol_window: int, trend_window: int, finite: bool = False
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Rolling volatility, its expanding median and the close's SMA, as pandas computes them.

    Calls pandas' own window kernels with the bounds, ``min_periods`` and inf handling that
    ``Series.rolling(w).std()``, ``.expanding(1).median()`` and ``.rolling(w).mean()`` use, so the
    values are the same bits without building Series and window objects (most of their cost).
    Falls back to those public calls when the kernels are unavailable. ``finite``: every price
    is finite (and positive), so neither the prices nor their log returns hold an infinity.
    """
    n = px.size
    with np.errstate(all="ignore"):
        logret = np.empty(n, dtype=np.float64)
        logret[:1] = np.nan
        logp = np.log(px)
        np.subtract(logp[1:], logp[:-1], out=logret[1:])
    if n > 0 and _kernels_usable():
        try:
            return _kernel_stats(px, logret, vol_window, trend_window, finite)
        except (TypeError, ValueError, AttributeError):  # a pandas whose kernels changed shape
            _KERNELS["usable"] = False
    return _public_stats(px, logret, vol_window, trend_window)


def _public_stats(
    px: FloatArray, logret: FloatArray, vol_window: int, trend_window: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The three statistics through pandas' public rolling API (the reference semantics)."""
    lr = pd.Series(logret, dtype=np.float64)
    vol_s = lr.rolling(vol_window, min_periods=vol_window).std()
    med_s = vol_s.expanding(min_periods=1).median()
    sma_s = pd.Series(px, dtype=np.float64).rolling(trend_window, min_periods=trend_window)
    return (
        vol_s.to_numpy(dtype=np.float64),
        med_s.to_numpy(dtype=np.float64),
        sma_s.mean().to_numpy(dtype=np.float64),
    )


def _kernel_stats(
    px: FloatArray, logret: FloatArray, vol_window: int, trend_window: int, finite: bool = False
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The same statistics from pandas' Cython window kernels (private API: see
    :func:`_kernels_usable`)."""
    n = px.size
    end = np.arange(1, n + 1, dtype=np.int64)
    if not finite:
        logret, px = _no_inf(logret), _no_inf(px)
    with np.errstate(all="ignore"):
        var = _agg.roll_var(logret, np.maximum(end - vol_window, 0), end, vol_window, 1)
        vol = np.sqrt(var)
        neg = var < 0
        if neg.any():
            vol[neg] = 0.0  # pandas' zsqrt
        med = _agg.roll_median_c(_no_inf(vol), np.zeros(n, dtype=np.int64), end, 1)
        sma = _agg.roll_mean(px, np.maximum(end - trend_window, 0), end, trend_window)
    return vol, med, sma


_KERNELS: dict[str, bool] = {}
"""Whether the private kernels agree with the public API in this process (checked once)."""


def _kernels_usable() -> bool:
    """Once per process: the kernels exist and give the public API's bits on a probe series
    (gaps, a flat stretch, a jump); a pandas whose private kernels changed falls back to the
    public API instead of mislabelling regimes or failing a backtest."""
    if "usable" not in _KERNELS:
        ok = _agg is not None
        if ok:
            probe = np.concatenate(
                [
                    np.linspace(10.0, 12.0, 40),
                    np.full(15, 12.0),
                    12.0 * np.exp(np.cumsum(np.sin(np.arange(45.0)) * 0.03)),
                ]
            )
            probe[[3, 60]] = np.nan
            with np.errstate(all="ignore"):
                logret = np.concatenate([[np.nan], np.diff(np.log(probe))])
            try:
                fast = _kernel_stats(probe, logret, 5, 7)
                public = _public_stats(probe, logret, 5, 7)
                ok = all(
                    np.array_equal(a, b, equal_nan=True) for a, b in zip(fast, public, strict=True)
                )
            except (TypeError, ValueError, AttributeError):
                ok = False
        _KERNELS["usable"] = ok
    return _KERNELS["usable"]


def _no_inf(values: FloatArray) -> FloatArray:
    """Infinities as NaN, as pandas' window functions read their input."""
    inf = np.isinf(values)
    return np.where(inf, np.nan, values) if inf.any() else values


def label_regimes(
    close: npt.ArrayLike | pd.Series,
    *,
    vol_window: int = 20,
    trend_window: int = 50,
    vol_threshold: float = 1.25,
    min_persistence: int = 3,
) -> IntArray:
    """Per-bar regime codes (see module docstring) of one price series, computed causally.

    Non-positive or missing prices are carried forward from the last valid price; bars before the
    first ``max(vol_window + 1, trend_window)`` prices (bar ``max(vol_window, trend_window - 1)`` is
    the first labelled one) are :data:`UNKNOWN`.
    """
    if vol_window < 2 or trend_window < 1 or not vol_threshold > 0:
        raise ValueError("need vol_window >= 2, trend_window >= 1 and vol_threshold > 0")
    p = _carry_forward(close)
    p_finite = np.isfinite(p)
    all_finite = bool(p_finite.all())
    v, m, s = _window_stats(p, vol_window, trend_window, all_finite)
    known = np.isfinite(v)
    known &= np.isfinite(m)
    known &= np.isfinite(s)
    if not all_finite:
        known &= p_finite
    code = (v > vol_threshold * m + 1e-15).astype(np.int64)
    code += code  # 2 * high_vol
    code += p < s  # + down_trend
    raw: IntArray = np.where(known, code, UNKNOWN)
    return _debounce(raw, min_persistence)


def equal_weight_index(close_panel: npt.ArrayLike | pd.DataFrame) -> FloatArray:
    """Causal equal-weight index (starts at 1) of a bars x symbols close panel.

    The index return of bar ``t`` is the mean simple return of the symbols priced at both ``t-1``
    and ``t``; a bar where none is priced has return 0. Bars before any price are NaN.
    """
    px = np.asarray(close_panel, dtype=np.float64)
    if px.ndim != 2:
        raise ValueError("close_panel must be 2-D (bars x symbols)")
    ok = priced(px)
    index = np.cumprod(1.0 + mean_returns(px, ok))
    started = np.logical_or.accumulate(ok.any(axis=1))
    return np.where(started, index, np.nan)


def priced(px: FloatArray) -> BoolArray:
    """Where a close panel holds a usable price (finite and positive)."""
    return np.isfinite(px) & (px > 0)


def mean_returns(px: FloatArray, ok: BoolArray) -> FloatArray:
    """Per row of a close panel, the mean simple return of the symbols priced on it and on the
    row before (``ok``: :func:`priced`); 0 for the first row and where none is. A row's value
    reads only that row and the one before (``core/market/live_index.py`` relies on it)."""
    rets = np.zeros(px.shape, dtype=np.float64)
    both = ok[1:] & ok[:-1]
    np.divide(px[1:], px[:-1], out=rets[1:], where=both)
    rets[1:][both] -= 1.0
    counts = both.sum(axis=1)
    mean_ret = np.zeros(px.shape[0], dtype=np.float64)
    np.divide(rets[1:].sum(axis=1), counts, out=mean_ret[1:], where=counts > 0)
    return mean_ret


def market_regimes(
    close_panel: npt.ArrayLike | pd.DataFrame,
    *,
    vol_window: int = 20,
    trend_window: int = 50,
    vol_threshold: float = 1.25,
    min_persistence: int = 3,
) -> IntArray:
    """Regime codes of a universe: :func:`label_regimes` of its :func:`equal_weight_index`."""
    return label_regimes(
        equal_weight_index(close_panel),
        vol_window=vol_window,
        trend_window=trend_window,
        vol_threshold=vol_threshold,
        min_persistence=min_persistence,
    )


def regime_changes(labels: npt.ArrayLike) -> IntArray:
    """Bars ``c`` whose known label differs from the last known label before ``c``."""
    lab = np.asarray(labels, dtype=np.int64).ravel()
    if lab.size < 2:
        return np.zeros(0, dtype=np.int64)
    at = (lab != UNKNOWN).nonzero()[0]  # the known bars, each compared with the previous one
    known_lab = lab[at]
    changes: IntArray = at[1:][known_lab[1:] != known_lab[:-1]].astype(np.int64, copy=False)
    return changes


def transition_windows(labels: npt.ArrayLike, radius: int = 3) -> BoolArray:
    """Boolean mask of bars within ``±radius`` bars of a regime change."""
    if radius < 0:
        raise ValueError("radius must be >= 0")
    lab = np.asarray(labels, dtype=np.int64).ravel()
    changes = regime_changes(lab)
    if changes.size == 0:
        return np.zeros(lab.size, dtype=np.bool_)
    size = lab.size + 1  # +1 per window start, -1 one past its end (both clipped to the series)
    opens = np.bincount(np.maximum(changes - radius, 0), minlength=size)
    closes = np.bincount(np.minimum(changes + radius + 1, lab.size), minlength=size)
    return np.cumsum(opens[:-1] - closes[:-1]) > 0


def transition_drawdown(equity: npt.ArrayLike, labels: npt.ArrayLike, radius: int = 3) -> float:
    """Max drawdown inside the transition windows, each measured from its own running peak.

    ``equity`` and ``labels`` are aligned per bar. Returns 0 when there is no regime change.
    """
    eq = np.asarray(equity, dtype=np.float64).ravel()
    lab = np.asarray(labels, dtype=np.int64).ravel()
    if eq.size != lab.size:
        raise ValueError(f"equity ({eq.size}) and labels ({lab.size}) differ in length")
    mask = transition_windows(lab, radius)
    if not mask.any():
        return 0.0
    starts = np.flatnonzero(mask & ~np.concatenate(([False], mask[:-1])))
    ends = np.flatnonzero(mask & ~np.concatenate((mask[1:], [False]))) + 1
    worst = 0.0
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        dd = drawdown_series(eq[lo:hi])
        worst = max(worst, float(dd.max()))
    return worst
