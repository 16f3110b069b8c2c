"""The minimum history said in time: the bar count the splits need, in years of the data's own
bar frequency (issue #14: 495 monthly bars are ~41 years, not "495 bars")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aistock_actors.core.model.history import (
    history_in_years,
    min_history_bars,
    required_history_bars,
    years_floor_bars,
)
from aistock_actors.core.model.models import ModelParams


def _frame(index: pd.DatetimeIndex) -> pd.DataFrame:
    ones = np.ones(len(index))
    return pd.DataFrame({"open": ones, "high": ones, "low": ones, "close": ones,
                         "volume": ones}, index=index)


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (pd.bdate_range("2015-01-01", periods=600, tz="UTC"), "~1.9 years"),  # ~261 weekdays
        (pd.date_range("1980-01-31", periods=600, freq="ME", tz="UTC"), "~41.2 years"),
        (pd.date_range("2024-01-01", periods=20_000, freq="h", tz="UTC"), "~21 days"),
    ],
    ids=["daily", "monthly", "hourly-24/7"],
)
def test_the_minimum_history_is_said_in_years_of_the_datas_frequency(
    index: pd.DatetimeIndex, expected: str
) -> None:
    text = history_in_years(495, {"A": _frame(index), "B": _frame(index[:10])})
    assert text.startswith("495 bars (") and expected in text, text


def test_without_enough_timestamps_it_says_only_the_bars() -> None:
    assert history_in_years(495, {}) == "495 bars"
    one = pd.date_range("2024-01-01", periods=1, tz="UTC")
    assert history_in_years(495, {"A": _frame(one)}) == "495 bars"


@pytest.mark.parametrize(
    ("index", "min_years", "expected"),
    [
        # the purged splits' 496 bars are ~1.9 years of weekdays: a 1-year floor adds nothing
        (pd.bdate_range("2015-01-01", periods=600, tz="UTC"), 1.0, 496),
        (pd.bdate_range("2015-01-01", periods=600, tz="UTC"), 3.0, 783),  # 3 x ~261
        # 496 hourly bars are 3 weeks of a 24/7 market: one year of them is 8,766
        (pd.date_range("2024-01-01", periods=20_000, freq="h", tz="UTC"), 1.0, 8_766),
        (pd.date_range("2024-01-01", periods=20_000, freq="h", tz="UTC"), 0.0, 496),
        (pd.date_range("1980-01-31", periods=600, freq="ME", tz="UTC"), 1.0, 496),  # monthly
    ],
    ids=["daily", "daily-3y", "hourly-24/7", "hourly-no-floor", "monthly"],
)
def test_the_required_history_is_the_splits_bars_and_a_floor_in_years(
    index: pd.DatetimeIndex, min_years: float, expected: int
) -> None:
    frames = {"A": _frame(index), "B": _frame(index[:10])}
    assert min_history_bars(ModelParams(), 4) == 496
    assert required_history_bars(ModelParams(), 4, frames, min_years) == expected


def test_the_floor_in_years_rounds_up_to_whole_bars() -> None:
    assert years_floor_bars(1.0, 252.0) == 252
    assert years_floor_bars(0.5, 251.0) == 126
    assert years_floor_bars(0.0, 8_766.0) == 0
    assert required_history_bars(ModelParams(), 4, {}, 5.0) == 496  # no timestamps: splits only
