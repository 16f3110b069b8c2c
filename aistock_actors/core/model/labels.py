"""Forward-looking labels and the end time of each label window (needed to purge training data).

A label at bar ``t`` looks at bars after ``t``; its window is ``[t, end_time]``. Rows whose window
runs past the data are NaN / NaT. :func:`build_training_set` joins these labels to the causal
features of :mod:`aistock_actors.core.model.features` for a whole panel of symbols. Its default
label is the TRADABLE one (:func:`tradable_labels`: next open to the open ``horizon`` bars later,
net of the round-trip cost), the return a signal at ``t`` can really earn.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from aistock_actors.core.model.features import (
    FEATURE_NAMES,
    build_features,
    validate_ohlcv,
    wide_columns,
    wide_features,
)
from aistock_actors.core.model.memory_hints import trim_heap
from aistock_actors.errors import DataError

LabelMethod = Literal["tradable", "direction", "triple_barrier"]

ROUND_TRIP_COST_BPS = 15.0
"""The move a tradable label must beat, both sides: the default commission (5 bps) and half
spread (2 bps) paid on entry and on exit, rounded up."""


def _check_horizon(horizon: int) -> None:
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1 bar, got {horizon}")


def forward_log_returns(close: pd.Series, horizon: int) -> pd.Series:
    """Return ``log(close[t+horizon] / close[t])``; the last ``horizon`` values are NaN."""
    _check_horizon(horizon)
    log_close = pd.Series(np.log(close.to_numpy(dtype=float)), index=close.index)
    return log_close.shift(-horizon) - log_close


def direction_labels(close: pd.Series, horizon: int, cost_threshold: float = 0.0) -> pd.Series:
    """Return 1.0 where the forward log return over ``horizon`` bars exceeds ``cost_threshold``.

    Otherwise 0.0; NaN where the forward return is unknown (the last ``horizon`` bars, gaps).
    """
    fwd = forward_log_returns(close, horizon)
    labels = (fwd > cost_threshold).astype(float)
    return labels.where(fwd.notna())


def label_end_times(index: pd.DatetimeIndex, horizon: int) -> pd.Series:
    """Return, for each bar, the timestamp of the bar ``horizon`` bars later (NaT at the end)."""
    _check_horizon(horizon)
    return index.to_series().shift(-horizon)


def tradable_forward_returns(open_: pd.Series, horizon: int) -> pd.Series:
    """``log(open[t+1+horizon] / open[t+1])``: what a signal at ``t``'s close earns, filled at the
    next open and held ``horizon`` bars; the last ``1 + horizon`` values are NaN."""
    _check_horizon(horizon)
    log_open = pd.Series(np.log(open_.to_numpy(dtype=float)), index=open_.index)
    return log_open.shift(-(1 + horizon)) - log_open.shift(-1)


def tradable_labels(
    open_: pd.Series, horizon: int, cost_bps: float = ROUND_TRIP_COST_BPS
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Cost-aware labels on the tradable return: ``(labels, end_times, forward_returns)``.

    1.0 where :func:`tradable_forward_returns` beats the round-trip cost ``cost_bps``, 0.0 where
    it is below minus the cost, NaN where the move is too small to pay for a trade (those rows
    are not trained on) or unknown. A label ends at the bar ``1 + horizon`` bars later (the exit
    open), which is what purging must respect.
    """
    fwd = tradable_forward_returns(open_, horizon)
    cost = cost_bps / 1e4
    labels = (fwd > 0).astype(float).where(fwd.abs() > cost)
    ends = open_.index.to_series().shift(-(1 + horizon))
    return labels, ends, fwd


