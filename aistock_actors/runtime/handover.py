"""What the train step hands to the backtest step of the same process: one object per supervisor.

The supervisor creates one :class:`HandOver` and gives it to the Trainer and the Backtester
through their :class:`~aistock_actors.actors.base.ActorContext`; the pipeline functions take it
as a parameter (``core/`` holds no process state). It carries the ML recipe's training set and
the selected strategy's walk-forward report, each for one use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pandas as pd

from aistock_actors.core.model.handover import content_key
from aistock_actors.core.model.labels import TrainingSet
from aistock_actors.core.strategy.walkforward import StrategyReport, walk_forward_strategy


class HandOver:
    """One training set and one strategy report passed from the train step to the backtest step.

    Both steps build the same training set from the same bars (3.3 s and a ~0.7 GB transient at
    500 symbols x 2,520 bars). The Trainer keeps the set it built (only a set built by the
    pipeline's real builder: never one from a replaced seam); the next ``make_training_set``
    with the SAME content (a hash of every frame's symbol, index, columns, dtypes and values, the
    horizon and the builder) takes it: one use, so the slot holds nothing between cycles once the
    backtest ran, and a failed training empties it. Different content builds as before. Callers
    must not write into a training set (nobody does: the pool maps it read-only).

    The strategy report of a candidate-set cycle (:meth:`offer_report`) is taken by the
    Backtester for the same model id and bars; after a restart there is none and the Backtester
    recomputes it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slot: tuple[bytes, TrainingSet] | None = None
        self._report: tuple[str, bytes, StrategyReport] | None = None

    def offer(
        self, frames: dict[str, pd.DataFrame], horizon: int, data: TrainingSet,
        builder: Callable[..., object],
    ) -> None:
        key = content_key(frames, horizon, builder)
        with self._lock:
            self._slot = (key, data) if key is not None else None

    def take(
        self, frames: dict[str, pd.DataFrame], horizon: int, builder: Callable[..., object]
    ) -> TrainingSet | None:
        with self._lock:
            if self._slot is None:
                return None
        key = content_key(frames, horizon, builder)
        with self._lock:
            if self._slot is None or key is None or self._slot[0] != key:
                return None
            data, self._slot = self._slot[1], None
            return data

    def clear(self) -> None:
        with self._lock:
            self._slot = None
            self._report = None

    def offer_report(
        self, model_id: str, frames: dict[str, pd.DataFrame], report: StrategyReport
    ) -> None:
        """Keep the walk-forward report of the strategy stored as ``model_id``."""
        key = content_key(frames, 0, walk_forward_strategy)
        with self._lock:
            self._report = (model_id, key, report) if key is not None else None

    def take_report(
        self, model_id: str, frames: dict[str, pd.DataFrame]
    ) -> StrategyReport | None:
        """The report offered for ``model_id`` on the same bars (one use), else ``None``."""
        with self._lock:
            if self._report is None or self._report[0] != model_id:
                return None
        key = content_key(frames, 0, walk_forward_strategy)
        with self._lock:
            if self._report is None or self._report[0] != model_id or self._report[1] != key:
                return None
            report, self._report = self._report[2], None
            return report
