"""The latest target weights of a built-in rule strategy in O(new bars) per call (issue #13).

:class:`LiveRuleWeights` gives what ``latest_weights`` (the rule's ``features`` and ``weights``
over the whole history, the last row) gives, bit for bit, without recomputing the history:

* :class:`~aistock_actors.core.strategy.rules.AutocorrelationStrategy`: a carry per symbol
  (the last log close and residual, the three exponentially weighted means' running sums in
  pandas' own recursion, the hysteresis position), advanced over the bars newer than the last
  call's newest timestamp. It is keyed by the model id, the symbols and, per symbol, the number
  of bars up to that timestamp and the last one's close: a different model, a new or missing
  symbol, a late bar arriving at or before that timestamp, or a changed last close rebuilds it
  from the whole history (also the first call after a restart: it lives in memory only).
* :class:`~aistock_actors.core.strategy.rules.TimeSeriesMomentum`: no carry; the last
  ``lookback + 1`` timestamps of the universe hold everything its newest weight reads.

Any other strategy (``SmaCross``, whose pandas rolling means accumulate over the whole history,
and every user strategy) gets None: the caller runs the full computation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aistock_actors.core.strategy.rules import (
    AutocorrelationFit,
    AutocorrelationStrategy,
    TimeSeriesMomentum,
    cross_section_mean,
    hysteresis_step,
)
from aistock_actors.core.trading.cycle import BarArrays

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_CLOSE = 3


def union_panel(
    arrays: Mapping[str, BarArrays], starts: Mapping[str, int]
) -> tuple[IntArray, FloatArray]:
    """The sorted union of the symbols' timestamps from ``starts[symbol]`` on, and the
    ``timestamps x symbols`` closes there (NaN where a symbol has no bar), symbols sorted."""
    symbols = sorted(arrays)
    parts = [arrays[s][0][starts[s]:] for s in symbols]
    times = np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)
    panel = np.full((len(times), len(symbols)), np.nan)
    for j, symbol in enumerate(symbols):
        ts, values = arrays[symbol]
        start = starts[symbol]
        panel[np.searchsorted(times, ts[start:]), j] = values[start:, _CLOSE]
    return times.astype(np.int64), panel


class EwmCarry:
    """pandas' ``ewm(halflife=h, min_periods=m).mean()`` (adjust, NaNs kept in the decay), one
    row at a time over columns, with the same floating-point operations in the same order."""

    def __init__(self, n: int, halflife: int, min_periods: int) -> None:
        decay = 1 - np.exp(np.log(0.5) / halflife)  # pandas' centre of mass of a half-life
        alpha = 1.0 / (1.0 + float(1 / decay - 1))
        self.factor = 1.0 - alpha
        self.min_periods = max(min_periods, 1)
        self.weighted = np.full(n, np.nan)
        self.old_wt = np.ones(n)
        self.nobs = np.zeros(n, dtype=np.int64)

    def step(self, cur: FloatArray) -> FloatArray:
        """The mean after the row ``cur`` (NaN before ``min_periods`` observations)."""
        seen = ~np.isnan(cur)
        self.nobs += seen
        known = ~np.isnan(self.weighted)
        self.old_wt = np.where(known, self.old_wt * self.factor, self.old_wt)
        update = known & seen
        with np.errstate(invalid="ignore"):
            moved = update & (self.weighted != cur)
            blended = (self.old_wt * self.weighted + cur) / (self.old_wt + 1.0)
        weighted = np.where(moved, blended, self.weighted)
        self.old_wt = np.where(update, self.old_wt + 1.0, self.old_wt)
        self.weighted = np.where(~known & seen, cur, weighted)
        return np.where(self.nobs >= self.min_periods, self.weighted, np.nan)


@dataclass
class _AutocorrelationCarry:
    """Everything one more bar of :class:`AutocorrelationStrategy` needs from the bars before."""

    key: tuple[str, tuple[str, ...], AutocorrelationStrategy]
    last_ts: int
    seen: dict[str, int]
    """Bars of each symbol up to ``last_ts``."""
    last_close: dict[str, float]
    last_log: FloatArray
    """Log close of each symbol at ``last_ts`` (NaN without a bar there)."""
    last_residual: FloatArray
    means: tuple[EwmCarry, EwmCarry, EwmCarry]
    """EW means of residual x lagged, residual^2 and lagged^2."""
    position: FloatArray

    def advance(self, strategy: AutocorrelationStrategy, log_close: FloatArray) -> None:
        """Move over the rows of ``log_close`` (``new bars x symbols``), oldest first."""
        entry = strategy.entry_bps / 1e4
        full = strategy.full_at * entry
        cross, power_now, power_lag = self.means
        for row in log_close:
            log_ret = row - self.last_log
            residual = log_ret - cross_section_mean(log_ret[None, :])[0]
            lagged = self.last_residual
            power = power_now.step(residual * residual) * power_lag.step(lagged * lagged)
            mean_cross = cross.step(residual * lagged)
            with np.errstate(invalid="ignore", divide="ignore"):
                autocorr = mean_cross / np.sqrt(np.where(power > 0.0, power, np.nan))
                forecast = np.where(np.isfinite(autocorr), residual * autocorr, np.nan)
            self.position = hysteresis_step(self.position, forecast, entry, 0.0, full)
            self.last_log, self.last_residual = row, residual


class LiveRuleWeights:
    """Latest weights of the active built-in rule, carried between calls (module docstring).

    One per paper trader, in memory only. :meth:`latest` returns None for a strategy it does not
    cover.
    """

    def __init__(self) -> None:
        self._carry: _AutocorrelationCarry | None = None
        self.rebuilds = 0
        """How many times the carry was built from the whole history (first call included)."""

    def latest(
        self, model_id: str, strategy: object, state: object, arrays: Mapping[str, BarArrays]
    ) -> dict[str, float] | None:
        """``{symbol: weight}`` at the newest timestamp of ``arrays`` (flat symbols included),
        or None when ``strategy`` is not covered."""
        nonempty = {s: a for s, a in arrays.items() if len(a[0])}
        if isinstance(strategy, TimeSeriesMomentum):
            return momentum_latest(strategy, nonempty)
        if not isinstance(strategy, AutocorrelationStrategy):
            return None
        if not nonempty:
            return {}
        position = self._autocorrelation(model_id, strategy, nonempty)
        if isinstance(state, AutocorrelationFit) and not state.trade:
            position = np.zeros_like(position)
        return {s: float(w) for s, w in zip(sorted(nonempty), position, strict=True)}

    def _autocorrelation(
        self, model_id: str, strategy: AutocorrelationStrategy, arrays: Mapping[str, BarArrays]
    ) -> FloatArray:
        symbols = tuple(sorted(arrays))
        key = (model_id, symbols, strategy)
        carry = self._carry
        if carry is None or carry.key != key or not _same_history(carry, arrays):
            carry = self._carry = _fresh_carry(key, strategy, len(symbols))
            self.rebuilds += 1
        times, closes = union_panel(arrays, carry.seen)
        keep = times > carry.last_ts
        times, closes = times[keep], closes[keep]
        if len(times):
            carry.advance(strategy, np.log(closes))
            carry.last_ts = int(times[-1])
            for symbol in symbols:
                ts, values = arrays[symbol]
                carry.seen[symbol] = len(ts)
                carry.last_close[symbol] = float(values[-1, _CLOSE])
        return carry.position.copy()


def _fresh_carry(
    key: tuple[str, tuple[str, ...], AutocorrelationStrategy],
    strategy: AutocorrelationStrategy,
    n: int,
) -> _AutocorrelationCarry:
    symbols = key[1]
    means = tuple(EwmCarry(n, strategy.halflife, 2 * strategy.halflife) for _ in range(3))
    return _AutocorrelationCarry(
        key=key,
        last_ts=int(np.iinfo(np.int64).min),
        seen=dict.fromkeys(symbols, 0),
        last_close={},
        last_log=np.full(n, np.nan),
        last_residual=np.full(n, np.nan),
        means=(means[0], means[1], means[2]),
        position=np.zeros(n),
    )


def _same_history(carry: _AutocorrelationCarry, arrays: Mapping[str, BarArrays]) -> bool:
    """Whether each symbol still has exactly the bars the carry saw up to ``last_ts``."""
    for symbol, (ts, values) in arrays.items():
        seen = carry.seen[symbol]
        if int(np.searchsorted(ts, carry.last_ts, side="right")) != seen:
            return False
        if seen and float(values[seen - 1, _CLOSE]) != carry.last_close.get(symbol):
            return False
    return True


def momentum_latest(
    strategy: TimeSeriesMomentum, arrays: Mapping[str, BarArrays]
) -> dict[str, float]:
    """The newest weights of time-series momentum from the last ``lookback + 1`` timestamps.

    Each of the universe's last ``lookback + 1`` timestamps is among some symbol's last
    ``lookback + 1`` bars, so those tails hold the panel's last rows exactly.
    """
    if not arrays:
        return {}
    span = strategy.lookback + 1
    starts = {s: max(len(ts) - span, 0) for s, (ts, _) in arrays.items()}
    times, closes = union_panel(arrays, starts)
    if len(times) <= strategy.lookback:
        return dict.fromkeys(sorted(arrays), 0.0)
    log_close = np.log(closes[-span:])
    momentum = log_close[-1] - log_close[0]
    weights = np.nan_to_num(np.sign(momentum), nan=0.0)
    return {s: float(w) for s, w in zip(sorted(arrays), weights, strict=True)}
