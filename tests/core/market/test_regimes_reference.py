"""``label_regimes`` gives exactly the labels of the frozen pandas version on random series."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.core.market import regimes
from aistock_actors.core.market.regimes import label_regimes
from tests.core.market._reference_regimes import reference_label_regimes


@st.composite
def price_series(draw: st.DrawFn) -> np.ndarray:
    n = draw(st.integers(0, 400))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_regimes = draw(st.integers(1, 5))
    vols = rng.choice([0.0, 1e-4, 0.005, 0.02, 0.08], size=n_regimes)
    cut = np.sort(rng.integers(0, max(n, 1), size=n_regimes - 1))
    sigma = np.asarray(vols)[np.searchsorted(cut, np.arange(n), side="right")]
    logp = np.cumsum(rng.normal(0.0, 1.0, n) * sigma + rng.normal(0, 1e-3) * (sigma > 0))
    px = draw(st.sampled_from([1.0, 100.0, 1e-6, 1e6])) * np.exp(logp)
    if draw(st.booleans()):  # constant stretches (the close equals its SMA)
        for _ in range(rng.integers(1, 4)):
            a = int(rng.integers(0, max(n, 1)))
            px[a : a + int(rng.integers(1, 80))] = px[a] if a < n else 1.0
    if draw(st.booleans()):  # missing, zero and negative prices (carried forward)
        bad = rng.random(n) < draw(st.sampled_from([0.01, 0.1, 0.5]))
        px[bad] = rng.choice([np.nan, 0.0, -1.0, -np.inf], size=int(bad.sum()))
    if draw(st.booleans()) and n:  # a leading gap
        px[: int(rng.integers(0, n))] = np.nan
    if draw(st.booleans()):
        px = np.round(px, int(rng.integers(0, 4)))  # ticks: repeated prices
    return np.asarray(px, dtype=np.float64)


@settings(max_examples=600, deadline=None)
@given(
    px=price_series(),
    vol_window=st.integers(2, 60),
    trend_window=st.integers(1, 200),
    vol_threshold=st.sampled_from([0.5, 1.0, 1.1, 1.25, 1.5, 2.0]) | st.floats(0.01, 5.0),
    min_persistence=st.integers(1, 10),
)
def test_labels_equal_the_frozen_pandas_version(
    px: np.ndarray, vol_window: int, trend_window: int, vol_threshold: float, min_persistence: int
) -> None:
    kw = dict(
        vol_window=vol_window,
        trend_window=trend_window,
        vol_threshold=vol_threshold,
        min_persistence=min_persistence,
    )
    got = label_regimes(px, **kw)  # type: ignore[arg-type]
    want = reference_label_regimes(px, **kw)  # type: ignore[arg-type]
    assert got.dtype == np.int64
    assert np.array_equal(got, want)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 25])
def test_short_and_flat_series(n: int) -> None:
    for px in (np.full(n, 7.0), np.arange(1.0, n + 1.0), np.full(n, np.nan)):
        for mp in (1, 3):
            got = label_regimes(px, vol_window=2, trend_window=1, min_persistence=mp)
            want = reference_label_regimes(px, vol_window=2, trend_window=1, min_persistence=mp)
            assert np.array_equal(got, want)


def test_public_pandas_fallback_gives_the_same_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    px = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 700)))
    fast = label_regimes(px)
    assert regimes._kernels_usable()  # this pandas: the kernels agree with the public API
    monkeypatch.setattr(regimes, "_agg", None)
    monkeypatch.setattr(regimes, "_KERNELS", {})
    assert np.array_equal(label_regimes(px), fast)
    assert regimes._KERNELS == {"usable": False}
    assert np.array_equal(fast, reference_label_regimes(px))


class _ChangedKernels:
    """A later pandas whose private kernels changed: one raises, one returns other bits."""

    def __init__(self, real: object, mode: str) -> None:
        self.real, self.mode = real, mode

    def roll_var(self, *args: object) -> object:
        if self.mode == "raises":
            raise TypeError("roll_var() takes exactly 6 positional arguments (5 given)")
        return self.real.roll_var(*args)  # type: ignore[attr-defined]

    def roll_median_c(self, *args: object) -> object:
        return self.real.roll_median_c(*args)  # type: ignore[attr-defined]

    def roll_mean(self, values: np.ndarray, *args: object) -> object:
        out = self.real.roll_mean(values, *args)  # type: ignore[attr-defined]
        return out * (1.0 + 1e-9) if self.mode == "other_bits" else out


@pytest.mark.parametrize("mode", ["raises", "other_bits"])
def test_changed_private_kernels_fall_back_to_the_public_api(
    monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """The kernels are a private pandas API: a pandas where they changed must neither fail a
    backtest nor mislabel regimes; the one-time probe (or the call) sends it to the public API."""
    rng = np.random.default_rng(5)
    px = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 500)))
    monkeypatch.setattr(regimes, "_agg", _ChangedKernels(regimes._agg, mode))
    monkeypatch.setattr(regimes, "_KERNELS", {})
    assert np.array_equal(label_regimes(px), reference_label_regimes(px))
    assert regimes._KERNELS == {"usable": False}