def triple_barrier_labels(
    close: pd.Series,
    horizon: int,
    *,
    width: float = 1.0,
    vol_window: int = 20,
    cost_threshold: float = 0.0,
) -> tuple[pd.Series, pd.Series]:
    """Triple-barrier labels (López de Prado): ``(labels, end_times)``.

    Barriers sit at ``+-width * vol_t * sqrt(horizon)`` in log price, where ``vol_t`` is the
    trailing ``vol_window`` std of log returns at ``t``. The label is 1.0 if the upper barrier is
    touched first, 0.0 if the lower one is; if neither is touched within ``horizon`` bars it is the
    direction label at the vertical barrier. The end time is the bar of the first touch, so
    purging removes no more than the label really used.
    """
    _check_horizon(horizon)
    log_close = np.log(close.to_numpy(dtype=float))
    vol = pd.Series(log_close, index=close.index).diff().rolling(vol_window).std().to_numpy()
    n = len(log_close)
    labels = np.full(n, np.nan)
    end_pos = np.full(n, -1, dtype=np.int64)
    if n > horizon:
        windows = sliding_window_view(log_close, horizon + 1)[: n - horizon]
        path = windows[:, 1:] - windows[:, :1]
        barrier = (width * vol[: n - horizon] * np.sqrt(horizon))[:, None]
        up, down = path >= barrier, path <= -barrier
        first_up = np.where(up.any(axis=1), up.argmax(axis=1), horizon)
        first_down = np.where(down.any(axis=1), down.argmax(axis=1), horizon)
        vertical = (path[:, -1] > cost_threshold).astype(float)
        result = np.where(first_down < first_up, 0.0, vertical)
        result = np.where(first_up < first_down, 1.0, result)
        ok = ~np.isnan(barrier[:, 0]) & ~np.isnan(path).any(axis=1)
        labels[: n - horizon] = np.where(ok, result, np.nan)
        touch = np.minimum(np.minimum(first_up, first_down), horizon - 1) + 1
        end_pos[: n - horizon] = np.where(ok, np.arange(n - horizon) + touch, -1)
    index = close.index
    ends = pd.Series(pd.NaT, index=index, dtype=pd.Series(index).dtype)
    valid = end_pos >= 0
    ends.iloc[np.flatnonzero(valid)] = index[end_pos[valid]]
    return pd.Series(labels, index=index), ends


class TrainingSet(NamedTuple):
    """Aligned training data for a panel; every row has features, a label and its end time."""

    features: pd.DataFrame
    """Causal features indexed by ``(timestamp, symbol)``."""
    labels: pd.Series
    """0/1 labels (int), same index: up / down over the label window."""
    label_end_times: pd.Series
    """Timestamp at which each label's window ends, same index."""
    forward_returns: pd.Series
    """Forward log return the label was cut from, same index (for payoff-aware evaluation)."""


def _symbol_rows(
    df: pd.DataFrame, horizon: int, cost_threshold: float, method: LabelMethod
) -> pd.DataFrame:
    validate_ohlcv(df)
    close = df["close"].astype(float)
    frame = build_features(df)
    if method == "tradable":
        labels, ends, fwd = tradable_labels(df["open"].astype(float), horizon)
    elif method == "direction":
        labels = direction_labels(close, horizon, cost_threshold)
        ends = label_end_times(pd.DatetimeIndex(df.index), horizon)
        fwd = forward_log_returns(close, horizon)
    else:
        labels, ends = triple_barrier_labels(close, horizon, cost_threshold=cost_threshold)
        fwd = forward_log_returns(close, horizon)
    frame["__label"] = labels
    frame["__end"] = ends
    frame["__fwd"] = fwd
    return frame.dropna(how="any")


def build_training_set(
    frames: dict[str, pd.DataFrame],
    *,
    horizon: int,
    cost_threshold: float = 0.0,
    method: LabelMethod = "tradable",
) -> TrainingSet:
    """Build features and labels for every symbol and stack them on ``(timestamp, symbol)``.

    Rows without a complete feature vector (warm-up) or a known label (the last bars; with the
    default ``tradable`` labels also moves too small to pay their costs) are dropped.
    ``cost_threshold`` applies to the ``direction`` and ``triple_barrier`` methods only.
    Symbols that share one index with the default labels are built side by side
    (:func:`_shared_index_set`, #18: the same rows, one pandas call per formula instead of one
    per symbol and formula); any other panel symbol by symbol.
    """
    _check_horizon(horizon)
    if not frames:
        raise DataError("no symbols to build a training set from")
    ordered = {symbol: frames[symbol] for symbol in sorted(frames)}
    first = next(iter(ordered.values())).index
    if method == "tradable" and all(f.index.equals(first) for f in ordered.values()):
        return _shared_index_set(ordered, horizon)
    return _symbol_by_symbol_set(ordered, horizon, cost_threshold, method)


