"""The scikit-learn classifiers of the model and how they are fitted and applied, lean on memory.

Split from :mod:`aistock_actors.core.model.models` (which trains the primary + meta-labeler stack):
the classifier kinds, the boosted classifier's bounded and shared bins, ``P(class 1)`` of any
fitted classifier, the meta-labeler's input matrix and row views (the logistic pipeline is in
:mod:`aistock_actors.core.model.logistic`, the one-thread limit in
:mod:`aistock_actors.core.model.threads`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper

from aistock_actors.core.model.logistic import (
    fit_scaled,
    logistic_proba,
    make_logistic,
    scaled_steps,
)
from aistock_actors.core.model.threads import one_thread
from aistock_actors.core.model.validation import purged_tail_split

if TYPE_CHECKING:
    from aistock_actors.core.model.models import ModelParams

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ClassifierKind = Literal["logistic", "hgb"]

HGB_TAIL_FRACTION = 0.1
"""Share of a boosted fit's own time grid held out (purged, embargoed) to stop it early."""
HGB_MIN_TAIL_ROWS = 500
"""Fewer held-out rows than this make a too noisy stopping rule: the fit then runs
``hgb_max_iter`` iterations on all its rows, as before."""
HGB_N_ITER_NO_CHANGE = 10
"""Iterations without a better held-out log loss after which a boosted fit stops."""
HGB_BIN_SUBSAMPLE_ROWS = 20_000
"""Rows (a random subsample of the fit's OWN training rows) whose quantiles give a boosted
fit's bin thresholds; scikit-learn's default is 200,000, whose sorts were most of a fit's CPU."""
HGB_MIN_SHARED_BIN_ROWS = 5_000
"""Fewer rows common to every boosted fit of a batch than this: each fit bins its own rows."""


class Classifier(Protocol):
    """The part of the scikit-learn classifier API this module relies on."""

    def fit(self, x: FloatArray, y: IntArray) -> object: ...

    def predict_proba(self, x: FloatArray) -> FloatArray: ...


def positive_proba(classifier: Classifier, x: FloatArray, *, owned: bool = False) -> FloatArray:
    """Return ``P(class 1)`` from a fitted classifier, also when it only ever saw one class.

    ``owned``: ``x`` is a private copy the caller no longer needs, which a logistic pipeline
    stored before the float32 design matrix may then scale in place
    (:func:`~aistock_actors.core.model.logistic.logistic_proba`).
    """
    classes = list(getattr(classifier, "classes_", []))
    if 1 not in classes:
        return np.zeros(len(x))
    with one_thread():  # a 2-thread team can stall ~0.5-1 s on a busy machine (see one_thread)
        steps = scaled_steps(classifier)
        if steps is None:
            proba = np.asarray(classifier.predict_proba(x), dtype=np.float64)
        else:
            proba = logistic_proba(steps, x, owned)
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


def make_classifier(kind: ClassifierKind, params: ModelParams, seed: int) -> Classifier:
    """Return an unfitted scikit-learn classifier of ``kind`` (a boosted one without early
    stopping: :func:`fit_classifier` turns it on when it has a held-out tail)."""
    if kind == "logistic":
        pipeline: Classifier = make_logistic(params)
        return pipeline
    boosted: Classifier = _boosted(params, seed, early_stopping=False)
    return boosted


