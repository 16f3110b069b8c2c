"""Primary model + meta-labeler: honest out-of-sample accuracy, the model's own threshold (T6)."""

from __future__ import annotations

import inspect
import io
import logging
from datetime import UTC, datetime

import joblib
import numpy as np
import pandas as pd
import pytest
from _support.frames_support import ar1_frames

from aistock_actors.core.model.labels import TrainingSet, build_training_set
from aistock_actors.core.model.models import ModelParams, TrainedModel, train_model
from aistock_actors.core.model.threshold import choose_threshold, edge_z, majority_rate

CREATED = datetime(2024, 1, 2, 21, 0, tzinfo=UTC)
PARAMS = ModelParams(horizon=1, n_splits=4, embargo=2)




def fit(
    ts: TrainingSet, labels: pd.Series | None = None, seed: int = 0, **kw: object
) -> TrainedModel:
    return train_model(
        ts.features,
        ts.labels if labels is None else labels,
        ts.label_end_times,
        params=PARAMS,
        model_id=str(kw.get("model_id", "m-test")),
        created_at=CREATED,
        seed=seed,
    )


@pytest.fixture(scope="module")
def planted() -> TrainingSet:
    # The pattern is close-to-close (each bar opens at its own close): these tests are of the
    # learner, so they keep the direction label the pattern is planted in.
    return build_training_set(ar1_frames(10, 600, phi=0.3, seed=11), horizon=1, method="direction")


@pytest.fixture(scope="module")
def planted_model(planted: TrainingSet) -> TrainedModel:
    return fit(planted)


def test_planted_pattern_is_learned_out_of_sample(planted_model: TrainedModel) -> None:
    assert planted_model.test_accuracy > 0.55
    assert planted_model.horizon == 1
    assert planted_model.created_at == CREATED
    assert 0.5 <= planted_model.confidence_threshold <= 0.9
    assert planted_model.metrics["test_accuracy"] == planted_model.test_accuracy
    assert planted_model.metrics["meta_precision"] > 0.55


def test_shuffled_labels_score_like_a_coin(planted: TrainingSet) -> None:
    rng = np.random.default_rng(5)
    shuffled = pd.Series(rng.permutation(planted.labels.to_numpy()), index=planted.labels.index)
    model = fit(planted, labels=shuffled)
    assert abs(model.test_accuracy - 0.5) < 0.04
    assert 0.5 <= model.confidence_threshold <= 0.9


def test_training_is_deterministic_for_a_seed(planted: TrainingSet) -> None:
    a, b = fit(planted, seed=3), fit(planted, seed=3)
    assert a.metrics == b.metrics
    assert a.confidence_threshold == b.confidence_threshold
    sa, sb = a.signals(planted.features), b.signals(planted.features)
    assert np.array_equal(sa.direction, sb.direction)
    assert np.array_equal(sa.confidence, sb.confidence)


def test_filter_uses_the_models_own_threshold(
    planted: TrainingSet, planted_model: TrainedModel, caplog: pytest.LogCaptureFixture
) -> None:
    """T6: a model with threshold 0.65 filters at 0.65, whatever any other value says."""
    assert list(inspect.signature(TrainedModel.signals).parameters) == ["self", "features"]
    model = planted_model.with_threshold(0.65)
    with caplog.at_level(logging.INFO, logger="aistock_actors.core.model.models"):
        sig = model.signals(planted.features)
    conf = sig.confidence
    assert (conf >= 0.65).any() and (conf < 0.65).any(), "threshold must split this data"
    assert np.array_equal(sig.direction != 0, conf >= 0.65)
    assert "confidence_threshold=0.6500" in caplog.text
    stricter = planted_model.with_threshold(0.8).signals(planted.features)
    assert np.array_equal(stricter.direction != 0, conf >= 0.8)
    kept = stricter.direction != 0
    assert np.array_equal(stricter.direction[kept], sig.direction[kept])


def test_direction_follows_the_primary_side(
    planted: TrainingSet, planted_model: TrainedModel
) -> None:
    model = planted_model.with_threshold(0.0)
    sig = model.signals(planted.features)
    p_up = model.primary_proba(planted.features)
    assert set(np.unique(sig.direction)) <= {-1, 1}
    assert np.array_equal(sig.direction == 1, p_up >= 0.5)


