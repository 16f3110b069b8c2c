"""What the pipeline needs of the train -> backtest hand-over: its interface and content key.

The hand-over object itself is process state and lives in
:mod:`aistock_actors.runtime.handover` (one per supervisor, given to the Trainer and the
Backtester); the pipeline functions take it as a parameter and never hold one.
"""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Callable
from typing import Protocol

import numpy as np
import pandas as pd

from aistock_actors.core.model.labels import TrainingSet


class TrainingSetHandOver(Protocol):
    """Keeps one training set for the next build of the same content (one use)."""

    def offer(
        self, frames: dict[str, pd.DataFrame], horizon: int, data: TrainingSet,
        builder: Callable[..., object],
    ) -> None: ...

    def take(
        self, frames: dict[str, pd.DataFrame], horizon: int, builder: Callable[..., object]
    ) -> TrainingSet | None: ...

    def clear(self) -> None: ...


CURRENT: contextvars.ContextVar[TrainingSetHandOver | None] = contextvars.ContextVar(
    "hand_over", default=None
)
"""The hand-over of the pipeline call in progress (set by ``train_candidate`` and
``walk_forward_backtest`` from their ``hand_over`` parameter, so the two-argument
``make_training_set`` seam keeps its signature)."""
OFFERING: contextvars.ContextVar[bool] = contextvars.ContextVar("offering", default=False)
"""Set while ``pipeline.train_candidate`` builds with a hand-over."""


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
