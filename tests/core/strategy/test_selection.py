"""The deflated Sharpe ratio, the choice of the best candidate, and sizing within the limits."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aistock_actors.core.strategy.protocol import check_weights, per_name_weight
from aistock_actors.core.strategy.selection import (
    best_index,
    deflated_sharpe_ratio,
    expected_max_sharpe,
)
from aistock_actors.errors import StrategyError


def test_expected_max_sharpe_grows_with_the_trials_and_shrinks_with_the_data() -> None:
    assert expected_max_sharpe(1, 1_000) == 0.0
    values = [expected_max_sharpe(n, 1_000) for n in (2, 10, 100, 1_000)]
    assert values == sorted(values) and values[0] > 0.0
    assert expected_max_sharpe(10, 4_000) == pytest.approx(expected_max_sharpe(10, 1_000) / 2,
                                                           rel=0.01)
    with pytest.raises(ValueError, match="trial"):
        expected_max_sharpe(0, 100)


def test_a_real_edge_survives_deflation_and_luck_does_not() -> None:
    rng = np.random.default_rng(0)
    edge = rng.normal(0.0015, 0.01, 1_200)  # per-bar Sharpe ~0.13: annualised ~2
    assert deflated_sharpe_ratio(edge, n_trials=1) > 0.99
    assert deflated_sharpe_ratio(edge, n_trials=10) > 0.95
    # The best of 50 pure-noise trials looks good before deflation, not after.
    trials = [rng.normal(0.0, 0.01, 1_200) for _ in range(50)]
    best = max(trials, key=lambda r: r.mean() / r.std())
    assert best.mean() / best.std() * math.sqrt(252) > 0.8
    assert deflated_sharpe_ratio(best, n_trials=50) < 0.95
    # Every trial ever run counts: the same result is worth less after more trials.
    assert deflated_sharpe_ratio(edge, 1_000) < deflated_sharpe_ratio(edge, 10)


def test_degenerate_returns_are_no_evidence() -> None:
    assert deflated_sharpe_ratio([], 3) == 0.0
    assert deflated_sharpe_ratio([0.01, 0.01, 0.01, 0.01], 3) == 0.0
    assert deflated_sharpe_ratio([float("nan"), 0.01], 3) == 0.0


def test_best_index_skips_non_finite_and_keeps_the_first_tie() -> None:
    assert best_index([0.5, float("nan"), 1.2, 1.2, -3.0]) == 2
    with pytest.raises(ValueError, match="finite"):
        best_index([float("nan"), float("inf")])


weights = st.lists(
    st.lists(st.floats(min_value=-1.0, max_value=1.0), min_size=1, max_size=12),
    min_size=1,
    max_size=20,
).filter(lambda rows: len({len(r) for r in rows}) == 1)


@given(weights, st.floats(min_value=0.01, max_value=0.3), st.floats(min_value=0.1, max_value=3.0))
def test_sized_weights_never_exceed_the_limits(
    rows: list[list[float]], max_position: float, max_gross: float
) -> None:
    frame = check_weights("any", pd.DataFrame(rows))
    sized = frame * per_name_weight(frame.shape[1], max_position, max_gross)
    assert (sized.abs() <= max_position + 1e-12).all().all()
    assert (sized.abs().sum(axis=1) <= max_gross + 1e-12).all()


@given(st.sampled_from([math.nan, math.inf, -math.inf, 1.0 + 1e-6, -2.0]))
def test_out_of_range_weights_are_refused_never_clipped(bad: float) -> None:
    with pytest.raises(StrategyError, match="strategy 'named'"):
        check_weights("named", pd.DataFrame([[0.5, bad]]))
