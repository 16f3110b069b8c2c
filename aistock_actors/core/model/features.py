"""Causal features from OHLCV bars: every value at bar ``t`` is computed from bars ``<= t`` only.

Only trailing ``rolling`` / ``expanding`` windows and backward ``shift`` are used: never a centred
window, a negative shift or a backward fill, so appending or changing later bars can never change
an earlier feature (a property the tests check by perturbing the future). Warm-up rows are NaN;
:func:`build_feature_panel` drops them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from aistock_actors.errors import DataError

OHLCV_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
"""Columns every input frame must have."""

RETURN_HORIZONS: tuple[int, ...] = (1, 5, 10, 20)
VOL_WINDOWS: tuple[int, ...] = (10, 20, 60)
MA_WINDOWS: tuple[int, ...] = (10, 20, 50)
RSI_WINDOW = 14
BOLLINGER_WINDOW = 20
VOLUME_WINDOW = 20
REGIME_MIN_PERIODS = 60
AUTOCORR_WINDOWS: tuple[int, ...] = (20, 60)
"""Trailing windows of the lag-1 return autocorrelation (the edge of trending / mean-reverting
spells: ``ac_w * z_ret_1`` is the autocorrelation's forecast of the next vol-scaled return)."""

FEATURE_NAMES: tuple[str, ...] = (
    *(f"ret_{h}" for h in RETURN_HORIZONS),
    *(f"vol_{w}" for w in VOL_WINDOWS),
    "vol_ratio_10_60",
    "mom_60",
    "mom_20_5",
    "rsi_14",
    *(f"ma_dist_{w}" for w in MA_WINDOWS),
    "boll_pos_20",
    "volume_z_20",
    "range_10",
    "close_loc",
    "vol_regime",
    "trend_sign",
    # Edge features (issue #14): vol-scaled returns, lag-1 autocorrelation and its interaction
    # with the last return, and that interaction in the volatile regime.
    "z_ret_1",
    "z_ret_5",
    *(f"autocorr_{w}" for w in AUTOCORR_WINDOWS),
    *(f"autocorr_x_ret_{w}" for w in AUTOCORR_WINDOWS),
    "autocorr_x_ret_vol_regime",
)
"""Column order of :func:`build_features`; a trained model records the names it was fitted on."""

WARMUP_BARS = 20 + REGIME_MIN_PERIODS
"""Bars a gap-free series needs before its last row has every feature (``vol_regime`` is last)."""


def validate_ohlcv(df: pd.DataFrame) -> None:
    """Raise :class:`DataError` unless ``df`` is a time-ordered OHLCV frame with positive prices."""
    missing = [c for c in OHLCV_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"OHLCV frame is missing columns {missing}")
    if not isinstance(df.index, pd.DatetimeIndex):
        raise DataError("OHLCV frame must have a DatetimeIndex")
    if not df.index.is_monotonic_increasing or df.index.has_duplicates:
        raise DataError("OHLCV index must be strictly increasing (sorted, no duplicate bars)")
    for col in ("open", "high", "low", "close"):
        if bool((df[col] <= 0).any()):
            raise DataError(f"OHLCV column {col!r} has a non-positive price")
    if bool((df["volume"] < 0).any()):
        raise DataError("OHLCV column 'volume' has a negative value")


def _safe_ratio(num: pd.DataFrame, den: pd.DataFrame) -> pd.DataFrame:
    """``num / den`` with division by zero mapped to NaN instead of +-inf."""
    out = num / den
    return out.where(np.isfinite(out))


def rolling_std(x: pd.DataFrame, window: int) -> pd.DataFrame:
    """Trailing ``window``-bar sample std (NaN before a full window), exactly 0 on a window of
    one repeated value: pandas' online update leaves a residue there after earlier values moved
    (6e-8 on 20 equal closes), which made a 0/0 feature a finite number or a huge one by chance
    (and differ from :mod:`~aistock_actors.core.model.live_features`, whose windows are exact)."""
    roll = x.rolling(window, min_periods=window)
    return roll.std().mask(roll.max() == roll.min(), 0.0)


def _like(values: npt.NDArray[np.float64], like: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(values, index=like.index, columns=like.columns)


def _log(x: pd.DataFrame) -> pd.DataFrame:
    return _like(np.log(x.to_numpy(dtype=float)), x)


def _price_features(close: pd.DataFrame) -> dict[str, pd.DataFrame]:
    log_close = _log(close)
    ret_1 = log_close.diff()
    out: dict[str, pd.DataFrame] = {
        f"ret_{h}": log_close - log_close.shift(h) for h in RETURN_HORIZONS
    }
    for w in VOL_WINDOWS:
        out[f"vol_{w}"] = rolling_std(ret_1, w)
    out["vol_ratio_10_60"] = _safe_ratio(out["vol_10"], out["vol_60"])
    out["mom_60"] = log_close - log_close.shift(60)
    out["mom_20_5"] = log_close.shift(5) - log_close.shift(20)
    gains = ret_1.clip(lower=0.0).rolling(RSI_WINDOW, min_periods=RSI_WINDOW).mean()
    losses = (-ret_1).clip(lower=0.0).rolling(RSI_WINDOW, min_periods=RSI_WINDOW).mean()
    total = gains + losses
    out["rsi_14"] = _safe_ratio(gains - losses, total).mask(total == 0.0, 0.0)
    for w in MA_WINDOWS:
        sma = close.rolling(w, min_periods=w).mean()
        out[f"ma_dist_{w}"] = _log(close / sma)
    mid = close.rolling(BOLLINGER_WINDOW, min_periods=BOLLINGER_WINDOW).mean()
    band = rolling_std(close, BOLLINGER_WINDOW)
    out["boll_pos_20"] = _safe_ratio(close - mid, 2.0 * band).mask(band == 0.0, 0.0)
    return out


def _bar_features(
    high: pd.DataFrame, low: pd.DataFrame, close: pd.DataFrame, volume: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    log_range = _log(high / low)
    span = high - low
    close_loc = _safe_ratio(close - low, span).mask(span == 0.0, 0.5)
    log_volume = _like(np.log1p(volume.to_numpy(dtype=float)), volume)
    vol_mean = log_volume.rolling(VOLUME_WINDOW, min_periods=VOLUME_WINDOW).mean()
    vol_std = rolling_std(log_volume, VOLUME_WINDOW)
    return {
        "range_10": log_range.rolling(10, min_periods=10).mean(),
        "close_loc": close_loc,
        "volume_z_20": _safe_ratio(log_volume - vol_mean, vol_std).mask(vol_std == 0.0, 0.0),
    }


def _regime_features(close: pd.DataFrame, vol_20: pd.DataFrame) -> dict[str, pd.DataFrame]:
    median_vol = vol_20.expanding(min_periods=REGIME_MIN_PERIODS).median()
    sma_20 = close.rolling(20, min_periods=20).mean()
    sma_50 = close.rolling(50, min_periods=50).mean()
    diff = sma_20 - sma_50
    return {
        "vol_regime": _safe_ratio(vol_20, median_vol),
        "trend_sign": _like(np.sign(diff.to_numpy()), diff),
    }


def rolling_autocorr(ret_1: pd.DataFrame, window: int) -> pd.DataFrame:
    """Trailing ``window``-bar correlation of ``ret_1[t]`` with ``ret_1[t-1]``, per column (causal).

    A window with a constant return (flat prices) has no defined correlation: it is 0 there, not
    NaN or infinite, so a halted symbol neither drops out nor poisons a fit.
    """
    lagged = ret_1.shift(1)
    corr = ret_1.rolling(window, min_periods=window).corr(lagged, pairwise=False)
    spread = rolling_std(ret_1, window) * rolling_std(lagged, window)
    defined = spread.notna() & lagged.notna()
    corr = corr.where(np.isfinite(corr), 0.0).where(spread > 0.0, 0.0)
    return corr.clip(-1.0, 1.0).where(defined)


def _edge_features(
    close: pd.DataFrame, cols: dict[str, pd.DataFrame]
) -> dict[str, pd.DataFrame]:
    """Vol-scaled returns, autocorrelations and their interactions (all from bars ``<= t``)."""
    ret_1 = _log(close).diff()
    vol_20 = cols["vol_20"]
    z_ret_1 = _safe_ratio(ret_1, vol_20).mask(vol_20 == 0.0, 0.0)
    z_ret_5 = _safe_ratio(cols["ret_5"], vol_20 * np.sqrt(5.0)).mask(vol_20 == 0.0, 0.0)
    out: dict[str, pd.DataFrame] = {"z_ret_1": z_ret_1, "z_ret_5": z_ret_5}
    for w in AUTOCORR_WINDOWS:
        ac = rolling_autocorr(ret_1, w)
        out[f"autocorr_{w}"] = ac
        out[f"autocorr_x_ret_{w}"] = ac * z_ret_1
    out["autocorr_x_ret_vol_regime"] = out["autocorr_x_ret_20"] * cols["vol_regime"]
    return out


def wide_features(
    *, high: pd.DataFrame, low: pd.DataFrame, close: pd.DataFrame, volume: pd.DataFrame
) -> dict[str, npt.NDArray[np.float64]]:
    """Every feature of many symbols on ONE shared index, in one pass per formula.

    The inputs are ``bars x symbols`` frames (float; same index and columns). Returns, in
    :data:`FEATURE_NAMES` order, a ``(bars, symbols)`` array per feature. Each column is computed
    exactly as a symbol alone (the same kernels run column by column), without a pandas call
    per symbol and formula.
    """
    cols = _price_features(close)
    cols.update(_bar_features(high, low, close, volume))
    cols.update(_regime_features(close, cols["vol_20"]))
    cols.update(_edge_features(close, cols))
    return {name: cols.pop(name).to_numpy(dtype=float) for name in FEATURE_NAMES}


def wide_columns(frames: dict[str, pd.DataFrame], column: str) -> pd.DataFrame:
    """``frames[s][column]`` side by side (columns in the dict's order); all share one index."""
    first = next(iter(frames.values()))
    values = np.column_stack([f[column].to_numpy(dtype=float) for f in frames.values()])
    return pd.DataFrame(values, index=first.index, columns=list(frames))


def build_features(df: pd.DataFrame) -> pd.DataFrame:
    """Return the causal feature frame (columns :data:`FEATURE_NAMES`) of one symbol's bars.

    The index is ``df.index``; warm-up rows (and rows after a gap in the data) hold NaN.
    Raises :class:`DataError` for a frame that is not sorted OHLCV with positive prices.
    """
    validate_ohlcv(df)
    one = {"_": df}
    wide = wide_features(
        high=wide_columns(one, "high"), low=wide_columns(one, "low"),
        close=wide_columns(one, "close"), volume=wide_columns(one, "volume"),
    )
    values = np.column_stack([wide[name][:, 0] for name in FEATURE_NAMES])
    return pd.DataFrame(values, index=df.index, columns=list(FEATURE_NAMES))


def build_feature_panel(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Stack the features of many symbols into one frame indexed by ``(timestamp, symbol)``.

    Rows with any NaN feature (warm-up, gaps) are dropped, so one model can be trained on (or
    asked for signals across) every symbol at once. Rows are sorted by timestamp, then symbol.
    """
    if not frames:
        raise DataError("no symbols to build features for")
    parts = []
    for symbol in sorted(frames):
        feats = build_features(frames[symbol])
        feats.index = pd.MultiIndex.from_arrays(
            [feats.index, pd.Index([symbol] * len(feats), dtype=object)],
            names=["timestamp", "symbol"],
        )
        parts.append(feats)
    panel = pd.concat(parts).dropna(how="any")
    return panel.sort_index(level=["timestamp", "symbol"])


def latest_features(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Return each symbol's features at its own last bar, indexed by symbol (for live signals).

    A symbol whose last bar has an undefined feature is left out rather than given an older row,
    so a signal is never computed from stale data.
    """
    rows = {}
    for symbol in sorted(frames):
        last = build_features(frames[symbol]).iloc[-1:]
        if len(last) and not bool(last.isna().to_numpy().any()):
            rows[symbol] = last.iloc[0]
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(FEATURE_NAMES))
    frame.index.name = "symbol"
    return frame.astype(float)
