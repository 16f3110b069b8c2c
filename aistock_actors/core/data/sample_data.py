"""Deterministic generator of realistic daily OHLCV bars for demos, tests and benchmarks.

The model, per business day ``t`` and symbol ``i``:

* a market volatility regime (calm / volatile), a hidden Markov chain shared by all symbols, with
  mean durations of about 100 and 35 bars;
* a per-symbol drift regime (trending / mean-reverting), a hidden Markov chain with mean duration
  of about 70 bars; a trending spell draws a drift sign and gives the idiosyncratic return a
  positive lag-1 autocorrelation, a mean-reverting spell a negative one;
* return ``r = beta_i * market + drift + x``, with fat-tailed (Student-t) shocks whose scale grows
  in the volatile regime, and ``x`` the AR(1) idiosyncratic component.

So symbols are correlated through the market factor, and there is weak, regime-dependent
predictability (return autocorrelation, volatility clustering) that a simple model can find, but
nothing trivial: the regimes are hidden and the signal is small against the noise. Prices are
rounded to cents (1/10000 below 1.0), kept positive and intraday-consistent; volume is log-normal,
higher in the volatile regime and on large moves.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from aistock_actors.core.data.bars import bars_frame, format_csv

CALM, VOLATILE = 0, 1
"""Values of ``Universe.volatility_regime``."""

TRENDING, MEAN_REVERTING = 0, 1
"""Values of ``Universe.drift_regime``."""

_VOL_STAY = np.array([0.99, 0.972])
_DRIFT_STAY = np.array([0.986, 0.986])
_MARKET_SIGMA = np.array([0.008, 0.018])
_IDIO_SCALE = np.array([1.0, 1.9])
_PHI = np.array([0.22, -0.2])
_TREND_DRIFT = 0.0006
_T_DOF = 5.0


@dataclass(frozen=True)
class Universe:
    """Generated bars plus the hidden regimes that produced them (for tests and research)."""

    frames: dict[str, pd.DataFrame]
    volatility_regime: NDArray[np.int64]
    """Shape ``(n_bars,)``: CALM or VOLATILE, shared by all symbols."""
    drift_regime: NDArray[np.int64]
    """Shape ``(n_bars, n_symbols)``: TRENDING or MEAN_REVERTING, per symbol."""


def symbol_name(i: int) -> str:
    """Return the generated name of the ``i``-th symbol (``SYM000``, ``SYM001``, ...)."""
    return f"SYM{i:03d}"


def generate_universe(
    n_symbols: int, n_bars: int, seed: int, start: str = "2015-01-02"
) -> dict[str, pd.DataFrame]:
    """Return ``{symbol: bars}`` on business days from ``start``; identical for the same seed."""
    return simulate_universe(n_symbols, n_bars, seed, start).frames


def simulate_universe(
    n_symbols: int, n_bars: int, seed: int, start: str = "2015-01-02"
) -> Universe:
    """Like ``generate_universe`` but also return the hidden regimes."""
    if n_symbols < 1 or n_bars < 1:
        raise ValueError(f"need at least one symbol and one bar, got {n_symbols} x {n_bars}")
    rng = np.random.default_rng(seed)
    days = pd.bdate_range(start=start, periods=n_bars, tz="UTC").as_unit("ns")
    timestamps = np.asarray(days.asi8, dtype=np.int64)
    vol = _markov_chain(rng, _VOL_STAY, n_bars, 1)[:, 0]
    drift_regime = _markov_chain(rng, _DRIFT_STAY, n_bars, n_symbols)
    returns, sigma = _returns(rng, vol, drift_regime)
    frames: dict[str, pd.DataFrame] = {}
    for i in range(n_symbols):
        values = _ohlcv(rng, returns[:, i], sigma[:, i], vol)
        frames[symbol_name(i)] = bars_frame(timestamps, values)
    return Universe(frames=frames, volatility_regime=vol, drift_regime=drift_regime)


def write_universe_csvs(out_dir: Path, frames: dict[str, pd.DataFrame]) -> list[Path]:
    """Write ``<SYMBOL>.csv`` files (``timestamp,open,high,low,close,volume``, ISO dates).

    Each file appears whole (temp file + rename), so a concurrent reader never sees half of it.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for symbol in sorted(frames):
        path = out_dir / f"{symbol}.csv"
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{symbol}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(format_csv(frames[symbol]).encode("utf-8"))
        os.replace(tmp, path)
        written.append(path)
    return written


def append_universe_bar(out_dir: Path, frames: dict[str, pd.DataFrame], position: int) -> None:
    """Append bar ``position`` of every frame to its ``<SYMBOL>.csv`` in place, one line each,
    as a live feed grows its files (the benches' daemons: a new bar per cycle)."""
    for symbol in sorted(frames):
        line = format_csv(frames[symbol].iloc[position : position + 1]).split("\n", 1)[1]
        with open(Path(out_dir) / f"{symbol}.csv", "a", encoding="utf-8") as handle:
            handle.write(line)