class BoundedBinsBooster(HistGradientBoostingClassifier):  # type: ignore[misc]
    """scikit-learn's boosted classifier whose bin thresholds come from at most
    :data:`HGB_BIN_SUBSAMPLE_ROWS` of its training rows (the same estimator otherwise).

    The thresholds are quantiles of a seeded random sample (with replacement, as scikit-learn
    draws it) of the rows ``fit`` trains on (never the early-stopping tail, never any row it was
    not given); with 255 bins a 20,000-row sample still puts ~80 rows in a bin. Finding them
    sorts the sample once per feature, so the cost of a fit's set-up falls ~10x (0.79 -> 0.07
    CPU-s for 240,000 x 27 rows). :meth:`fit_binned` takes rows already binned by a
    :class:`SharedBins` mapper instead.
    """

    _bin_mapper: Any

    def _bin_data(self, X: Any, sample_weight: Any, is_training_data: bool) -> Any:
        shared = getattr(self, "_shared", None)
        if shared is None:
            if is_training_data:
                self._bin_mapper.subsample = HGB_BIN_SUBSAMPLE_ROWS
            return super()._bin_data(X, sample_weight, is_training_data)
        mapper, binned, binned_val = shared
        if is_training_data:  # the trees take their split values from this mapper's thresholds
            self._bin_mapper = mapper
            return np.asfortranarray(binned)
        return np.ascontiguousarray(binned_val)

    def fit_binned(
        self, mapper: Any, x: FloatArray, y: IntArray, x_val: FloatArray, y_val: IntArray,
        binned: npt.NDArray[np.uint8], binned_val: npt.NDArray[np.uint8],
    ) -> BoundedBinsBooster:
        """Fit on ``x`` and stop on ``x_val`` whose bins by ``mapper`` (a fitted scikit-learn
        ``_BinMapper``) are ``binned`` and ``binned_val``: the fit uses those bins instead of
        binning the rows again (the rows themselves only pass scikit-learn's input checks, so
        a view of them is not copied); the fitted model predicts from raw rows like any other."""
        self._shared = (mapper, binned, binned_val)
        try:
            self.fit(x, y, X_val=x_val, y_val=y_val)
        finally:
            del self._shared
        return self


def row_view(a: npt.NDArray[Any], positions: IntArray) -> npt.NDArray[Any]:
    """``a[positions]``, as a slice (a view, any layout) when the positions are consecutive."""
    n = len(positions)
    if n and int(positions[-1]) - int(positions[0]) == n - 1 and bool(
        (np.diff(positions) == 1).all()
    ):
        return a[int(positions[0]) : int(positions[-1]) + 1]
    return a[positions]


class SharedBins(NamedTuple):
    """One binning of a batch's rows for every boosted fit of the batch (:func:`shared_bins`)."""

    mapper: Any
    """The fitted scikit-learn ``_BinMapper`` (thresholds from rows every fit trains on)."""
    binned: npt.NDArray[np.uint8]
    """Every row of the batch's ``x``, binned by :attr:`mapper`."""


def _tail_split(
    y: IntArray, times: tuple[IntArray, IntArray], params: ModelParams
) -> tuple[IntArray, IntArray] | None:
    """The purged (head, tail) of a boosted fit's rows, or ``None`` when it cannot stop early
    (a too short grid or tail, a single-class head): the one rule of :func:`fit_early_stopped`
    and :func:`shared_bins`."""
    split = purged_tail_split(times[0], times[1], HGB_TAIL_FRACTION, params.embargo)
    if split is None:
        return None
    head, tail = split
    if len(tail) < HGB_MIN_TAIL_ROWS or np.unique(y[head]).size < 2:
        return None
    return split


def shared_bins(
    x: FloatArray,
    y: IntArray,
    fits: list[IntArray],
    times: tuple[IntArray, IntArray],
    params: ModelParams,
    seed: int,
) -> SharedBins | None:
    """Bin ``x`` once for the boosted fits on rows ``fits`` (positions into ``x``) of a batch.

    The thresholds are quantiles of a seeded sample of at most :data:`HGB_BIN_SUBSAMPLE_ROWS`
    of the rows in the purged head of EVERY early-stopped fit of the batch (the intersection of
    their heads: the threshold-tuning fits and the final fit train on growing windows, so it is
    the first one's head): no fit's binning sees a row it does not train on. ``None`` (each fit
    bins its own rows) unless that leaves :data:`HGB_MIN_SHARED_BIN_ROWS` rows.
    """
    common: IntArray | None = None
    for rows in fits:
        split = _tail_split(y[rows], (times[0][rows], times[1][rows]), params)
        if split is None:
            continue  # that fit runs without early stopping and bins its own rows
        head = rows[split[0]]
        common = head if common is None else np.intersect1d(common, head, assume_unique=True)
    if common is None or len(common) < HGB_MIN_SHARED_BIN_ROWS:
        return None
    common = np.sort(common)
    if len(common) > HGB_BIN_SUBSAMPLE_ROWS:  # as scikit-learn samples: seeded, with replacement
        rng = np.random.default_rng(seed)
        common = common[rng.choice(len(common), HGB_BIN_SUBSAMPLE_ROWS, replace=True)]
    mapper = _BinMapper(n_bins=256, subsample=None, random_state=seed, n_threads=1)
    mapper.fit(x[common])  # a copy of the sample only, not of every common row
    return SharedBins(mapper, mapper.transform(x))


