"""``close_panel`` (the RiskGovernor's regime input) places closes exactly as pandas' aligned
frame did, for one shared clock and for ragged, gapped or disjoint histories."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.core.trading.cycle import BarArrays, close_panel


def pandas_panel(arrays: Mapping[str, BarArrays]) -> npt.NDArray[np.float64]:
    """The reference: the implementation before the numpy placement (one Series per symbol)."""
    columns = {
        s: pd.Series(v[:, 3], index=pd.Index(ts)) for s, (ts, v) in arrays.items() if len(ts)
    }
    if not columns:
        return np.empty((0, 0), dtype=np.float64)
    frame = pd.DataFrame(columns).sort_index()
    return np.asarray(frame.to_numpy(dtype=np.float64, na_value=np.nan))


def bars(times: list[int], seed: int) -> BarArrays:
    ts = np.array(sorted(set(times)), dtype=np.int64)
    values = np.random.default_rng(seed).uniform(1.0, 500.0, size=(len(ts), 5))
    return ts, values


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.integers(-50, 400), max_size=60), max_size=7), st.booleans())
def test_the_panel_is_pandas_aligned_frame_bit_for_bit(
    symbol_times: list[list[int]], shared: bool
) -> None:
    if shared and symbol_times:  # the common case: every symbol on one clock
        symbol_times = [symbol_times[0]] * len(symbol_times)
    arrays = {f"S{i}": bars(times, i) for i, times in enumerate(symbol_times)}
    got, want = close_panel(arrays), pandas_panel(arrays)
    assert got.shape == want.shape and got.dtype == np.float64
    assert np.array_equal(got, want, equal_nan=True)


def test_a_universe_on_one_clock_is_its_closes_side_by_side() -> None:
    arrays = {s: bars(list(range(0, 300, 3)), i) for i, s in enumerate("ABC")}
    arrays["EMPTY"] = (np.empty(0, np.int64), np.empty((0, 5)))
    panel = close_panel(arrays)
    assert panel.shape == (100, 3)
    assert np.array_equal(panel[:, 1], arrays["B"][1][:, 3])
    assert close_panel({"EMPTY": arrays["EMPTY"]}).shape == (0, 0)
