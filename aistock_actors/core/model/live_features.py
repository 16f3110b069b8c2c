"""``LiveFeatures``: each symbol's latest feature row in numpy, without recomputing its history.

:func:`~aistock_actors.core.model.features.latest_features` builds every symbol's whole feature
frame in pandas to keep its last row: ~7 ms a symbol. Every feature of the last row but one
depends on a bounded tail (the longest, the lag-1 autocorrelation over 60 returns, reads
:data:`TAIL_BARS` bars); the exception is ``vol_regime``, ``vol_20`` over the EXPANDING median of
all earlier ``vol_20`` values. ``LiveFeatures`` computes the tail features for all symbols at
once on a ``symbols x TAIL_BARS`` array (NaN-padded in front, which is exactly pandas'
``min_periods`` rule), and keeps, per symbol, the sorted ``vol_20`` history (``bisect.insort`` of
the new bars' values only), so the median is exact. Its state lives in memory only and is rebuilt
from the bars on first use or whenever the history is not an extension of what it saw.

Same values as :func:`latest_features` on the full history (the tests check it with Hypothesis,
NaNs included) up to rounding: pandas' rolling windows are updated online over all history while
this takes each window in one pass, so the two agree to ~1e-12, not bit for bit; the choice of
rows (NaN ones left out) and every zero / NaN rule are the same.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from aistock_actors.core.model.features import (
    AUTOCORR_WINDOWS,
    FEATURE_NAMES,
    MA_WINDOWS,
    REGIME_MIN_PERIODS,
    RETURN_HORIZONS,
    RSI_WINDOW,
    VOL_WINDOWS,
)
from aistock_actors.errors import DataError

TAIL_BARS = max(AUTOCORR_WINDOWS) + 2
"""Bars the last row depends on besides the expanding median (autocorrelation of 60 lagged
returns: 62 bars; ``mom_60`` and ``vol_60`` need 61)."""

_VOL_WINDOW = 20
_WINDOW_OFFSETS = np.arange(_VOL_WINDOW, 0, -1)
Arrays = tuple[NDArray[np.int64], NDArray[np.float64]]
"""``(timestamps, values)`` of one symbol, values ``(n, 5)``: open, high, low, close, volume."""


def _safe(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
    with np.errstate(all="ignore"):
        out = num / den
    return np.where(np.isfinite(out), out, np.nan)


def _constant(x: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Rows whose window holds one repeated value (pandas returns exact results there)."""
    return np.asarray(x.max(axis=-1) == x.min(axis=-1))


