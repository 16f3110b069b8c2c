"""LiveFeatures: the latest feature rows from a tail and a running median equal latest_features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from aistock_actors.core.model.features import FEATURE_NAMES, latest_features
from aistock_actors.core.model.live_features import TAIL_BARS, LiveFeatures
from aistock_actors.errors import DataError

COLUMNS = ["open", "high", "low", "close", "volume"]
RTOL, ATOL = 1e-9, 1e-9
"""pandas updates its rolling windows online over all history, LiveFeatures takes each window in
one pass: equal up to rounding (observed: <= 1e-12)."""


def series(draw: st.DrawFn, n: int) -> NDArray[np.float64]:
    """Random bars: random-walk closes with flat spells, zero spans and volumes, NaN cells."""
    steps = draw(st.lists(st.sampled_from([0.0, 0.0, 0.01, -0.01, 0.02, -0.03, 0.004, -0.007]) |
                          st.floats(-0.05, 0.05), min_size=n, max_size=n))
    close = 50.0 * np.exp(np.cumsum(steps))
    spread = np.array(draw(st.lists(st.sampled_from([0.0, 0.01, 0.003]) | st.floats(0.0, 0.05),
                                    min_size=n, max_size=n)))
    volume = np.array(draw(st.lists(st.sampled_from([0.0, 100.0, 5e5]) | st.floats(0.0, 1e7),
                                    min_size=n, max_size=n)))
    values = np.column_stack([close, close * (1 + spread), close * (1 - spread / 2), close, volume])
    holes = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 4)), max_size=4))
    for row, col in holes:
        values[row, col] = np.nan
    return values


@st.composite
def universes(draw: st.DrawFn) -> dict[str, NDArray[np.float64]]:
    sizes = draw(st.lists(st.integers(1, 260), min_size=1, max_size=3))
    return {f"S{k}": series(draw, n) for k, n in enumerate(sizes)}


def timestamps(n: int) -> NDArray[np.int64]:
    index = pd.date_range("2020-01-01", periods=n, freq="B", tz="UTC")
    return np.asarray(index.asi8, dtype=np.int64)


def frame(values: NDArray[np.float64]) -> pd.DataFrame:
    index = pd.DatetimeIndex(pd.to_datetime(timestamps(len(values)), utc=True), name="timestamp")
    return pd.DataFrame(values, index=index, columns=COLUMNS)


def assert_same(live: pd.DataFrame, reference: pd.DataFrame) -> None:
    assert list(live.index) == list(reference.index)
    assert list(live.columns) == list(FEATURE_NAMES)
    np.testing.assert_allclose(live.to_numpy(), reference.to_numpy(), rtol=RTOL, atol=ATOL)


@settings(max_examples=60, deadline=None)
@given(universes())
def test_live_features_equal_latest_features_on_the_full_history(
    data: dict[str, NDArray[np.float64]],
) -> None:
    bars = {s: (timestamps(len(v)), v) for s, v in data.items()}
    expected = latest_features({s: frame(v) for s, v in data.items()})
    assert_same(LiveFeatures().latest(bars), expected)


def test_a_flat_spell_after_moves_gives_the_same_defined_row_in_both() -> None:
    """20 equal closes after moving prices: pandas' rolling std is not exactly 0 there (6e-8),
    which once made the batch ``boll_pos_20`` 0.0 and the live one NaN (the symbol dropped out
    of the live rows). A zero-width band, a flat volume and flat returns give defined values."""
    steps = np.r_[np.tile([0.01, -0.03, 0.02, 0.0, -0.007], 20), np.zeros(30)]
    close = 50.0 * np.exp(np.cumsum(steps))
    values = np.column_stack([close, close, close, close, np.zeros(len(close))])
    expected = latest_features({"S0": frame(values)})
    assert list(expected.index) == ["S0"]
    assert expected.loc["S0", "boll_pos_20"] == 0.0
    assert expected.loc["S0", "vol_20"] == 0.0 and expected.loc["S0", "autocorr_20"] == 0.0
    assert_same(LiveFeatures().latest({"S0": (timestamps(len(values)), values)}), expected)


@settings(max_examples=15, deadline=None)
@given(universes(), st.lists(st.integers(1, 5), min_size=1, max_size=6))
def test_bars_fed_a_few_at_a_time_give_the_same_rows_as_a_fresh_start(
    data: dict[str, NDArray[np.float64]], chunks: list[int]
) -> None:
    live = LiveFeatures()
    longest = max(len(v) for v in data.values())
    shown = max(1, longest - sum(chunks))
    for step in [0, *chunks]:
        shown = min(longest, shown + step)
        cut = {s: v[:shown] for s, v in data.items()}
        bars = {s: (timestamps(len(v)), v) for s, v in cut.items()}
        expected = latest_features({s: frame(v) for s, v in cut.items()})
        got = live.latest(bars)
        assert_same(got, expected)
        fresh = LiveFeatures().latest(bars)  # a restarted trader: bit for bit the same rows
        assert list(fresh.index) == list(got.index)
        assert np.array_equal(fresh.to_numpy(), got.to_numpy(), equal_nan=True)
    assert live.rebuilds == len(data)  # one rebuild per symbol, then only the new bars


def test_a_rewritten_history_is_noticed_and_rebuilt() -> None:
    rng = np.random.default_rng(4)
    close = 20 * np.exp(np.cumsum(rng.normal(0, 0.02, 200)))
    values = np.column_stack([close, close * 1.01, close * 0.99, close, np.full(200, 1e5)])
    live = LiveFeatures()
    live.latest({"A": (timestamps(200), values)})
    changed = values.copy()
    changed[150:] *= 1.5  # the same timestamps, other prices (dropped and re-ingested)
    got = live.latest({"A": (timestamps(200), changed)})
    assert live.rebuilds == 2
    assert_same(got, latest_features({"A": frame(changed)}))
    shorter = live.latest({"A": (timestamps(180), changed[:180])})
    assert live.rebuilds == 3
    assert_same(shorter, latest_features({"A": frame(changed[:180])}))


def test_the_expanding_median_reaches_back_beyond_the_tail() -> None:
    rng = np.random.default_rng(5)
    calm, wild = rng.normal(0, 0.001, 300), rng.normal(0, 0.05, 100)
    close = 20 * np.exp(np.cumsum(np.concatenate([wild, calm])))
    values = np.column_stack([close, close, close, close, np.full(400, 1e5)])
    got = LiveFeatures().latest({"A": (timestamps(400), values)})
    reference = latest_features({"A": frame(values)})
    assert len(values) > 4 * TAIL_BARS
    assert_same(got, reference)
    assert got.loc["A", "vol_regime"] == pytest.approx(reference.loc["A", "vol_regime"], rel=1e-12)


@pytest.mark.parametrize(("row", "col", "message"), [
    (190, 3, "non-positive price"), (195, 4, "negative value")])
def test_a_bad_new_bar_is_refused_with_its_symbol(row: int, col: int, message: str) -> None:
    values = np.column_stack([np.full(200, 10.0 + 0.0)] * 4 + [np.full(200, 1e5)])
    values[:, 3] += np.arange(200) * 0.01
    live = LiveFeatures()
    live.latest({"ABC": (timestamps(180), values[:180])})
    values[row, col] = -1.0
    with pytest.raises(DataError, match=f"ABC: .*{message}"):
        live.latest({"ABC": (timestamps(200), values)})


def test_no_bars_give_an_empty_frame_with_the_feature_columns() -> None:
    got = LiveFeatures().latest({"A": (np.empty(0, np.int64), np.empty((0, 5)))})
    assert got.empty and list(got.columns) == list(FEATURE_NAMES)
