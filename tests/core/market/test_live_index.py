"""``LiveMarketIndex`` gives, cycle after cycle, exactly the equal-weight index and the regime
that a rebuild from the whole close panel gives, while computing only the new bars' rows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from aistock_actors.core.market import live_index
from aistock_actors.core.market.live_index import BarArrays, LiveMarketIndex
from aistock_actors.core.market.regimes import equal_weight_index
from aistock_actors.core.risk.allocator import latest_regime
from aistock_actors.core.trading.cycle import close_panel

DAY = 86_400 * 10**9


def _history(rng: np.random.Generator, times: NDArray[np.int64]) -> BarArrays:
    closes = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, len(times))))
    closes[rng.random(len(times)) < 0.02] = 0.0  # an unusable price now and then
    values = np.repeat(closes[:, None], 5, axis=1)
    return times.astype(np.int64), values


class _Universe:
    """Histories that grow as a store's do; some steps break the "only grew" rule."""

    def __init__(self, seed: int, symbols: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.now = 200
        self.arrays: dict[str, BarArrays] = {}
        for i in range(symbols):
            start = int(self.rng.integers(0, 150))
            self.arrays[f"S{i:03d}"] = _history(self.rng, np.arange(start, self.now) * DAY)

    def step(self, kind: str, bars: int) -> None:
        rng = self.rng
        if kind == "grow":  # every symbol, or some (a late one catches up later)
            for symbol, (ts, values) in list(self.arrays.items()):
                if rng.random() < 0.8:
                    new_ts = np.arange(self.now, self.now + bars) * DAY
                    last = float(values[-1, 3]) or 50.0
                    _, more = _history(rng, new_ts)
                    self.arrays[symbol] = (np.concatenate([ts, new_ts]),
                                           np.concatenate([values, more * last / 50.0]))
            self.now += bars
        elif kind == "late":  # a lagging symbol's bar at a known time: a panel row changes
            newest = max(int(ts[-1]) for ts, _ in self.arrays.values())
            behind = [s for s, (ts, _) in sorted(self.arrays.items()) if ts[-1] < newest]
            if behind:
                ts, values = self.arrays[behind[0]]
                self.arrays[behind[0]] = (np.append(ts, newest), np.vstack([values, values[-1:]]))
        elif kind == "new_symbol":
            self.arrays[f"N{len(self.arrays):03d}"] = _history(
                rng, np.arange(self.now - 30, self.now) * DAY)
        elif kind == "drop":  # an operator's --drop-bars, then the daemon restarted
            symbol = sorted(self.arrays)[-1]
            ts, values = self.arrays[symbol]
            self.arrays[symbol] = (ts[:-3], values[:-3])


def _check(live: LiveMarketIndex, arrays: dict[str, BarArrays]) -> None:
    panel = close_panel(arrays)
    want = equal_weight_index(panel) if panel.size else np.empty(0)
    assert np.array_equal(live.index(arrays), want, equal_nan=True)
    assert live.regime(arrays) == latest_regime(panel)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 12),
    st.lists(st.tuples(st.sampled_from(["grow", "grow", "grow", "late", "new_symbol", "drop"]),
                       st.integers(1, 4)), max_size=12),
)
def test_the_live_index_and_regime_equal_a_rebuild_bit_for_bit(
    seed: int, symbols: int, steps: list[tuple[str, int]]
) -> None:
    universe, live = _Universe(seed, symbols), LiveMarketIndex()
    _check(live, universe.arrays)
    for kind, bars in steps:
        universe.step(kind, bars)
        _check(live, universe.arrays)


def test_500_symbols_over_60_cycles_extend_without_a_rebuild(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The replay's case: one bar per symbol per cycle; wide rows (500 symbols) take numpy's
    blocked summation, which the rows of an extension must reproduce exactly."""
    universe, live = _Universe(7, 500), LiveMarketIndex()
    rebuilds = []
    real = live_index._rebuild

    def counted(items: list[tuple[str, NDArray[np.int64], NDArray[np.float64]]]) -> object:
        rebuilds.append(len(items))
        return real(items)

    monkeypatch.setattr(live_index, "_rebuild", counted)
    _check(live, universe.arrays)
    for _ in range(60):
        universe.step("grow", 1)
        _check(live, universe.arrays)
    assert rebuilds == [500]  # the first cycle only
    universe.step("late", 1)
    _check(live, universe.arrays)
    assert rebuilds == [500, 500]


def test_no_bars_is_an_unknown_regime() -> None:
    live = LiveMarketIndex()
    empty: dict[str, BarArrays] = {"A": (np.empty(0, np.int64), np.empty((0, 5)))}
    assert live.regime({}) == live.regime(empty) == "unknown"
    assert live.index(empty).size == 0
