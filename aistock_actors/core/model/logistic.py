"""The logistic model: ``scaler -> clip -> LogisticRegression``, fitted and applied lean on memory.

Split from :mod:`aistock_actors.core.model.classifiers`. The scaler's statistics are added up
chunk by chunk (:class:`ChunkedScaler`); the pipeline is fitted by Newton steps
(:data:`LOGISTIC_SOLVER`) on one float32 copy of its scaled, clipped rows (:func:`clip_float32`);
:func:`fit_scaled` and :func:`logistic_proba` run its steps with the same calls on the same
values as ``Pipeline.fit`` / ``predict_proba``, without ``Pipeline``'s extra copies. Models
stored before the float32 rows (``np.clip``, L-BFGS) are applied exactly as they always were.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from aistock_actors.core.model.memory_hints import release_pages

if TYPE_CHECKING:
    from aistock_actors.core.model.models import ModelParams

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_Z_CLIP = 6.0
"""Standardised features are clipped to +-6 sd so one outlier bar cannot dominate a linear fit."""

LOGISTIC_SOLVER = "newton-cholesky"
"""Solver of the logistic models. Their L2-regularised log loss has one minimum: Newton steps
with the exact Hessian reach it in 2 iterations (max |gradient| ~3e-8), where L-BFGS, used
before, took 25-36 and stopped at its 1e-4 tolerance with coefficients up to 0.02 away from it
along the flat directions of correlated features. ~5x less CPU per fit (bench/README section 4,
"round 4", with the effect on the demo's candidates)."""
LOGISTIC_MAX_ITER = 100
"""Newton iterations at most (scikit-learn falls back to L-BFGS if a Newton step fails)."""
_SCALE_CHUNK_ROWS = 16_384
"""Rows scaled at a time by :func:`_scaled_float32`, and whose statistics
:class:`ChunkedScaler` adds at a time (a ~3 MB float64 transient)."""


class ChunkedScaler(StandardScaler):  # type: ignore[misc]
    """scikit-learn's ``StandardScaler`` whose ``fit`` is its ``partial_fit`` (the library's
    out-of-core path) over :data:`_SCALE_CHUNK_ROWS` rows at a time.

    ``StandardScaler.fit`` holds a float64 temporary ``X - mean`` and a NaN mask of the whole
    input (1.13x the rows): in a pool worker, on top of the memory-mapped rows it reads, that
    was the largest moment of a logistic fit. Chunk by chunk, the statistics agree with the
    one-pass ``fit``'s to rounding (~1e-15 relative; tested), and ``Pipeline.fit`` uses the
    same method, so a fitted pipeline is still exactly ``Pipeline.fit``'s.
    """

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> ChunkedScaler:
        if sample_weight is not None or len(X) <= _SCALE_CHUNK_ROWS:  # also no rows: its error
            super().fit(X, y, sample_weight)
            return self
        self._reset()
        for start in range(0, len(X), _SCALE_CHUNK_ROWS):
            self.partial_fit(X[start : start + _SCALE_CHUNK_ROWS])
        return self


def make_logistic(params: ModelParams) -> Pipeline:
    """The unfitted logistic pipeline of ``params`` (its inverse L2 strength)."""
    return make_pipeline(
        ChunkedScaler(),
        FunctionTransformer(clip_float32, kw_args={"a_min": -_Z_CLIP, "a_max": _Z_CLIP}),
        LogisticRegression(
            C=params.regularization_c, solver=LOGISTIC_SOLVER, max_iter=LOGISTIC_MAX_ITER
        ),
    )


def logistic_proba(
    steps: tuple[StandardScaler, FunctionTransformer, Any], x: FloatArray, owned: bool
) -> FloatArray:
    """``predict_proba`` of :func:`scaled_steps`' fitted pipeline on ``x``, step by step.

    ``owned``: ``x`` is a private copy the caller no longer needs, which a pipeline stored
    before the float32 rows scales and clips in place (this version's reads ``x`` only).
    """
    scaler, clip, final = steps
    if clip.func is clip_float32:
        xt: npt.NDArray[Any] = _scaled_float32(scaler, clip, x)
    else:  # a model stored before the float32 design matrix
        xt = scaler.transform(x, copy=not _writable(x, owned))
        _clip_in_place(clip, xt)
    return np.asarray(final.predict_proba(xt), dtype=np.float64)


def scaled_steps(classifier: Any) -> tuple[StandardScaler, FunctionTransformer, Any] | None:
    """The steps of a ``scaler -> FunctionTransformer(clip) -> estimator`` pipeline
    (the pipeline of :func:`make_logistic`: a :class:`ChunkedScaler` and ``clip`` =
    :func:`clip_float32`; or a ``StandardScaler`` and ``np.clip`` in a model stored before
    them), else ``None``.

    Such a pipeline is fitted and applied step by step here, with the same calls on the same
    values as ``Pipeline.fit`` / ``predict_proba`` (the fitted object pickles to the same bytes;
    ``tests/core/model/test_models_memory.py``), but without ``Pipeline``'s live copies: its
    input, the float64 scaled copy and the clipped copy at once (the largest transient of
    training). This version's pipeline is scaled and clipped chunk by chunk into its one float32
    copy (:func:`_scaled_float32`); an older one clips its scaled copy IN PLACE and, when the
    input is a private copy (``owned``), scales that in place too.
    """
    if type(classifier) is not Pipeline or len(classifier.steps) != 3:
        return None
    scaler, clip, final = (step for _, step in classifier.steps)
    if type(scaler) not in (StandardScaler, ChunkedScaler) or type(clip) is not FunctionTransformer:
        return None
    if clip.func not in (np.clip, clip_float32) or clip.validate or clip.inverse_func is not None:
        return None
    return scaler, clip, final


def clip_float32(x: FloatArray, a_min: float, a_max: float) -> npt.NDArray[np.float32]:
    """The clip step of the logistic pipeline: ``np.clip(x, a_min, a_max)`` as a C-ordered
    float32 array, so the solver reads half the bytes and its Hessian product holds a half-size
    copy (:data:`LOGISTIC_SOLVER`). Standardised, clipped features need no more than float32's
    7 digits: the fitted probabilities agree with a float64 fit's to ~2e-5 (bench/README §4)."""
    out = np.empty(np.shape(x), dtype=np.float32)
    np.clip(x, a_min, a_max, out=out)
    return out


def _scaled_float32(
    scaler: StandardScaler, clip: FunctionTransformer, x: FloatArray
) -> npt.NDArray[np.float32]:
    """``clip.transform(scaler.transform(x))`` with ``clip`` = :func:`clip_float32`, the
    scaler's own ``transform`` run :data:`_SCALE_CHUNK_ROWS` rows at a time (element-wise, so
    bit-identical), without its float64 copy of the whole of ``x``."""
    out = np.empty(np.shape(x), dtype=np.float32)
    for start in range(0, len(x), _SCALE_CHUNK_ROWS):
        chunk = scaler.transform(x[start : start + _SCALE_CHUNK_ROWS])  # a scaled float64 copy
        np.clip(chunk, **(clip.kw_args or {}), out=out[start : start + len(chunk)])
    return out


def _writable(x: FloatArray, owned: bool) -> bool:
    """Whether ``x`` may be overwritten: a private, writable, C-ordered float64 copy."""
    return owned and x.dtype == np.float64 and x.flags.c_contiguous and x.flags.writeable


def _clip_in_place(clip: FunctionTransformer, x: FloatArray) -> None:
    """``clip.transform(x)`` (``np.clip`` with its arguments), written into ``x``."""
    np.clip(x, **(clip.kw_args or {}), out=x)


def fit_scaled(
    steps: tuple[StandardScaler, FunctionTransformer, Any], x: FloatArray, y: IntArray
) -> None:
    """``Pipeline.fit`` of :func:`make_logistic`'s pipeline, with one float32 copy
    of ``x`` instead of ``Pipeline.fit``'s float64 scaled copy, clipped copy and float32 copy.

    The final estimator gets the scaled, clipped float32 rows in C order, as ``Pipeline.fit``
    hands them over; scaling and clipping are element-wise, so neither the layout nor the chunk
    they run in changes a value (the fitted object pickles to ``Pipeline.fit``'s bytes).
    """
    scaler, clip, final = steps
    scaler.fit(x)
    xt = _scaled_float32(scaler, clip, x)
    release_pages(x)  # the fit reads the float32 copy only
    clip.fit(xt)
    final.fit(xt, y)
