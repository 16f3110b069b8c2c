"""Primary direction model plus meta-labeler (López de Prado), with a tuned, stored threshold.

Training, all on purged walk-forward splits (:mod:`aistock_actors.core.model.validation`):

1. the primary classifier predicts ``P(up)``; its out-of-fold (OOF) accuracy is ``test_accuracy``;
2. the meta-labeler learns, from the features and the primary's OOF probability, whether acting on
   the primary's side would have been right ("does this bet pay?");
3. ``confidence_threshold`` is tuned on the meta-labeler's own out-of-sample predictions and
   stored in the model (T6): :meth:`TrainedModel.signals` filters with it and nothing else;
4. both are refitted on all the data they may see.

A boosted (``hgb``) fit, tuning or final, holds out the purged most recent tenth of its OWN rows
and stops when its log loss there stops improving
(:func:`~aistock_actors.core.model.classifiers.fit_early_stopped`): it trains on the rest, so
the final meta-labeler does not train on the newest ~10 % of the out-of-fold rows. The boosted
fits of one batch bin their rows once, with thresholds from a bounded sample of rows that every
one of them trains on (:func:`~aistock_actors.core.model.classifiers.shared_bins`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt
import pandas as pd

from aistock_actors.core.model.classifiers import (
    Classifier,
    ClassifierKind,
    fit_classifier,
    meta_matrix,
    positive_proba,
    row_view,
    shared_bins,
    take_rows,
)
from aistock_actors.core.model.memory_hints import release_pages
from aistock_actors.core.model.threads import one_thread
from aistock_actors.core.model.threshold import ThresholdChoice, choose_threshold, majority_rate
from aistock_actors.core.model.validation import as_int_times, purged_walk_forward_splits

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

class ModelParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Training hyper-parameters (the ``training`` config section can decode straight into it)."""

    horizon: int = 5
    """Label horizon in bars; recorded in the model."""
    primary: ClassifierKind = "logistic"
    """Primary model: L2 logistic regression (robust on noisy data) or shallow boosted trees."""
    meta: ClassifierKind = "hgb"
    """Meta-labeler model."""
    regularization_c: float = 0.05
    """Inverse L2 strength of the logistic models (smaller = more regularised)."""
    n_splits: int = 5
    """Walk-forward splits for the primary's out-of-fold predictions."""
    meta_splits: int = 2
    """Walk-forward splits, inside the OOF rows, for tuning the threshold."""
    embargo: int = 5
    """Embargo in bars between training label ends and each test window."""
    threshold_min: float = 0.5
    threshold_max: float = 0.9
    threshold_step: float = 0.01
    min_selected_fraction: float = 0.02
    """A threshold must keep at least this fraction of held-out signals to be eligible."""
    min_edge_z: float = 2.0
    """Edge over the majority-side base rate, in standard errors, a threshold needs; else the
    strictest is used."""
    hgb_max_iter: int = 100
    hgb_max_depth: int = 3
    hgb_learning_rate: float = 0.05
    hgb_min_samples_leaf: int = 200

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.n_splits < 1 or self.meta_splits < 1 or self.embargo < 0:
            raise ValueError("horizon, n_splits, meta_splits must be >= 1 and embargo >= 0")
        if not 0.5 <= self.threshold_min <= self.threshold_max < 1.0 or self.threshold_step <= 0:
            raise ValueError("need 0.5 <= threshold_min <= threshold_max < 1 and a positive step")


