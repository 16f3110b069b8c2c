"""Synthetic bars for model tests: AR(1) log returns with small wicks, reproducible by seed."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from aistock_actors.core.trading.cycle import BarArrays


def ar1_frames(n_symbols: int, n_bars: int, phi: float, seed: int) -> dict[str, pd.DataFrame]:
    """Bars whose log returns follow r_t = phi * r_{t-1} + noise (phi = 0 is a random walk)."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2018-01-01", periods=n_bars, freq="B", tz="UTC")
    frames = {}
    for k in range(n_symbols):
        noise = rng.normal(0.0, 0.01, n_bars)
        returns = np.empty(n_bars)
        returns[0] = noise[0]
        for t in range(1, n_bars):
            returns[t] = phi * returns[t - 1] + noise[t]
        close = 100.0 * np.exp(np.cumsum(returns))
        wick = np.abs(rng.normal(0.0, 0.004, (2, n_bars)))
        frames[f"S{k:02d}"] = pd.DataFrame(
            {
                "open": close,
                "high": close * np.exp(wick[0]),
                "low": close * np.exp(-wick[1]),
                "close": close,
                "volume": rng.integers(10_000, 100_000, n_bars).astype(float),
            },
            index=index,
        )
    return frames


DAY_NS = 86_400 * 10**9


def bar_arrays(
    rows: Mapping[str, list[tuple[int, float, float, float]]],
) -> dict[str, BarArrays]:
    """``{symbol: [(day, open, close, volume), ...]}`` -> bar-store arrays (high and low from
    the open and close)."""
    out: dict[str, BarArrays] = {}
    for symbol, bars in rows.items():
        ts = np.array([d * DAY_NS for d, *_ in bars], dtype=np.int64)
        values = np.array([[o, max(o, c), min(o, c), c, v] for _, o, c, v in bars], dtype=float)
        out[symbol] = (ts, values.reshape(-1, 5))
    return out
