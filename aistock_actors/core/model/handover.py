"""The training set handed from the train step to the backtest step of the same process.

Split from :mod:`aistock_actors.core.model.pipeline` (its ``make_training_set`` and
``train_candidate`` use it): one slot, keyed by a content hash of the bars and the horizon.
"""

from __future__ import annotations

import contextvars
import hashlib
import threading
from collections.abc import Callable

import numpy as np
import pandas as pd

from aistock_actors.core.model.labels import TrainingSet

OFFERING: contextvars.ContextVar[bool] = contextvars.ContextVar("offering", default=False)
"""Set while ``pipeline.train_candidate`` builds with ``hand_over=True``."""


class HandOver:
    """One training set passed from the train step to the backtest step of the same process.

    Both steps build the same training set from the same bars (3.3 s and a ~0.7 GB transient at 500
    symbols x 2,520 bars). The Trainer keeps the set it built (only a set built here, by
    :func:`~aistock_actors.core.model.labels.build_training_set`: never one from a replaced seam);
    the next ``pipeline.make_training_set`` with the SAME content (a hash of every frame's symbol,
    index, columns, dtypes and values, the horizon and the builder) takes it: one use, so the slot
    holds nothing between cycles once the backtest ran, and a failed training empties it. Different
    content builds as before. Callers must not write into a training set (nobody does: the pool
    maps it read-only).
    """

    def __init__(self, key: Callable[[dict[str, pd.DataFrame], int], bytes | None]) -> None:
        self._key = key
        """The content key of a set of frames and a horizon (:func:`content_key` with the
        caller's builder)."""
        self._lock = threading.Lock()
        self._slot: tuple[bytes, TrainingSet] | None = None

    def offer(self, frames: dict[str, pd.DataFrame], horizon: int, data: TrainingSet) -> None:
        key = self._key(frames, horizon)
        with self._lock:
            self._slot = (key, data) if key is not None else None

    def take(self, frames: dict[str, pd.DataFrame], horizon: int) -> TrainingSet | None:
        with self._lock:
            if self._slot is None:
                return None
        key = self._key(frames, horizon)
        with self._lock:
            if self._slot is None or key is None or self._slot[0] != key:
                return None
            data, self._slot = self._slot[1], None
            return data

    def clear(self) -> None:
        with self._lock:
            self._slot = None


def content_key(
    frames: dict[str, pd.DataFrame], horizon: int, builder: Callable[..., object]
) -> bytes | None:
    """A digest of the frames' content, ``horizon`` and the ``builder`` that builds the set from
    them (``None`` for a non-numeric column)."""
    name = f"{builder.__module__}.{builder.__qualname__}"
    digest = hashlib.blake2b(f"{name};horizon={horizon};".encode(), digest_size=32)
    for symbol in sorted(frames):
        frame = frames[symbol]
        index = frame.index
        if not isinstance(index, pd.DatetimeIndex):
            return None
        head = f"|{symbol}|{len(frame)}|{index.dtype}|{list(frame.columns)}|{list(frame.dtypes)}|"
        digest.update(head.encode())
        digest.update(np.ascontiguousarray(index.asi8).data)
        for column in frame.columns:
            values = frame[column].to_numpy()
            if values.dtype.kind not in "fiub":
                return None
            digest.update(np.ascontiguousarray(values).data)
    return digest.digest()
