"""Frozen pandas version of ``aistock_actors.core.market.regimes.label_regimes`` (test oracle only).

This is the implementation before the kernels were called directly and the debounce was
vectorised: pandas ``Series.rolling(...).std()``, ``.expanding(1).median()``,
``.rolling(...).mean()`` and a Python loop. Do not edit: the property test in
``tests/core/market/test_regimes_reference.py`` requires the production labels to equal these
exactly.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

UNKNOWN = -1
IntArray = npt.NDArray[np.int64]


def _as_series(close: npt.ArrayLike | pd.Series) -> pd.Series:
    values = np.asarray(close, dtype=np.float64).ravel()
    values = np.where(values > 0, values, np.nan)  # non-positive prices are missing prices
    return pd.Series(values, dtype=np.float64).ffill()


def _debounce(raw: IntArray, min_persistence: int) -> IntArray:
    if min_persistence <= 1:
        return raw
    out = np.full(raw.size, UNKNOWN, dtype=np.int64)
    current, run_label, run_len = UNKNOWN, UNKNOWN, 0
    for t, lab in enumerate(raw.tolist()):
        run_len = run_len + 1 if lab == run_label else 1
        run_label = lab
        if lab != UNKNOWN and (current == UNKNOWN or run_len >= min_persistence):
            current = lab
        out[t] = current
    return out


def reference_label_regimes(
    close: npt.ArrayLike | pd.Series,
    *,
    vol_window: int = 20,
    trend_window: int = 50,
    vol_threshold: float = 1.25,
    min_persistence: int = 3,
) -> IntArray:
    """The frozen pandas ``label_regimes``."""
    if vol_window < 2 or trend_window < 1 or not vol_threshold > 0:
        raise ValueError("need vol_window >= 2, trend_window >= 1 and vol_threshold > 0")
    px = _as_series(close)
    logret = pd.Series(np.log(px.to_numpy()), dtype=np.float64).diff()
    vol = logret.rolling(vol_window, min_periods=vol_window).std()
    vol_median = vol.expanding(min_periods=1).median()
    sma = px.rolling(trend_window, min_periods=trend_window).mean()
    v, m, s, p = (x.to_numpy(dtype=np.float64) for x in (vol, vol_median, sma, px))
    known = np.isfinite(v) & np.isfinite(m) & np.isfinite(s) & np.isfinite(p)
    code = 2 * (v > vol_threshold * m + 1e-15).astype(np.int64) + (p < s).astype(np.int64)
    raw = np.where(known, code, UNKNOWN).astype(np.int64)
    return _debounce(raw, min_persistence)
