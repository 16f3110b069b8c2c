"""Issue #14: every fold of every candidate is one job of one batch, so the pool's workers share
the ML candidates' folds; the result is that of the serial walk-forward, still purged."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from _support.lifecycle_support import planted_frames

from aistock_actors.core.backtest.simulator import CostModel
from aistock_actors.core.model.simulation import SimulationSpec, Sizing
from aistock_actors.core.strategy.candidates import run_candidate_set
from aistock_actors.core.strategy.ml import MetaLabelledStrategy
from aistock_actors.core.strategy.protocol import Strategy
from aistock_actors.core.strategy.rules import SmaCross
from aistock_actors.core.strategy.walkforward import (
    fold_weights,
    tradable_forward_returns,
    walk_forward_strategy,
)
from aistock_actors.runtime.jobs import JobRunner, make_mapper

SPEC = SimulationSpec(n_splits=4, embargo=5, fill="next_open",
                      costs=CostModel(commission_rate=0.0005, half_spread_bps=2.0,
                                      impact_bps=200.0),
                      initial_cash=100_000.0)
SIZING = Sizing(max_position_fraction=0.2, max_gross_exposure=1.0)
FRAMES = planted_frames(n_symbols=3, n_bars=400, phi=0.3)


def candidates() -> list[Strategy]:
    return [MetaLabelledStrategy(horizon=1), SmaCross(), MetaLabelledStrategy(horizon=5)]


class Recording:
    """A serial mapper that keeps every batch it ran."""

    def __init__(self) -> None:
        self.batches: list[tuple[Callable[..., Any], list[tuple[Any, ...]]]] = []

    def __call__(self, fn: Callable[..., Any], jobs: Sequence[tuple[Any, ...]], /) -> list[Any]:
        self.batches.append((fn, list(jobs)))
        return [fn(*job) for job in jobs]


def test_every_fold_is_a_job_of_one_batch_ml_first_sharing_one_feature_panel_purged() -> None:
    mapper = Recording()
    result = run_candidate_set(FRAMES, candidates(), spec=SPEC, sizing=SIZING, mapper=mapper)
    assert len(mapper.batches) == 1
    fn, jobs = mapper.batches[0]
    assert fn is fold_weights
    names = [job[0] for job in jobs]
    assert len(jobs) == 3 * SPEC.n_splits
    assert set(names[: 2 * SPEC.n_splits]) == {"ml_horizon_1", "ml_horizon_5"}  # ML folds first
    assert set(names[2 * SPEC.n_splits :]) == {"sma_cross"}
    ml_panels = {id(job[2]) for job in jobs if job[0].startswith("ml_")}
    assert len(ml_panels) == 1  # computed once for both horizons, sent once
    assert {id(job[2]) for job in jobs if job[0] == "sma_cross"} != ml_panels
    # largest training sets first within the ML candidates
    sizes = [len(job[4]) for job in jobs[: 2 * SPEC.n_splits]]
    assert sizes == sorted(sizes, reverse=True)
    # the same reports as each candidate's own serial walk-forward
    assert result.errors == {}
    for report, candidate in zip(result.reports, candidates(), strict=True):
        alone = walk_forward_strategy(FRAMES, candidate, spec=SPEC, sizing=SIZING)
        assert report.name == alone.name
        assert report.returns == alone.returns
        assert (report.train_accuracy, report.test_accuracy) == (
            alone.train_accuracy, alone.test_accuracy)
    # purged: a fold job trains only on rows whose label ends an embargo before its test block
    for name, strategy, features, _, train, test, _ in jobs:
        index = features.index
        _, ends = tradable_forward_returns(FRAMES, index, strategy.horizon)
        grid = np.unique(index.get_level_values("timestamp"))
        test_start = index.get_level_values("timestamp")[test].min()
        cutoff = grid[np.searchsorted(grid, test_start) - SPEC.embargo]
        assert ends.iloc[train].notna().all(), name
        assert (pd.DatetimeIndex(ends.iloc[train]) < cutoff).all(), name


def test_a_process_pool_gives_the_serial_result() -> None:
    two: list[Strategy] = [MetaLabelledStrategy(horizon=1), SmaCross()]
    serial = run_candidate_set(FRAMES, two, spec=SPEC, sizing=SIZING)
    runner = JobRunner("loky", 2)
    try:
        pooled = run_candidate_set(FRAMES, two, spec=SPEC, sizing=SIZING,
                                   mapper=make_mapper(runner, 300.0))
    finally:
        runner.close()
    assert [r.name for r in pooled.reports] == [r.name for r in serial.reports]
    assert [r.returns for r in pooled.reports] == [r.returns for r in serial.reports]
    assert pooled.deflated_sharpe == serial.deflated_sharpe


def _reference_forward_returns(
    frames: dict[str, pd.DataFrame], index: pd.MultiIndex, horizon: int
) -> tuple[pd.Series, pd.Series]:
    """The per-symbol pandas computation ``tradable_forward_returns`` replaced (the oracle)."""
    returns, ends = [], []
    for symbol in sorted(frames):
        frame = frames[symbol]
        log_open = pd.Series(np.log(frame["open"].to_numpy(dtype=float)), index=frame.index)
        fwd = log_open.shift(-(1 + horizon)) - log_open.shift(-1)
        end = frame.index.to_series().shift(-(1 + horizon))
        key = pd.MultiIndex.from_arrays(
            [frame.index, pd.Index([symbol] * len(frame), dtype=object)],
            names=["timestamp", "symbol"])
        returns.append(pd.Series(fwd.to_numpy(), index=key))
        ends.append(pd.Series(end.to_numpy(), index=key))
    return pd.concat(returns).reindex(index), pd.concat(ends).reindex(index)


def _utc_ns(values: pd.Series) -> np.ndarray:
    """Times as UTC nanoseconds (NaT as int64's minimum), whatever their unit and zone."""
    index = pd.DatetimeIndex(values)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return np.asarray(index.as_unit("ns").asi8)


def test_tradable_forward_returns_equal_the_per_symbol_pandas_oracle() -> None:
    frames = planted_frames(n_symbols=3, n_bars=60, phi=0.3)
    times = next(iter(frames.values())).index
    symbols = [*sorted(frames), "MISSING"]
    index = pd.MultiIndex.from_product([times, symbols], names=["timestamp", "symbol"])
    later = pd.MultiIndex.from_product([[times[-1] + pd.Timedelta(days=1)], symbols[:1]],
                                       names=["timestamp", "symbol"])
    index = index.append(later)[::-1]  # any order; a bar and a symbol the frames lack
    assert isinstance(index, pd.MultiIndex)
    for horizon in (1, 5, 20, 80):
        fwd, ends = tradable_forward_returns(frames, index, horizon)
        want_fwd, want_ends = _reference_forward_returns(frames, index, horizon)
        assert fwd.to_numpy().tobytes() == want_fwd.to_numpy().tobytes()
        assert np.array_equal(_utc_ns(ends), _utc_ns(want_ends))
        assert pd.DatetimeIndex(ends).tz is not None  # UTC, whatever the frames' time unit
        assert fwd.notna().sum() == (3 * max(0, 60 - 1 - horizon))
