"""Primary direction model plus meta-labeler (López de Prado), with a tuned, stored threshold.

Training, all on purged walk-forward splits (:mod:`aistock_actors.core.model.validation`):

1. the primary classifier predicts ``P(up)``; its out-of-fold (OOF) accuracy is ``test_accuracy``;
2. the meta-labeler learns, from the features and the primary's OOF probability, whether acting on
   the primary's side would have been right ("does this bet pay?");
3. ``confidence_threshold`` is tuned on the meta-labeler's own out-of-sample predictions and
   stored in the model (T6): :meth:`TrainedModel.signals` filters with it and nothing else;
4. both are refitted on all the data they may see.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Literal, NamedTuple, Protocol

import msgspec
import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from aistock_actors.core.model.validation import as_int_times, purged_walk_forward_splits
from aistock_actors.runtime.memory import release_mapped_pages

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ClassifierKind = Literal["logistic", "hgb"]

_Z_CLIP = 6.0
"""Standardised features are clipped to +-6 sd so one outlier bar cannot dominate a linear fit."""


class Classifier(Protocol):
    """The part of the scikit-learn classifier API this module relies on."""

    def fit(self, x: FloatArray, y: IntArray) -> object: ...

    def predict_proba(self, x: FloatArray) -> FloatArray: ...


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


class ThresholdChoice(NamedTuple):
    """Outcome of :func:`choose_threshold` on held-out meta-labeler predictions."""

    threshold: float
    precision: float
    """Share of kept signals whose side was right (0 if none kept)."""
    coverage: float
    """Share of signals kept."""
    score: float
    """Best edge found over the majority-side base rate (:func:`edge_z`), in standard errors."""


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


def positive_proba(classifier: Classifier, x: FloatArray, *, owned: bool = False) -> FloatArray:
    """Return ``P(class 1)`` from a fitted classifier, also when it only ever saw one class.

    ``owned``: ``x`` is a private copy the caller no longer needs, which the logistic pipeline
    may then scale in place (:func:`_scaled_steps`).
    """
    classes = list(getattr(classifier, "classes_", []))
    if 1 not in classes:
        return np.zeros(len(x))
    with one_thread():  # a 2-thread team can stall ~0.5-1 s on a busy machine (see one_thread)
        steps = _scaled_steps(classifier)
        if steps is None:
            proba = np.asarray(classifier.predict_proba(x), dtype=np.float64)
        else:
            scaler, clip, final = steps
            xt = scaler.transform(x, copy=not _writable(x, owned))
            _clip_in_place(clip, xt)
            proba = np.asarray(final.predict_proba(xt), dtype=np.float64)
    return np.asarray(proba[:, classes.index(1)], dtype=np.float64)


def meta_matrix(x: FloatArray, p_up: FloatArray, rows: IntArray | None = None) -> FloatArray:
    """Meta-labeler inputs: the features, the primary's ``P(up)`` and its distance from 0.5.

    With ``rows``, the features are ``x[rows]``, written straight into the result (C order, as
    ``np.column_stack`` gives for the C-ordered ``x[rows]``) instead of being copied twice.
    """
    if rows is None:
        return np.column_stack([x, p_up, np.abs(p_up - 0.5)])
    width = x.shape[1]
    out = np.empty((len(rows), width + 2), dtype=np.result_type(x, p_up))
    for start in range(0, len(rows), _COPY_CHUNK_ROWS):
        chunk = rows[start : start + _COPY_CHUNK_ROWS]
        out[start : start + len(chunk), :width] = x[chunk]
    out[:, width] = p_up
    out[:, width + 1] = np.abs(p_up - 0.5)
    return out


_COPY_CHUNK_ROWS = 65_536
"""Rows copied at a time by :func:`meta_matrix` (a 10 MB transient instead of the whole copy)."""


def _scaled_steps(classifier: Any) -> tuple[StandardScaler, FunctionTransformer, Any] | None:
    """The steps of a ``StandardScaler -> FunctionTransformer(np.clip) -> estimator`` pipeline
    (the logistic model of :func:`make_classifier`), else ``None``.

    Such a pipeline is fitted and applied step by step here, with the same calls on the same
    values as ``Pipeline.fit`` / ``predict_proba`` (the fitted object pickles to the same bytes;
    ``tests/core/model/test_models_memory.py``), but the scaled copy is clipped IN PLACE and, when
    the input is a private copy (``owned``), scaled in place too: ``Pipeline`` keeps its input,
    the scaled copy and the clipped copy alive at once (3 copies of the rows; the largest
    transient of training), this keeps 1 or 2.
    """
    if type(classifier) is not Pipeline or len(classifier.steps) != 3:
        return None
    scaler, clip, final = (step for _, step in classifier.steps)
    if type(scaler) is not StandardScaler or type(clip) is not FunctionTransformer:
        return None
    if clip.func is not np.clip or clip.validate or clip.inverse_func is not None:
        return None
    return scaler, clip, final


def _writable(x: FloatArray, owned: bool) -> bool:
    """Whether ``x`` may be overwritten: a private, writable, C-ordered float64 copy."""
    return owned and x.dtype == np.float64 and x.flags.c_contiguous and x.flags.writeable


def _clip_in_place(clip: FunctionTransformer, x: FloatArray) -> None:
    """``clip.transform(x)`` (``np.clip`` with its arguments), written into ``x``."""
    np.clip(x, **(clip.kw_args or {}), out=x)


def _fit_scaled(
    steps: tuple[StandardScaler, FunctionTransformer, Any], x: FloatArray, y: IntArray, owned: bool
) -> None:
    """``Pipeline.fit`` of :func:`_scaled_steps`'s pipeline, with one copy of ``x`` at most.

    The final estimator gets the scaled, clipped rows in C order, as ``Pipeline.fit`` hands
    them over (a logistic regression makes a C-ordered copy of any other layout); scaling and
    clipping are element-wise, so the layout they run in changes no value.
    """
    scaler, clip, final = steps
    scaler.fit(x)
    if _writable(x, owned):
        xt = x
    else:  # x's own dtype object when it is float64, as the estimator's C-ordered copy keeps it
        xt = np.array(x, dtype=None if x.dtype == np.float64 else np.float64, order="C")
        release_mapped_pages(x)  # the fit reads the copy only
    xt = scaler.transform(xt, copy=False)
    clip.fit(xt)
    _clip_in_place(clip, xt)
    final.fit(xt, y)


def make_classifier(kind: ClassifierKind, params: ModelParams, seed: int) -> Classifier:
    """Return an unfitted scikit-learn classifier of ``kind``."""
    if kind == "logistic":
        pipeline: Classifier = make_pipeline(
            StandardScaler(),
            FunctionTransformer(np.clip, kw_args={"a_min": -_Z_CLIP, "a_max": _Z_CLIP}),
            LogisticRegression(C=params.regularization_c, max_iter=2000),
        )
        return pipeline
    boosted: Classifier = HistGradientBoostingClassifier(
        learning_rate=params.hgb_learning_rate,
        max_iter=params.hgb_max_iter,
        max_depth=params.hgb_max_depth,
        min_samples_leaf=params.hgb_min_samples_leaf,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=seed,
    )
    return boosted


def fit_classifier(
    kind: ClassifierKind,
    x: FloatArray,
    y: IntArray,
    params: ModelParams,
    seed: int,
    *,
    owned: bool = False,
) -> Classifier:
    """Fit a classifier; a single-class target gets a prior-only model instead of an error.

    ``owned``: ``x`` is a private copy the caller no longer needs (the logistic pipeline then
    scales it in place, see :func:`_scaled_steps`; the model is the same).
    """
    model: Classifier = (
        DummyClassifier(strategy="prior")
        if np.unique(y).size < 2
        else make_classifier(kind, params, seed)
    )
    steps = _scaled_steps(model)
    if steps is None:
        model.fit(x, y)
    else:
        _fit_scaled(steps, x, y, owned)
    return model


def edge_z(precision: float, kept: int, base_rate: float) -> float:
    """Edge of ``precision`` over ``base_rate`` in standard errors of a ``kept``-signal sample.

    ``(precision - base) / sqrt(base (1 - base) / kept)``; with a base rate of 0.5 this is the
    coin-flip test ``2 (precision - 0.5) sqrt(kept)``. A degenerate base (0 or 1) gives 0.
    """
    base = min(max(base_rate, 0.5), 1.0)
    if kept <= 0 or base >= 1.0:
        return 0.0
    return (precision - base) * math.sqrt(kept) / math.sqrt(base * (1.0 - base))


def choose_threshold(
    confidence: FloatArray,
    correct: npt.NDArray[np.bool_],
    params: ModelParams,
    *,
    base_rate: float,
) -> ThresholdChoice:
    """Pick the threshold in ``[threshold_min, threshold_max]`` with the most significant edge.

    ``correct[i]`` says whether acting on held-out signal ``i`` paid. The edge is measured
    against ``base_rate``, the precision of always betting the majority side of the held-out
    labels (``max(p_up, 1 - p_up)``, see :func:`majority_rate`), not against a coin flip: in a
    drifting market "always long" is right more than half of the time without any skill.
    Eligible thresholds keep at least ``min_selected_fraction`` of the signals (and 10). If no
    threshold's edge reaches ``min_edge_z`` the strictest threshold is returned, so a useless
    model barely trades.
    """
    grid = np.round(
        np.arange(
            params.threshold_min,
            params.threshold_max + params.threshold_step / 2,
            params.threshold_step,
        ),
        6,
    )
    min_kept = max(10, math.ceil(params.min_selected_fraction * len(confidence)))
    best = ThresholdChoice(float(params.threshold_max), 0.0, 0.0, -math.inf)
    for tau in grid:
        kept = confidence >= tau
        n = int(kept.sum())
        if n < min_kept:
            continue
        precision = float(correct[kept].mean())
        score = edge_z(precision, n, base_rate)
        if score > best.score:
            best = ThresholdChoice(float(tau), precision, n / len(confidence), score)
    if best.score >= params.min_edge_z:
        return best
    tau = float(params.threshold_max)
    kept = confidence >= tau
    precision = float(correct[kept].mean()) if kept.any() else 0.0
    score = best.score if math.isfinite(best.score) else 0.0
    return ThresholdChoice(tau, precision, float(kept.mean()) if len(kept) else 0.0, score)


def majority_rate(labels: IntArray) -> float:
    """``max(p_up, 1 - p_up)`` of 0/1 ``labels``: the no-skill precision (0.5 when empty)."""
    if len(labels) == 0:
        return 0.5
    p_up = float(np.mean(labels))
    return max(p_up, 1.0 - p_up)


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


_LIMITED = threading.local()


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """One BLAS / OpenMP thread for the fits and predictions inside (a no-op inside one).

    These small fits run several times faster than with contended threads, the timing is
    predictable, and parallelism belongs to the process pool above us. Predictions too: with
    the default two threads, a small HGB / logistic prediction (~10 ms) now and then took
    0.5-1.1 s on a busy machine, waiting for the OpenMP / BLAS team's second thread to be
    scheduled (measured: 1 to 2 calls in 60, on 2 cores at load 3). Entering
    ``threadpool_limits`` costs ~1.5 ms (it scans the loaded libraries), so a serial
    :func:`train_model` enters it once for all its fits, and a pool job once for its fit.
    """
    if getattr(_LIMITED, "active", False):
        yield
        return
    with threadpool_limits(limits=1):
        _LIMITED.active = True
        try:
            yield
        finally:
            _LIMITED.active = False


def fit_predict_job(
    kind: ClassifierKind,
    x: FloatArray,
    y: IntArray,
    train: IntArray,
    test: IntArray,
    params: ModelParams,
    seed: int,
) -> FloatArray:
    """Fit ``kind`` on rows ``train`` and return ``P(1)`` on rows ``test`` (a pool job).

    ``x`` and ``y`` are the whole arrays, shared by every job of a batch (read-only).
    """
    with one_thread():
        rows, owned = take_rows(x, train)
        if owned:
            release_mapped_pages(x)  # the fit reads the copy only
        clf = fit_classifier(kind, rows, y[train], params, seed, owned=owned)
        del rows
        rows, owned = take_rows(x, test)
        return positive_proba(clf, rows, owned=owned)


def take_rows(x: FloatArray, positions: IntArray) -> tuple[FloatArray, bool]:
    """``x[positions]`` and whether it is a private copy.

    Consecutive positions of a C-ordered ``x`` give a view of those rows: the same values in
    the same (C) layout as the copy ``x[positions]`` would make, so a fit or a prediction
    cannot tell them apart; anything else is copied (``x[positions]``, C-ordered).
    """
    n = len(positions)
    if (
        n
        and x.flags.c_contiguous
        and int(positions[-1]) - int(positions[0]) == n - 1
        and bool((np.diff(positions) == 1).all())
    ):
        return x[int(positions[0]) : int(positions[-1]) + 1], False
    return x[positions], True


def fit_all_job(
    kind: ClassifierKind,
    x: FloatArray,
    y: IntArray,
    params: ModelParams,
    seed: int,
    score: bool,
) -> tuple[Classifier, float]:
    """Fit ``kind`` on every row; with ``score`` also its accuracy on them (a pool job)."""
    with one_thread():
        clf = fit_classifier(kind, x, y, params, seed)
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
) -> tuple[tuple[Classifier, float], list[FloatArray]]:
    """One batch: the fit on all rows plus a fit-and-predict per split, biggest first.

    Returns the full fit (and its accuracy if ``score``) and the held-out ``P(1)`` of each split
    in the order of ``splits``.
    """
    order = sorted(range(len(splits)), key=lambda i: -len(splits[i][0]))
    jobs: list[tuple[Any, ...]] = [(fit_all_job, kind, x, y, params, seed, score)]
    jobs += [(fit_predict_job, kind, x, y, *splits[i], params, seed) for i in order]
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
    primary_fit, oof_probs = _run_batch(mapper, params.primary, x, y, splits, params, seed, True)
    primary, train_accuracy = primary_fit
    oof = np.concatenate([test for _, test in splits])
    p_up = np.concatenate(oof_probs)
    correct = ((p_up >= 0.5) == (y[oof] == 1)).astype(np.int64)
    meta_x = meta_matrix(x, p_up, oof)
    release_mapped_pages(x)  # the meta-labeler's fits read meta_x only
    meta_splits = purged_walk_forward_splits(
        start[oof], end[oof], params.meta_splits, params.embargo
    )
    meta_fit, tuning_probs = _run_batch(
        mapper, params.meta, meta_x, correct, meta_splits, params, seed, False
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
