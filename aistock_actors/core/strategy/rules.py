"""Built-in rule strategies: short-term autocorrelation, time-series momentum and an SMA cross.

Each follows :class:`~aistock_actors.core.strategy.protocol.Strategy`, learns nothing (``fit``
returns ``None``) and holds a position until its rule says otherwise, so a position is never
resized while it is held. Their parameters are fixed in advance (pre-registered), never tuned on
the data they are scored on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from aistock_actors.errors import DataError

FloatArray = npt.NDArray[np.float64]


def close_panel(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """``timestamps x symbols`` closes (NaN where a symbol has no bar)."""
    if not frames:
        raise DataError("no symbols to build strategy features from")
    return pd.DataFrame({s: frames[s]["close"].astype(float) for s in sorted(frames)}).sort_index()


def stack(columns: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """``timestamps x symbols`` feature panels -> one frame indexed by ``(timestamp, symbol)``."""
    parts = {name: panel.stack(future_stack=True) for name, panel in columns.items()}
    frame = pd.DataFrame(parts)
    frame.index = frame.index.set_names(["timestamp", "symbol"])
    return frame.sort_index()


def unstack(features: pd.DataFrame, column: str) -> pd.DataFrame:
    """One feature back to ``timestamps x symbols``."""
    return features[column].unstack("symbol").sort_index()


@dataclass(frozen=True, kw_only=True)
class AutocorrelationStrategy:
    """Trade the next bar's expected idiosyncratic move under the recent lag-1 autocorrelation.

    The residual return (the symbol's log return minus the cross-section's mean) times its own
    trailing ``window``-bar lag-1 autocorrelation forecasts the next residual move: positive
    autocorrelation (a trending spell) continues the move, negative (mean-reverting) reverses it.
    A position opens when the forecast exceeds ``entry_bps`` (well above a round trip's cost) and
    is held until the forecast turns against it (hysteresis: holding costs nothing, each entry
    and exit does).
    """

    window: int = 40
    entry_bps: float = 40.0
    horizon: int = 1
    name: str = "autocorrelation"

    def features(self, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
        log_ret = pd.DataFrame(np.log(close_panel(frames))).diff()
        residual = log_ret.sub(log_ret.mean(axis=1), axis=0)
        autocorr = residual.rolling(self.window, min_periods=self.window).corr(residual.shift(1))
        forecast = (residual * autocorr).where(np.isfinite(autocorr))
        return stack({"forecast": forecast})

    def fit(self, features: pd.DataFrame, forward_returns: pd.Series) -> None:
        return None

    def weights(self, features: pd.DataFrame, state: object) -> pd.DataFrame:
        forecast = unstack(features, "forecast")
        held = hysteresis(forecast.to_numpy(dtype=np.float64), self.entry_bps / 1e4, 0.0)
        return pd.DataFrame(held, index=forecast.index, columns=forecast.columns)


def sign_positions(panel: pd.DataFrame) -> pd.DataFrame:
    """-1 / 0 / +1 positions from the sign of a ``timestamps x symbols`` panel (NaN -> flat)."""
    values = np.sign(panel.to_numpy(dtype=np.float64))
    return pd.DataFrame(np.nan_to_num(values, nan=0.0), index=panel.index, columns=panel.columns)


def hysteresis(forecast: FloatArray, entry: float, exit_: float) -> FloatArray:
    """Positions (-1, 0, +1) from a forecast: enter when ``|forecast| > entry``, on that side;
    exit when the held side's forecast falls to ``exit_`` or below. NaN forecasts hold."""
    out = np.zeros_like(forecast)
    current = np.zeros(forecast.shape[1])
    for t in range(forecast.shape[0]):
        row = forecast[t]
        known = np.isfinite(row)
        value = np.where(known, row, 0.0)
        enter = known & (np.abs(value) > entry)
        leave = known & ~enter & (current * value <= exit_)
        current = np.where(enter, np.sign(value), np.where(leave, 0.0, current))
        out[t] = current
    return out


@dataclass(frozen=True, kw_only=True)
class TimeSeriesMomentum:
    """Long a symbol whose ``lookback``-bar return is positive, short when it is negative."""

    lookback: int = 60
    horizon: int = 20
    name: str = "time_series_momentum"

    def features(self, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
        log_close = pd.DataFrame(np.log(close_panel(frames)))
        return stack({"momentum": log_close - log_close.shift(self.lookback)})

    def fit(self, features: pd.DataFrame, forward_returns: pd.Series) -> None:
        return None

    def weights(self, features: pd.DataFrame, state: object) -> pd.DataFrame:
        return sign_positions(unstack(features, "momentum"))


@dataclass(frozen=True, kw_only=True)
class SmaCross:
    """Long while the ``fast`` simple moving average is above the ``slow`` one, else short."""

    fast: int = 10
    slow: int = 50
    horizon: int = 5
    name: str = "sma_cross"

    def features(self, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
        close = close_panel(frames)
        fast = close.rolling(self.fast, min_periods=self.fast).mean()
        slow = close.rolling(self.slow, min_periods=self.slow).mean()
        return stack({"sma_gap": pd.DataFrame(np.log(fast / slow))})

    def fit(self, features: pd.DataFrame, forward_returns: pd.Series) -> None:
        return None

    def weights(self, features: pd.DataFrame, state: object) -> pd.DataFrame:
        return sign_positions(unstack(features, "sma_gap"))


BUILT_IN_RULES: tuple[type, ...] = (AutocorrelationStrategy, TimeSeriesMomentum, SmaCross)
"""The rule strategies of every training cycle's candidate set, with their default parameters."""
