"""Training's model fits run as independent jobs: a process pool gives the SAME model as one thread.

Also: the training set the train step built is handed over to the backtest step (one use, keyed
by the bars' content), and a step's fit batches share one deadline.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _support.frames_support import ar1_frames

from aistock_actors.core.model import classifiers, models, pipeline
from aistock_actors.core.model.handover import CURRENT
from aistock_actors.core.model.labels import TrainingSet, build_training_set
from aistock_actors.core.model.models import ModelParams, TrainedModel, serial_map, train_model
from aistock_actors.runtime.handover import HandOver
from aistock_actors.runtime.jobs import JobRunner, JobTimeoutError, deadline_mapper, make_mapper

CREATED = datetime(2024, 1, 2, 21, 0, tzinfo=UTC)




@pytest.fixture(scope="module")
def data() -> TrainingSet:
    # 20 x 600 bars: the feature matrix (1.7 MB) is above SHARE_MIN_BYTES, so the pool's workers
    # get it memory-mapped read-only, as in production.
    return build_training_set(ar1_frames(20, 600, phi=0.3, seed=11), horizon=1)


def _fit(data: TrainingSet, params: ModelParams, mapper: models.FitMapper) -> TrainedModel:
    return train_model(
        data.features,
        data.labels,
        data.label_end_times,
        params=params,
        model_id="m-par",
        created_at=CREATED,
        seed=7,
        mapper=mapper,
    )


def _assert_same_model(a: TrainedModel, b: TrainedModel, features: pd.DataFrame) -> None:
    """Bit-identical: every prediction, every fitted parameter, threshold and metric."""
    assert a.confidence_threshold == b.confidence_threshold
    assert a.metrics == b.metrics
    x = a.feature_matrix(features)
    p_a, p_b = a.primary_proba(features), b.primary_proba(features)
    assert np.array_equal(p_a, p_b)
    meta_x = classifiers.meta_matrix(x, p_a)
    assert np.array_equal(a.meta.predict_proba(meta_x), b.meta.predict_proba(meta_x))
    sa, sb = a.signals(features), b.signals(features)
    assert np.array_equal(sa.direction, sb.direction)
    assert np.array_equal(sa.confidence, sb.confidence)
    for fitted_a, fitted_b in ((a.primary, b.primary), (a.meta, b.meta)):
        _assert_same_parameters(fitted_a, fitted_b)


def _assert_same_parameters(a: Any, b: Any) -> None:
    if hasattr(a, "steps"):  # the logistic pipeline: scaler statistics and coefficients
        for (_, step_a), (_, step_b) in zip(a.steps, b.steps, strict=True):
            for name in ("mean_", "scale_", "coef_", "intercept_"):
                if hasattr(step_a, name):
                    assert np.array_equal(getattr(step_a, name), getattr(step_b, name)), name
        return
    # HistGradientBoosting: every tree's nodes (thresholds, values, gains)
    assert len(a._predictors) == len(b._predictors)
    for trees_a, trees_b in zip(a._predictors, b._predictors, strict=True):
        for tree_a, tree_b in zip(trees_a, trees_b, strict=True):
            assert tree_a.nodes.tobytes() == tree_b.nodes.tobytes()
    assert np.array_equal(a._baseline_prediction, b._baseline_prediction)


@pytest.mark.parametrize("primary", ["logistic", "hgb"])
def test_fits_in_a_process_pool_give_the_serial_model_bit_for_bit(
    data: TrainingSet, primary: str
) -> None:
    params = ModelParams(horizon=1, n_splits=4, embargo=2, primary=primary)  # type: ignore[arg-type]
    serial = _fit(data, params, serial_map)
    calls: list[int] = []
    with JobRunner("loky", 2) as runner:
        pooled_map = make_mapper(runner, 300)

        def counting(fn: Any, jobs: Any) -> list[Any]:
            calls.append(len(jobs))
            return pooled_map(fn, jobs)

        pooled = _fit(data, params, counting)
    # two batches: the primary's 4 out-of-fold fits + its final fit, then the meta-labeler's
    # 2 tuning fits + its final fit
    assert calls == [5, 3]
    _assert_same_model(serial, pooled, data.features)


def test_the_job_order_does_not_change_the_model(data: TrainingSet) -> None:
    params = ModelParams(horizon=1, n_splits=4, embargo=2)

    def reversed_map(fn: Any, jobs: Any) -> list[Any]:
        return list(reversed([fn(*job) for job in reversed(jobs)]))

    _assert_same_model(
        _fit(data, params, serial_map), _fit(data, params, reversed_map), data.features
    )


def _build(hand_over: HandOver, frames: dict[str, pd.DataFrame], horizon: int) -> TrainingSet:
    """``make_training_set`` as the backtest step calls it: with the hand-over in effect."""
    token = CURRENT.set(hand_over)
    try:
        return pipeline.make_training_set(frames, horizon)
    finally:
        CURRENT.reset(token)


def test_training_set_is_handed_over_once_for_the_same_content() -> None:
    frames = ar1_frames(3, 300, phi=0.2, seed=5)
    params = ModelParams(horizon=1, n_splits=2, meta_splits=1, embargo=1)
    hand_over = HandOver()
    try:
        pipeline.train_candidate(frames, params, 0, "m-1", CREATED, hand_over=hand_over)
        copies = {symbol: frame.copy() for symbol, frame in frames.items()}
        handed = _build(hand_over, copies, 1)  # equal content, other objects: taken
        assert hand_over.take(frames, 1, pipeline.build_training_set) is None  # one use
        rebuilt = _build(hand_over, frames, 1)
        assert rebuilt is not handed
        pd.testing.assert_frame_equal(handed.features, rebuilt.features)
        pd.testing.assert_series_equal(handed.labels, rebuilt.labels)

        pipeline.train_candidate(frames, params, 0, "m-2", CREATED, hand_over=hand_over)
        assert hand_over.take(frames, 2, pipeline.build_training_set) is None  # another horizon
        changed = {symbol: frame.copy() for symbol, frame in frames.items()}
        changed["S01"].iloc[-1, changed["S01"].columns.get_loc("volume")] += 1.0
        assert hand_over.take(changed, 1, pipeline.build_training_set) is None  # a value
        fewer = dict(list(frames.items())[:2])
        assert hand_over.take(fewer, 1, pipeline.build_training_set) is None
        assert hand_over.take(frames, 1, pipeline.build_training_set) is not None
    finally:
        hand_over.clear()


def test_only_a_set_built_by_the_real_builder_is_handed_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frames = ar1_frames(3, 300, phi=0.2, seed=5)
    params = ModelParams(horizon=1, n_splits=2, meta_splits=1, embargo=1)
    hand_over = HandOver()

    def planted(frames: dict[str, pd.DataFrame], horizon: int) -> TrainingSet:
        return build_training_set(frames, horizon=horizon)

    with monkeypatch.context() as patch:  # a replaced seam (e.g. shuffled labels): never kept
        patch.setattr(pipeline, "make_training_set", planted)
        pipeline.train_candidate(frames, params, 0, "m-1", CREATED, hand_over=hand_over)
    assert hand_over.take(frames, 1, pipeline.build_training_set) is None

    with monkeypatch.context() as patch:  # another builder: another key
        patch.setattr(pipeline, "build_training_set", planted)
        pipeline.train_candidate(frames, params, 0, "m-1", CREATED, hand_over=hand_over)
    assert hand_over.take(frames, 1, pipeline.build_training_set) is None

    def broken(*_args: object, **_kwargs: object) -> TrainedModel:
        raise RuntimeError("fit failed")

    with monkeypatch.context() as patch:  # a failed training keeps nothing
        patch.setattr(pipeline, "train_model", broken)
        with pytest.raises(RuntimeError, match="fit failed"):
            pipeline.train_candidate(frames, params, 0, "m-1", CREATED, hand_over=hand_over)
    assert hand_over.take(frames, 1, pipeline.build_training_set) is None

    pipeline.train_candidate(frames, params, 0, "m-1", CREATED, hand_over=hand_over)
    pipeline.train_candidate(frames, params, 0, "m-2", CREATED, hand_over=hand_over)  # taken, kept
    assert hand_over.take(frames, 1, pipeline.build_training_set) is not None


def test_without_hand_over_nothing_is_kept() -> None:
    frames = ar1_frames(3, 300, phi=0.2, seed=5)
    params = ModelParams(horizon=1, n_splits=2, meta_splits=1, embargo=1)
    hand_over = HandOver()
    pipeline.train_candidate(frames, params, 0, "m-1", CREATED)
    assert hand_over.take(frames, 1, pipeline.build_training_set) is None


def test_frames_key_covers_index_and_values() -> None:
    frames = ar1_frames(2, 120, phi=0.0, seed=1)
    key = pipeline.frames_key(frames, 5)
    assert key == pipeline.frames_key({s: f.copy() for s, f in frames.items()}, 5)
    shifted = {s: f.set_axis(f.index + pd.Timedelta(days=1)) for s, f in frames.items()}
    assert pipeline.frames_key(shifted, 5) != key
    renamed = {f"X{s}": f for s, f in frames.items()}
    assert pipeline.frames_key(renamed, 5) != key
    with_text = {s: f.assign(note="x") for s, f in frames.items()}
    assert pipeline.frames_key(with_text, 5) is None


def test_batches_share_one_deadline() -> None:
    with JobRunner("loky", 1) as runner:
        mapper = deadline_mapper(runner, 2.0)
        start = time.monotonic()
        with pytest.raises(JobTimeoutError, match="sleep did not finish"):
            mapper(time.sleep, [(30,)])
        assert time.monotonic() - start < 15
        with pytest.raises(JobTimeoutError, match="budget is spent"):
            mapper(pow, [(2, 3)])
        assert deadline_mapper(runner, 60.0)(pow, [(2, 3), (3, 2)]) == [8, 9]