def _mean(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Trailing-window mean over the last axis (NaN if the window has a NaN)."""
    return np.where(_constant(x), x[..., -1], x.mean(axis=-1))


def _std(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Trailing-window sample std over the last axis; exactly 0 on a constant window."""
    with np.errstate(all="ignore"):
        return np.where(_constant(x), 0.0, x.std(axis=-1, ddof=1))


def _autocorr(r: NDArray[np.float64], w: int) -> NDArray[np.float64]:
    """:func:`~aistock_actors.core.model.features.rolling_autocorr` at the last bar."""
    x, y = r[:, -w:], r[:, -w - 1 : -1]
    spread = _std(x) * _std(y)
    xm = x - x.mean(axis=1, keepdims=True)
    ym = y - y.mean(axis=1, keepdims=True)
    with np.errstate(all="ignore"):
        corr = (xm * ym).sum(axis=1) / np.sqrt((xm * xm).sum(axis=1) * (ym * ym).sum(axis=1))
    corr = np.where(np.isfinite(corr) & (spread > 0.0), corr, 0.0)
    defined = ~np.isnan(spread) & ~np.isnan(y[:, -1])
    return np.where(defined, np.clip(corr, -1.0, 1.0), np.nan)


def tail_features(
    tails: NDArray[np.float64], median_vol: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Feature rows (columns :data:`FEATURE_NAMES`) of ``symbols x TAIL_BARS x 5`` tails.

    ``median_vol`` is each symbol's expanding median of ``vol_20`` at the last bar (NaN before
    :data:`REGIME_MIN_PERIODS` values).
    """
    high, low, close, volume = (tails[:, :, k] for k in (1, 2, 3, 4))
    with np.errstate(all="ignore"):
        lc = np.log(close)
        r = np.diff(lc, axis=1)
        log_range = np.log(high / low)
        lv = np.log1p(volume)
    f: dict[str, NDArray[np.float64]] = {
        f"ret_{h}": lc[:, -1] - lc[:, -1 - h] for h in RETURN_HORIZONS
    }
    for w in VOL_WINDOWS:
        f[f"vol_{w}"] = _std(r[:, -w:])
    f["vol_ratio_10_60"] = _safe(f["vol_10"], f["vol_60"])
    f["mom_60"] = lc[:, -1] - lc[:, -61]
    f["mom_20_5"] = lc[:, -6] - lc[:, -21]
    window = r[:, -RSI_WINDOW:]
    gains, losses = _mean(np.clip(window, 0.0, None)), _mean(np.clip(-window, 0.0, None))
    total = gains + losses
    f["rsi_14"] = np.where(total == 0.0, 0.0, _safe(gains - losses, total))
    last = close[:, -1]
    sma = {w: _mean(close[:, -w:]) for w in MA_WINDOWS}
    with np.errstate(all="ignore"):
        for w in MA_WINDOWS:
            f[f"ma_dist_{w}"] = np.log(last / sma[w])
    band = _std(close[:, -20:])
    f["boll_pos_20"] = np.where(band == 0.0, 0.0, _safe(last - sma[20], 2.0 * band))
    v_mean, v_std = _mean(lv[:, -20:]), _std(lv[:, -20:])
    f["volume_z_20"] = np.where(v_std == 0.0, 0.0, _safe(lv[:, -1] - v_mean, v_std))
    f["range_10"] = _mean(log_range[:, -10:])
    span = high[:, -1] - low[:, -1]
    f["close_loc"] = np.where(span == 0.0, 0.5, _safe(last - low[:, -1], span))
    vol_20 = f["vol_20"]
    f["vol_regime"] = _safe(vol_20, median_vol)
    f["trend_sign"] = np.sign(sma[20] - sma[50])
    flat = vol_20 == 0.0
    f["z_ret_1"] = np.where(flat, 0.0, _safe(r[:, -1], vol_20))
    f["z_ret_5"] = np.where(flat, 0.0, _safe(f["ret_5"], vol_20 * np.sqrt(5.0)))
    for w in AUTOCORR_WINDOWS:
        f[f"autocorr_{w}"] = _autocorr(r, w)
        f[f"autocorr_x_ret_{w}"] = f[f"autocorr_{w}"] * f["z_ret_1"]
    f["autocorr_x_ret_vol_regime"] = f["autocorr_x_ret_20"] * f["vol_regime"]
    return np.column_stack([f[name] for name in FEATURE_NAMES])


def vol_20_values(close: NDArray[np.float64], first: int) -> NDArray[np.float64]:
    """``vol_20`` at bars ``first ..`` of ``close`` (those with a full window, NaN ones dropped)."""
    start = max(0, first - _VOL_WINDOW)
    with np.errstate(all="ignore"):
        r = np.diff(np.log(close[start:]))
    skip = max(0, first - start - _VOL_WINDOW)  # window i ends at bar start + 20 + i
    if len(r) < _VOL_WINDOW + skip:
        return np.empty(0)
    ends = np.arange(skip + _VOL_WINDOW, len(r) + 1)
    vols = _std(r[ends[:, None] - _WINDOW_OFFSETS])
    return vols[~np.isnan(vols)]


def _check(symbol: str, ts: NDArray[np.int64], values: NDArray[np.float64]) -> None:
    """What :func:`~aistock_actors.core.model.features.validate_ohlcv` refuses, on new bars."""
    if len(ts) > 1 and not bool((np.diff(ts) > 0).all()):
        raise DataError(f"{symbol}: bar timestamps must be strictly increasing")
    prices = values[:, :4]
    if bool((prices <= 0).any()):
        raise DataError(f"{symbol}: OHLCV bars have a non-positive price")
    if bool((values[:, 4] < 0).any()):
        raise DataError(f"{symbol}: OHLCV column 'volume' has a negative value")


def _check_row(symbol: str, before_ns: int, ts_ns: int, row: list[float]) -> None:
    """:func:`_check` for one new bar (plain Python: it runs for every symbol every cycle)."""
    if ts_ns <= before_ns:
        raise DataError(f"{symbol}: bar timestamps must be strictly increasing")
    if any(x <= 0 for x in row[:4]):
        raise DataError(f"{symbol}: OHLCV bars have a non-positive price")
    if row[4] < 0:
        raise DataError(f"{symbol}: OHLCV column 'volume' has a negative value")


@dataclass
class _VolHistory:
    seen: int = 0
    last_ts: int = 0
    last_row: bytes = b""
    sorted_vols: list[float] = field(default_factory=list)

    def median(self) -> float:
        vols, n = self.sorted_vols, len(self.sorted_vols)
        if n < REGIME_MIN_PERIODS:
            return float("nan")
        mid = n // 2
        return vols[mid] if n % 2 else (vols[mid] + vols[mid - 1]) / 2


class LiveFeatures:
    """Latest feature rows from a bounded tail plus a running expanding median of ``vol_20``."""

    def __init__(self) -> None:
        self._history: dict[str, _VolHistory] = {}
        self.rebuilds = 0
        """How many times a symbol's ``vol_20`` history was rebuilt from all its bars."""

    @staticmethod
    def _extends(hist: _VolHistory, ts: NDArray[np.int64], values: NDArray[np.float64]) -> bool:
        n = hist.seen
        return (
            0 < n <= len(ts)
            and int(ts[n - 1]) == hist.last_ts
            and values[n - 1].tobytes() == hist.last_row
        )

    def _update(self, symbol: str, ts: NDArray[np.int64], values: NDArray[np.float64]) -> bool:
        """Bring ``symbol``'s ``vol_20`` history up to ``ts``; False (nothing done) when the only
        news is one bar on a known history, whose ``vol_20`` :meth:`latest` adds in one batch."""
        hist = self._history.get(symbol)
        if hist is not None and self._extends(hist, ts, values):
            first = hist.seen
            if first == len(ts):
                return True
            if first + 1 == len(ts):
                _check_row(symbol, int(ts[-2]), int(ts[-1]), values[-1].tolist())
                return False
            _check(symbol, ts[first - 1 :], values[first:])
            for vol in vol_20_values(values[:, 3], first).tolist():
                bisect.insort(hist.sorted_vols, vol)
        else:
            _check(symbol, ts, values)
            self.rebuilds += 1
            hist = _VolHistory(sorted_vols=np.sort(vol_20_values(values[:, 3], 0)).tolist())
            self._history[symbol] = hist
        hist.seen = len(ts)
        hist.last_ts = int(ts[-1])
        hist.last_row = values[-1].tobytes()
        return True

    def latest(self, bars: Mapping[str, Arrays]) -> pd.DataFrame:
        """Each symbol's features at its own last bar, indexed by symbol (sorted).

        Like :func:`latest_features`: a symbol without bars or with an undefined feature at its
        last bar is left out; :class:`DataError` for non-positive prices or unordered bars.
        """
        symbols = sorted(s for s, (ts, _) in bars.items() if len(ts))
        for gone in set(self._history) - set(symbols):
            del self._history[gone]
        tails = np.full((len(symbols), TAIL_BARS, 5), np.nan)
        one_new: list[int] = []
        for i, symbol in enumerate(symbols):
            ts, values = bars[symbol]
            if not self._update(symbol, ts, values):
                one_new.append(i)
            tail = values[-TAIL_BARS:]
            tails[i, TAIL_BARS - len(tail) :] = tail
        if one_new:  # the usual cycle: one new bar each, its vol_20 for all symbols at once
            with np.errstate(all="ignore"):
                returns = np.diff(np.log(tails[one_new, -_VOL_WINDOW - 1 :, 3]), axis=1)
            for i, vol in zip(one_new, _std(returns).tolist(), strict=True):
                ts, values = bars[symbols[i]]
                hist = self._history[symbols[i]]
                if vol == vol:  # not NaN
                    bisect.insort(hist.sorted_vols, vol)
                hist.seen = len(ts)
                hist.last_ts = int(ts[-1])
                hist.last_row = values[-1].tobytes()
        medians = np.array([self._history[s].median() for s in symbols])
        rows = tail_features(tails, medians) if symbols else np.empty((0, len(FEATURE_NAMES)))
        keep = np.asarray(~np.isnan(rows).any(axis=1), dtype=bool)
        kept = [s for s, k in zip(symbols, keep.tolist(), strict=True) if k]
        index = pd.Index(kept, name="symbol", dtype=object)
        return pd.DataFrame(rows[keep], index=index, columns=list(FEATURE_NAMES))
