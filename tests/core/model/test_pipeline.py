"""The pure lifecycle pipeline: data selection, sizing, and the walk-forward OOS backtest."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _support.lifecycle_support import planted_frames
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.core.backtest.simulator import CostModel
from aistock_actors.core.model import pipeline
from aistock_actors.core.model.models import ModelParams

PARAMS = ModelParams(horizon=1)
SPEC = pipeline.SimulationSpec(n_splits=4, embargo=5, fill="next_open",
                               costs=CostModel(
                                   commission_rate=0.0005,
                                   half_spread_bps=2.0,
                                   impact_bps=0.0,
                               ), initial_cash=100_000.0)
SIZING = pipeline.Sizing(max_position_fraction=0.2, max_gross_exposure=1.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from([-1, 0, 1]), min_size=4, max_size=4), min_size=1,
             max_size=6),
    st.floats(0.01, 0.3),
    st.floats(0.1, 3.0),
)
def test_target_weights_respect_the_caps(rows: list[list[int]], cap: float, gross: float) -> None:
    times = pd.date_range("2020-01-01", periods=len(rows), tz="UTC")
    index = pd.MultiIndex.from_product([times, ["A", "B", "C", "D"]],
                                       names=["timestamp", "symbol"])
    direction = np.array(rows, dtype=np.int8).ravel()
    weights = pipeline.target_weights(
        index, direction, pipeline.Sizing(max_position_fraction=cap, max_gross_exposure=gross))
    values = weights.to_numpy()
    assert (np.abs(values) <= cap + 1e-12).all()
    assert (np.abs(values).sum(axis=1) <= gross + 1e-9).all()
    assert (np.sign(values) == np.array(rows)).all()  # long/short/flat as signalled
    # One fixed weight per position over the 4-symbol universe, whatever the other signals do:
    # a held position is never resized because another symbol's signal came or went.
    assert set(np.round(np.abs(values[values != 0]), 12)) <= {round(min(cap, gross / 4), 12)}


def test_select_frames_keeps_the_longest_symbols_and_recent_bars() -> None:
    frames = planted_frames(n_symbols=3, n_bars=200)
    frames["P01"] = frames["P01"].iloc[50:]
    chosen = pipeline.select_frames(frames, max_symbols=2, max_bars=120)
    assert sorted(chosen) == ["P00", "P02"]
    assert all(len(f) == 120 for f in chosen.values())
    assert chosen["P00"].index[-1] == frames["P00"].index[-1]


def test_min_history_bars_for_the_default_recipe() -> None:
    assert pipeline.min_history_bars(ModelParams(), 4) == 496


def record_jobs(jobs_seen: list[tuple[Any, ...]]) -> pipeline.Mapper:
    def mapper(fn: Any, jobs: Any) -> list[Any]:
        jobs_seen.extend(jobs)
        return pipeline.sequential_map(fn, jobs)

    return mapper  # type: ignore[return-value]


def test_walk_forward_finds_a_planted_pattern_out_of_sample_without_leakage() -> None:
    frames = planted_frames(n_symbols=6, n_bars=600)
    seen: list[tuple[Any, ...]] = []
    report = pipeline.walk_forward_backtest(frames, model_id="c", params=PARAMS, seed=0,
                                            spec=SPEC, sizing=SIZING, mapper=record_jobs(seen))
    assert report.folds == 4 and len(seen) == 4
    test_starts = []
    for job in seen:  # (fit_fold, data, fold, train_positions, test_positions, params, seed)
        data, train, test = job[1], job[3], job[4]
        test_start = data.features.index[test].get_level_values("timestamp").min()
        assert data.label_end_times.iloc[train].max() < test_start  # purged: no label reaches it
        test_starts.append(test_start)
    first_test = min(test_starts)
    assert pd.Timestamp(report.start) == first_test
    m = report.candidate.metrics
    assert m.sharpe > 2.0 and m.trade_count >= 30 and m.max_drawdown < 0.18
    assert 0.0 <= m.transition_max_drawdown < 0.2


def test_walk_forward_on_noise_has_no_edge_and_incumbent_is_scored_on_same_bars() -> None:
    noise = planted_frames(n_symbols=4, n_bars=560, phi=0.0)
    incumbent = pipeline.train_candidate(planted_frames(n_symbols=4, n_bars=560), PARAMS, 0,
                                         "inc", datetime.now(UTC))
    report = pipeline.walk_forward_backtest(noise, model_id="c", params=PARAMS, seed=0,
                                            spec=SPEC, sizing=SIZING, incumbent=incumbent)
    assert report.candidate.metrics.sharpe < 0.6
    assert report.incumbent is not None and report.incumbent.model_id == "inc"
    assert report.incumbent.bars == report.candidate.bars
    broken = dataclasses.replace(incumbent, feature_names=(*incumbent.feature_names, "gone"))
    again = pipeline.walk_forward_backtest(noise, model_id="c", params=PARAMS, seed=0,
                                           spec=SPEC, sizing=SIZING, incumbent=broken)
    assert again.incumbent is None and again.incumbent_note is not None
    assert "gone" in again.incumbent_note


def test_too_little_history_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        pipeline.walk_forward_backtest(planted_frames(n_symbols=2, n_bars=150), model_id="c",
                                       params=PARAMS, seed=0, spec=SPEC, sizing=SIZING)


def incumbent_until(frames: dict[str, pd.DataFrame], bars: int) -> tuple[Any, str]:
    """An incumbent trained on the first ``bars`` bars of ``frames``, and its training end."""
    head = {symbol: frame.iloc[:bars] for symbol, frame in frames.items()}
    model = pipeline.train_candidate(head, PARAMS, 0, "inc", datetime.now(UTC))
    return model, pipeline.window_bounds(head)[1]


def test_incumbent_is_scored_only_after_its_training_end_and_so_is_the_challenger() -> None:
    frames = planted_frames(n_symbols=4, n_bars=560)
    incumbent, data_end = incumbent_until(frames, 470)
    seen: list[tuple[Any, ...]] = []
    report = pipeline.walk_forward_backtest(frames, model_id="c", params=PARAMS, seed=0,
                                            spec=SPEC, sizing=SIZING, incumbent=incumbent,
                                            incumbent_data_end=data_end,
                                            mapper=record_jobs(seen))
    end = pd.Timestamp(data_end)
    data, positions = seen[-1][1], seen[-1][3]  # (model_signals, data, incumbent, positions)
    scored = data.features.index[positions].get_level_values("timestamp")
    assert scored.min() > end  # the incumbent never signals on bars it was trained on
    window = report.champion
    assert window is not None and window.after_training_end
    assert pd.Timestamp(window.start) == scored.min() and window.end == report.end
    assert window.training_end == data_end
    assert window.bars == window.bars_after_training_end >= pipeline.MIN_CHAMPION_WINDOW_BARS
    assert report.incumbent is not None and report.incumbent.bars == window.bars
    # The challenger is the candidate's own walk-forward signals on the same bars ...
    assert window.candidate.model_id == "c" and window.candidate.bars == window.bars
    assert window.candidate.bars < report.candidate.bars
    assert f"all after the incumbent's training end {data_end}" in window.note
    # ... while the candidate's own metrics (stages 1-6) stay those of the whole window.
    alone = pipeline.walk_forward_backtest(frames, model_id="c", params=PARAMS, seed=0,
                                           spec=SPEC, sizing=SIZING)
    assert alone.candidate == report.candidate and alone.champion is None


def test_too_few_bars_after_the_training_end_compare_on_the_full_window_with_a_note() -> None:
    frames = planted_frames(n_symbols=4, n_bars=560)
    incumbent, data_end = incumbent_until(frames, 540)
    report = pipeline.walk_forward_backtest(frames, model_id="c", params=PARAMS, seed=0,
                                            spec=SPEC, sizing=SIZING, incumbent=incumbent,
                                            incumbent_data_end=data_end)
    window = report.champion
    assert window is not None and not window.after_training_end
    assert 0 < window.bars_after_training_end < pipeline.MIN_CHAMPION_WINDOW_BARS
    assert (window.start, window.end) == (report.start, report.end)
    assert window.candidate == report.candidate
    assert report.incumbent is not None and report.incumbent.bars == report.candidate.bars
    assert "compared on the full window" in window.note
    assert f"only {window.bars_after_training_end} bars after" in window.note
    assert "partly in-sample" in window.note
    unknown = pipeline.walk_forward_backtest(frames, model_id="c", params=PARAMS, seed=0,
                                             spec=SPEC, sizing=SIZING, incumbent=incumbent)
    assert unknown.champion is not None and not unknown.champion.after_training_end
    assert "training end is unknown" in unknown.champion.note
    assert unknown.incumbent == report.incumbent


def test_after_training_end_compares_across_time_zones_and_ignores_garbage() -> None:
    times = pd.date_range("2020-01-01", periods=4, tz="UTC")
    index = pd.MultiIndex.from_product([times, ["A"]], names=["timestamp", "symbol"])
    assert pipeline.after_training_end(index, "2020-01-02T00:00:00+00:00").tolist() == [
        False, False, True, True]
    assert pipeline.after_training_end(index, "2020-01-02T01:00:00+02:00").tolist() == [
        False, True, True, True]  # 2020-01-01T23:00Z
    assert pipeline.after_training_end(index, "2020-01-02").tolist() == [
        False, False, True, True]  # naive: UTC
    assert not pipeline.after_training_end(index, "not a time").any()
    assert not pipeline.after_training_end(index, None).any()
    naive = pd.MultiIndex.from_product([times.tz_localize(None), ["A"]],
                                       names=["timestamp", "symbol"])
    assert pipeline.after_training_end(naive, "2020-01-03T00:00:00+00:00").tolist() == [
        False, False, False, True]