def _boosted(params: ModelParams, seed: int, *, early_stopping: bool) -> BoundedBinsBooster:
    """The boosted classifier of ``params``; ``early_stopping`` when given a held-out tail."""
    return BoundedBinsBooster(
        learning_rate=params.hgb_learning_rate,
        max_iter=params.hgb_max_iter,
        max_depth=params.hgb_max_depth,
        min_samples_leaf=params.hgb_min_samples_leaf,
        l2_regularization=1.0,
        early_stopping=early_stopping,
        n_iter_no_change=HGB_N_ITER_NO_CHANGE,
        random_state=seed,
    )


def fit_early_stopped(
    x: FloatArray,
    y: IntArray,
    params: ModelParams,
    seed: int,
    times: tuple[IntArray, IntArray],
    binned: tuple[Any, npt.NDArray[np.uint8]] | None = None,
) -> BoundedBinsBooster | None:
    """A boosted fit on the purged head of its rows, stopped early on their most recent tail.

    ``times`` are the observation and label-end times of ``x``'s rows. The tail
    (:data:`HGB_TAIL_FRACTION` of the rows' own time grid, :func:`purged_tail_split`) is only
    scored, never fitted on; the head keeps the rows whose label ends ``params.embargo`` bars
    before the tail starts. Boosting stops after :data:`HGB_N_ITER_NO_CHANGE` iterations without
    a better held-out log loss (at most ``hgb_max_iter``). Everything comes from the rows given:
    a fold's fit sees nothing after them. ``binned``: a :class:`SharedBins` mapper and ``x``'s
    rows binned by it (the fit then skips its own binning). ``None`` when the tail would be too
    small (:data:`HGB_MIN_TAIL_ROWS`) or the head holds one class only.
    """
    split = _tail_split(y, times, params)
    if split is None:
        return None
    head, tail = split
    model = _boosted(params, seed, early_stopping=True)
    x_head, _ = take_rows(x, head)
    x_tail, _ = take_rows(x, tail)
    if binned is not None:
        mapper, rows = binned
        return model.fit_binned(mapper, x_head, y[head], x_tail, y[tail],
                                row_view(rows, head), row_view(rows, tail))
    model.fit(x_head, y[head], X_val=x_tail, y_val=y[tail])
    return model


def fit_classifier(
    kind: ClassifierKind,
    x: FloatArray,
    y: IntArray,
    params: ModelParams,
    seed: int,
    *,
    times: tuple[IntArray, IntArray] | None = None,
    binned: tuple[Any, npt.NDArray[np.uint8]] | None = None,
) -> Classifier:
    """Fit a classifier; a single-class target gets a prior-only model instead of an error.

    A logistic fit holds one float32 copy of ``x``
    (:func:`~aistock_actors.core.model.logistic.fit_scaled`). ``times``: the rows'
    observation and label-end times; a boosted fit then stops early on its purged most recent
    tail (:func:`fit_early_stopped`, on ``binned`` rows when given) instead of running every
    iteration on all rows.
    """
    if kind == "hgb" and times is not None and np.unique(y).size >= 2:
        stopped = fit_early_stopped(x, y, params, seed, times, binned)
        if stopped is not None:
            fitted: Classifier = stopped
            return fitted
    model: Classifier = (
        DummyClassifier(strategy="prior")
        if np.unique(y).size < 2
        else make_classifier(kind, params, seed)
    )
    steps = scaled_steps(model)
    if steps is None:
        model.fit(x, y)
    else:
        fit_scaled(steps, x, y)
    return model


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