def _shared_index_set(frames: dict[str, pd.DataFrame], horizon: int) -> TrainingSet:
    """:func:`build_training_set` of symbols on one index, tradable labels: bars x symbols frames
    in, rows in ``(timestamp, symbol)`` order out (the tests check it equals the other path)."""
    for df in frames.values():
        validate_ohlcv(df)
    wide = wide_features(**{c: wide_columns(frames, c) for c in ("high", "low", "close", "volume")})
    index = next(iter(frames.values())).index
    opens = wide_columns(frames, "open")
    log_open = pd.DataFrame(np.log(opens.to_numpy()), index=opens.index, columns=opens.columns)
    fwd = (log_open.shift(-(1 + horizon)) - log_open.shift(-1)).to_numpy()
    with np.errstate(invalid="ignore"):
        label = np.where(np.abs(fwd) > ROUND_TRIP_COST_BPS / 1e4, (fwd > 0).astype(float), np.nan)
    ends = index.to_series().shift(-(1 + horizon))
    keep = ~np.isnan(label) & ends.notna().to_numpy()[:, None]
    for values in wide.values():
        keep &= ~np.isnan(values)
    rows = np.flatnonzero(keep.ravel())
    at, of = np.divmod(rows, len(frames))
    names = pd.Index(np.asarray(list(frames), dtype=object)[of], dtype=object)
    panel = pd.MultiIndex.from_arrays([index[at], names], names=["timestamp", "symbol"])
    # Filled a feature at a time while the wide arrays are released: the build's peak is the
    # wide features plus the rows kept, once each.
    out = np.empty((len(rows), len(FEATURE_NAMES)))
    for k, name in enumerate(FEATURE_NAMES):
        out[:, k] = wide.pop(name).ravel()[rows]
    features = pd.DataFrame(out, index=panel, columns=list(FEATURE_NAMES), copy=False)
    if features.empty:
        raise DataError("no labelled rows: every symbol is shorter than warm-up plus horizon")
    return TrainingSet(
        features=features,
        labels=pd.Series(label.ravel()[rows], index=panel, name="__label").astype(np.int64),
        label_end_times=ends.iloc[at].set_axis(panel).rename("__end"),
        forward_returns=pd.Series(fwd.ravel()[rows], index=panel, name="__fwd"),
    )


def _symbol_by_symbol_set(
    frames: dict[str, pd.DataFrame], horizon: int, cost_threshold: float, method: LabelMethod
) -> TrainingSet:
    parts = []
    for symbol, df in frames.items():
        rows = _symbol_rows(df, horizon, cost_threshold, method)
        rows.index = pd.MultiIndex.from_arrays(
            [rows.index, pd.Index([symbol] * len(rows), dtype=object)],
            names=["timestamp", "symbol"],
        )
        parts.append(rows)
    data = pd.concat(parts)
    # The per-symbol copies (and the heap they fragmented) go before the sort makes another
    # copy of the panel: the build's peak was the parts, the concatenation and the sorted copy.
    parts.clear()
    trim_heap()
    data = data.sort_index(level=["timestamp", "symbol"])
    if data.empty:
        raise DataError("no labelled rows: every symbol is shorter than warm-up plus horizon")
    return TrainingSet(
        features=data.drop(columns=["__label", "__end", "__fwd"]),
        labels=data["__label"].astype(np.int64),
        label_end_times=data["__end"],
        forward_returns=data["__fwd"],
    )