def _markov_chain(
    rng: np.random.Generator, stay: NDArray[np.float64], n_bars: int, n_chains: int
) -> NDArray[np.int64]:
    """Two-state chains: ``stay[s]`` is the probability of remaining in state ``s`` for a bar."""
    states = np.empty((n_bars, n_chains), dtype=np.int64)
    states[0] = rng.integers(0, 2, size=n_chains)
    draws = rng.random((n_bars, n_chains))
    for t in range(1, n_bars):
        previous = states[t - 1]
        states[t] = np.where(draws[t] < stay[previous], previous, 1 - previous)
    return states


def _shocks(rng: np.random.Generator, shape: tuple[int, ...]) -> NDArray[np.float64]:
    """Unit-variance fat-tailed shocks."""
    scale = np.sqrt((_T_DOF - 2.0) / _T_DOF)
    return np.asarray(rng.standard_t(_T_DOF, size=shape) * scale, dtype=np.float64)


def _lookup(table: NDArray[np.float64], states: NDArray[np.int64]) -> NDArray[np.float64]:
    """Per-state parameter for each entry of ``states``."""
    return np.asarray(table[states], dtype=np.float64)


def _returns(
    rng: np.random.Generator, vol: NDArray[np.int64], drift_regime: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Daily log returns and their scale, shape ``(n_bars, n_symbols)``."""
    n_bars, n_symbols = int(drift_regime.shape[0]), int(drift_regime.shape[1])
    beta = rng.uniform(0.6, 1.4, size=n_symbols)
    idio_sigma = rng.uniform(0.008, 0.016, size=n_symbols)
    market_sigma = _lookup(_MARKET_SIGMA, vol)
    market = 0.0003 + market_sigma * _shocks(rng, (n_bars,))
    scale = idio_sigma[None, :] * _lookup(_IDIO_SCALE, vol)[:, None]
    shocks = scale * _shocks(rng, (n_bars, n_symbols))
    signs = rng.choice(np.array([-1.0, 1.0]), size=(n_bars, n_symbols))
    trending = drift_regime == TRENDING
    entering = trending & np.vstack([np.ones((1, n_symbols), bool), ~trending[:-1]])
    drift = np.zeros((n_bars, n_symbols))
    sign = signs[0].copy()
    x = np.zeros((n_bars, n_symbols))
    phi = _lookup(_PHI, drift_regime)
    for t in range(n_bars):
        sign = np.where(entering[t], signs[t], sign)
        drift[t] = np.where(trending[t], sign * _TREND_DRIFT, 0.0)
        x[t] = (phi[t] * x[t - 1] if t else 0.0) + shocks[t]
    returns = beta[None, :] * market[:, None] + drift + x
    sigma = np.sqrt((beta[None, :] * market_sigma[:, None]) ** 2 + scale**2)
    return returns, sigma


def _ohlcv(
    rng: np.random.Generator,
    returns: NDArray[np.float64],
    sigma: NDArray[np.float64],
    vol: NDArray[np.int64],
) -> NDArray[np.float64]:
    """Intraday-consistent, rounded OHLCV rows for one symbol's return path."""
    n_bars = returns.shape[0]
    start_price = float(np.exp(rng.normal(np.log(60.0), 0.8)))
    close = start_price * np.exp(np.cumsum(returns))
    previous_close = np.concatenate([[start_price], close[:-1]])
    open_ = previous_close * np.exp(0.3 * sigma * rng.standard_normal(n_bars))
    high = np.maximum(open_, close) * np.exp(0.6 * sigma * np.abs(rng.standard_normal(n_bars)))
    low = np.minimum(open_, close) * np.exp(-0.6 * sigma * np.abs(rng.standard_normal(n_bars)))
    open_, high, low, close = (_round_price(p) for p in (open_, high, low, close))
    high = np.maximum.reduce([high, open_, close])
    low = np.minimum.reduce([low, open_, close])
    log_volume = (
        rng.normal(13.0, 1.0)
        + 0.5 * vol
        + 0.25 * np.abs(returns) / sigma
        + 0.35 * rng.standard_normal(n_bars)
    )
    volume = np.round(np.exp(log_volume))
    return np.column_stack([open_, high, low, close, volume]).astype(np.float64)


def _round_price(price: NDArray[np.float64]) -> NDArray[np.float64]:
    """Round to cents (to 1/10000 below 1.0); never below 0.0001."""
    rounded = np.where(price >= 1.0, np.round(price, 2), np.round(price, 4))
    return np.maximum(rounded, 0.0001)