class Signals(NamedTuple):
    """Filtered signals, one per input row."""

    direction: npt.NDArray[np.int8]
    """-1 short, 0 no trade (filtered or unusable row), +1 long."""
    confidence: FloatArray
    """Meta-labeler probability that acting on the primary's side pays (0 for unusable rows)."""


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class TrainedModel:
    """A trained primary model + meta-labeler; plain data, picklable with joblib."""

    model_id: str
    created_at: datetime
    horizon: int
    feature_names: tuple[str, ...]
    primary: Classifier
    meta: Classifier
    confidence_threshold: float
    """Tuned at training time on held-out data; the only threshold :meth:`signals` uses (T6)."""
    train_accuracy: float
    test_accuracy: float
    """Pooled out-of-fold accuracy of the primary over the purged walk-forward splits."""
    metrics: dict[str, float]
    """Every training metric, ``train_accuracy`` and ``test_accuracy`` included."""
    params: ModelParams

    def feature_matrix(self, features: pd.DataFrame) -> FloatArray:
        """Return ``features[feature_names]`` as floats; ``ValueError`` naming missing columns."""
        missing = [name for name in self.feature_names if name not in features.columns]
        if missing:
            raise ValueError(f"model {self.model_id} needs missing feature columns {missing}")
        return np.asarray(features[list(self.feature_names)].to_numpy(dtype=float))

    def primary_proba(self, features: pd.DataFrame) -> FloatArray:
        """Return the primary's ``P(up)`` per row (NaN for rows with a missing feature)."""
        x = self.feature_matrix(features)
        out = np.full(len(x), np.nan)
        valid = np.isfinite(x).all(axis=1)
        if valid.any():
            out[valid] = positive_proba(self.primary, x[valid], owned=True)
        return out

    def signals(self, features: pd.DataFrame) -> Signals:
        """Primary side filtered by the meta-labeler at this model's ``confidence_threshold``.

        Rows with a missing feature get direction 0 and confidence 0. The threshold used is
        logged, so the audit trail shows which value filtered every batch.
        """
        threshold = self.confidence_threshold
        with one_thread():  # once for both predictions
            p_up = self.primary_proba(features)
            valid = ~np.isnan(p_up)
            direction = np.zeros(len(p_up), dtype=np.int8)
            confidence = np.zeros(len(p_up))
            if valid.any():
                rows = np.flatnonzero(valid)
                side = np.where(p_up[rows] >= 0.5, 1, -1).astype(np.int8)
                meta_x = meta_matrix(self.feature_matrix(features), p_up[rows], rows)
                conf = positive_proba(self.meta, meta_x)
                direction[valid] = np.where(conf >= threshold, side, 0)
                confidence[valid] = conf
        logger.info(
            "model %s: meta-label filter at the model's confidence_threshold=%.4f kept %d of %d",
            self.model_id,
            threshold,
            int(np.count_nonzero(direction)),
            len(direction),
        )
        return Signals(direction=direction, confidence=confidence)

    def with_threshold(self, threshold: float) -> TrainedModel:
        """Return a copy whose stored threshold is ``threshold`` (an explicit operator override)."""
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
        return dataclasses.replace(self, confidence_threshold=float(threshold))


def sample_times(index: pd.Index) -> pd.Index:
    """Return the observation time of each row (the ``timestamp`` level of a panel)."""
    if isinstance(index, pd.MultiIndex):
        level = "timestamp" if "timestamp" in index.names else 0
        return index.get_level_values(level)
    return index


def _aligned(
    features: pd.DataFrame, labels: pd.Series, label_end_times: pd.Series
) -> tuple[FloatArray, IntArray, IntArray, IntArray]:
    if not labels.index.equals(features.index):
        labels = labels.reindex(features.index)
    if not label_end_times.index.equals(features.index):
        label_end_times = label_end_times.reindex(features.index)
    x = np.asarray(features.to_numpy(dtype=float))
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN/inf: drop warm-up rows before training")
    if labels.isna().any() or not labels.isin([0, 1]).all():
        raise ValueError("labels must be 0/1 with no NaN for every feature row")
    y = labels.to_numpy(dtype=np.int64)
    return x, y, as_int_times(sample_times(features.index)), as_int_times(label_end_times)


FitMapper = Callable[[Callable[..., Any], Sequence[tuple[Any, ...]]], list[Any]]
"""Runs ``fn(*job)`` for each job, results in job order: a process pool's mapper, or not."""