def test_threshold_survives_pickling(planted: TrainingSet, planted_model: TrainedModel) -> None:
    buffer = io.BytesIO()
    joblib.dump(planted_model.with_threshold(0.65), buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    assert loaded.confidence_threshold == 0.65
    assert loaded.feature_names == planted_model.feature_names
    rows = planted.features.iloc[-50:]
    assert np.array_equal(loaded.signals(rows).confidence, planted_model.signals(rows).confidence)


def test_unusable_rows_get_no_signal(planted: TrainingSet, planted_model: TrainedModel) -> None:
    rows = planted.features.iloc[:5].copy()
    rows.iloc[2, 0] = np.nan
    sig = planted_model.with_threshold(0.0).signals(rows)
    assert sig.direction[2] == 0 and sig.confidence[2] == 0.0
    assert (sig.direction[[0, 1, 3, 4]] != 0).all()
    with pytest.raises(ValueError, match="missing feature columns"):
        planted_model.signals(rows.drop(columns=["ret_1"]))


def test_choose_threshold_prefers_a_significant_edge() -> None:
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.3, 0.95, 20_000)
    correct = rng.random(20_000) < np.where(confidence >= 0.7, 0.65, 0.45)
    choice = choose_threshold(confidence, correct, PARAMS, base_rate=0.5)
    assert choice.threshold == pytest.approx(0.7, abs=0.02)
    assert choice.precision > 0.6 and choice.score >= PARAMS.min_edge_z
    noise = choose_threshold(confidence, rng.random(20_000) < 0.5, PARAMS, base_rate=0.5)
    assert noise.threshold == pytest.approx(PARAMS.threshold_max)


def test_choose_threshold_tests_the_edge_against_the_base_rate_not_a_coin_flip() -> None:
    # A drifting market: 56 % of labels are "up" and the "signals" are always long, so 56 % of
    # them are right at every threshold. Against a coin flip that is z ~ 17; against the
    # majority-side base rate it is no edge at all.
    rng = np.random.default_rng(1)
    labels = (rng.random(20_000) < 0.56).astype(np.int64)
    confidence = rng.uniform(0.3, 0.95, 20_000)
    correct = labels == 1
    assert majority_rate(labels) == pytest.approx(0.56, abs=0.01)
    coin = choose_threshold(confidence, correct, PARAMS, base_rate=0.5)
    assert coin.score > 10.0  # the old test passed drift for skill
    honest = choose_threshold(confidence, correct, PARAMS, base_rate=majority_rate(labels))
    assert honest.threshold == pytest.approx(PARAMS.threshold_max)
    assert honest.score < PARAMS.min_edge_z
    assert edge_z(0.6, 100, 0.5) == pytest.approx(2.0)
    assert edge_z(0.7, 0, 0.5) == 0.0 and edge_z(0.7, 10, 1.0) == 0.0


def test_bad_training_inputs(planted: TrainingSet) -> None:
    with pytest.raises(ValueError, match="timezone"):
        train_model(
            planted.features,
            planted.labels,
            planted.label_end_times,
            params=PARAMS,
            model_id="x",
            created_at=datetime(2024, 1, 1),
            seed=0,
        )
    bad = planted.features.copy()
    bad.iloc[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train_model(
            bad,
            planted.labels,
            planted.label_end_times,
            params=PARAMS,
            model_id="x",
            created_at=CREATED,
            seed=0,
        )
    with pytest.raises(ValueError):
        ModelParams(threshold_min=0.4)
    with pytest.raises(ValueError):
        ModelParams(n_splits=0)


def test_boosted_primary_also_learns(planted: TrainingSet) -> None:
    params = ModelParams(horizon=1, n_splits=3, embargo=2, primary="hgb", meta="logistic")
    model = train_model(
        planted.features,
        planted.labels,
        planted.label_end_times,
        params=params,
        model_id="hgb",
        created_at=CREATED,
        seed=1,
    )
    assert model.test_accuracy > 0.55