def serial_map(fn: Callable[..., Any], jobs: Sequence[tuple[Any, ...]], /) -> list[Any]:
    """The trivial :data:`FitMapper`: one job after another in this thread."""
    return [fn(*job) for job in jobs]


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``: lets one mapper batch mix the two kinds of fit job."""
    return fn(*args)


def fit_predict_job(
    kind: ClassifierKind,
    x: FloatArray,
    y: IntArray,
    train: IntArray,
    test: IntArray,
    params: ModelParams,
    seed: int,
    times: tuple[IntArray, IntArray],
    binned: npt.NDArray[np.uint8] | None = None,
    mapper: Any = None,
) -> FloatArray:
    """Fit ``kind`` on rows ``train`` and return ``P(1)`` on rows ``test`` (a pool job).

    ``x``, ``y``, ``times`` (observation and label-end times of the rows) and ``binned`` (the
    rows binned by ``mapper``: :func:`~aistock_actors.core.model.classifiers.shared_bins`) are
    the whole arrays, shared by every job of a batch (read-only).
    """
    with one_thread():
        rows, owned = take_rows(x, train)
        if owned:
            release_pages(x)  # the fit reads the copy only
        own_times = (times[0][train], times[1][train])
        own_bins = None if binned is None else (mapper, row_view(binned, train))
        clf = fit_classifier(kind, rows, y[train], params, seed, times=own_times,
                             binned=own_bins)
        del rows
        rows, owned = take_rows(x, test)
        return positive_proba(clf, rows, owned=owned)


def fit_all_job(
    kind: ClassifierKind,
    x: FloatArray,
    y: IntArray,
    params: ModelParams,
    seed: int,
    score: bool,
    times: tuple[IntArray, IntArray],
    binned: npt.NDArray[np.uint8] | None = None,
    mapper: Any = None,
) -> tuple[Classifier, float]:
    """Fit ``kind`` on every row; with ``score`` also its accuracy on them (a pool job)."""
    with one_thread():
        own_bins = None if binned is None else (mapper, binned)
        clf = fit_classifier(kind, x, y, params, seed, times=times, binned=own_bins)
        accuracy = float(((positive_proba(clf, x) >= 0.5) == (y == 1)).mean()) if score else 0.0
        return clf, accuracy


def _run_batch(
    mapper: FitMapper,
    kind: ClassifierKind,
    x: FloatArray,
    y: IntArray,
    splits: list[tuple[IntArray, IntArray]],
    params: ModelParams,
    seed: int,
    score: bool,
    times: tuple[IntArray, IntArray],
) -> tuple[tuple[Classifier, float], list[FloatArray]]:
    """One batch: the fit on all rows plus a fit-and-predict per split, biggest first.

    Returns the full fit (and its accuracy if ``score``) and the held-out ``P(1)`` of each split
    in the order of ``splits``. ``times`` are the rows' observation and label-end times (a
    boosted fit stops early on the purged tail of its own rows; the batch's boosted fits share
    one binning of ``x`` from rows all of them train on, :func:`shared_bins`).
    """
    order = sorted(range(len(splits)), key=lambda i: -len(splits[i][0]))
    fits = [np.arange(len(y), dtype=np.int64), *(train for train, _ in splits)]
    bins = shared_bins(x, y, fits, times, params, seed) if kind == "hgb" else None
    shared = (None, None) if bins is None else (bins.binned, bins.mapper)
    jobs: list[tuple[Any, ...]] = [(fit_all_job, kind, x, y, params, seed, score, times, *shared)]
    jobs += [
        (fit_predict_job, kind, x, y, *splits[i], params, seed, times, *shared) for i in order
    ]
    results = mapper(_call, jobs)
    probs: list[FloatArray] = [np.empty(0)] * len(splits)
    for i, result in zip(order, results[1:], strict=True):
        probs[i] = result
    return results[0], probs


class _Fitted(NamedTuple):
    primary: Classifier
    meta: Classifier
    choice: ThresholdChoice
    metrics: dict[str, float]


def _fit_stack(
    x: FloatArray,
    y: IntArray,
    start: IntArray,
    end: IntArray,
    params: ModelParams,
    seed: int,
    mapper: FitMapper = serial_map,
) -> _Fitted:
    """Every fit of :func:`train_model`, as two batches of independent jobs for ``mapper``.

    Batch 1: the primary's out-of-fold fits (one per purged split) and its final fit on all rows
    (which depends on nothing else). Batch 2, on the out-of-fold rows batch 1 produced: the
    meta-labeler's threshold-tuning fits and its final fit. Each job is the same deterministic
    computation whichever process runs it (one BLAS / OpenMP thread, the same seed), so the
    result does not depend on the mapper. Jobs are listed biggest first (a pool starts them in
    that order, so the workers finish together).
    """
    splits = purged_walk_forward_splits(start, end, params.n_splits, params.embargo)
    primary_fit, oof_probs = _run_batch(
        mapper, params.primary, x, y, splits, params, seed, True, (start, end)
    )
    primary, train_accuracy = primary_fit
    oof = np.concatenate([test for _, test in splits])
    p_up = np.concatenate(oof_probs)
    correct = ((p_up >= 0.5) == (y[oof] == 1)).astype(np.int64)
    meta_x = meta_matrix(x, p_up, oof)
    release_pages(x)  # the meta-labeler's fits read meta_x only
    meta_splits = purged_walk_forward_splits(
        start[oof], end[oof], params.meta_splits, params.embargo
    )
    meta_fit, tuning_probs = _run_batch(
        mapper, params.meta, meta_x, correct, meta_splits, params, seed, False,
        (start[oof], end[oof]),
    )
    meta = meta_fit[0]
    confidence = np.concatenate(tuning_probs)
    tuned = np.concatenate([correct[test] == 1 for _, test in meta_splits])
    tuned_labels = np.concatenate([y[oof][test] for _, test in meta_splits])
    base_rate = majority_rate(tuned_labels)
    choice = choose_threshold(confidence, tuned, params, base_rate=base_rate)
    metrics = {
        "train_accuracy": train_accuracy,
        "test_accuracy": float(correct.mean()),
        "n_samples": float(len(y)),
        "n_oof_samples": float(len(oof)),
        "oof_base_rate": float(y[oof].mean()),
        "threshold_base_rate": base_rate,
        "meta_precision": choice.precision,
        "meta_coverage": choice.coverage,
        "threshold_score": choice.score,
    }
    return _Fitted(primary, meta, choice, metrics)


def train_model(
    features: pd.DataFrame,
    labels: pd.Series,
    label_end_times: pd.Series,
    *,
    params: ModelParams,
    model_id: str,
    created_at: datetime,
    seed: int,
    mapper: FitMapper = serial_map,
) -> TrainedModel:
    """Train primary + meta-labeler on purged walk-forward folds; deterministic for ``seed``.

    The independent fits run as jobs of ``mapper`` (:func:`_fit_stack`; a process pool's mapper
    runs them side by side); the model is the same whichever mapper runs them.

    ``features`` rows are samples (a ``(timestamp, symbol)`` panel or a ``DatetimeIndex``);
    ``labels`` (0/1) and ``label_end_times`` are aligned to them by index. Raises
    ``ValueError`` for NaN features, non-0/1 labels, a naive ``created_at`` or too little data.
    """
    if created_at.tzinfo is None:
        raise ValueError("created_at must be timezone-aware (UTC)")
    x, y, start, end = _aligned(features, labels, label_end_times)
    # In this thread, one thread limit for every fit (each pool job sets its own in its worker;
    # the limit is process-wide for BLAS, so it is not set here while the fits run elsewhere).
    with one_thread() if mapper is serial_map else contextlib.nullcontext():
        fitted = _fit_stack(x, y, start, end, params, seed, mapper)
    metrics = fitted.metrics
    logger.info(
        "trained model %s: train_accuracy=%.4f test_accuracy=%.4f confidence_threshold=%.2f",
        model_id,
        metrics["train_accuracy"],
        metrics["test_accuracy"],
        fitted.choice.threshold,
    )
    return TrainedModel(
        model_id=model_id,
        created_at=created_at,
        horizon=params.horizon,
        feature_names=tuple(str(c) for c in features.columns),
        primary=fitted.primary,
        meta=fitted.meta,
        confidence_threshold=fitted.choice.threshold,
        train_accuracy=metrics["train_accuracy"],
        test_accuracy=metrics["test_accuracy"],
        metrics=metrics,
        params=params,
    )
