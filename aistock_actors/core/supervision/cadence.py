"""The retraining cadence, pure: whether this cycle trains a candidate.

A candidate is trained, backtested and judged when ``training.retrain_every_bars`` new bar times
have arrived since the newest stored candidate's last training bar, or when there is no
candidate at all. Every other cycle skips those three steps (``LifecycleSkipped``; not a
failure) and still ingests, re-checks the active model, adapts risk and trades. So a daemon on
unchanged data retrains nothing and stores no artifact, manifest entry or alert, and a replay
retrains once a month of daily bars by default, like a desk that refits monthly.

"New bar times" are the distinct timestamps over every symbol after the candidate's
``data_end``: a universe of daily bars counts one per trading day, however many symbols.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
import numpy as np
from numpy.typing import NDArray

NO_CANDIDATE = "no_candidate_yet"
"""Reason of a due training: nothing has been trained yet (or nothing is left in the store)."""
CADENCE_REACHED = "retrain_cadence_reached"
"""Reason of a due training: enough new bars since the newest candidate."""
NO_NEW_BAR = "no_new_bar"
"""``LifecycleSkipped`` reason: no bar arrived since the newest candidate was trained."""
CADENCE_NOT_REACHED = "retrain_cadence"
"""``LifecycleSkipped`` reason: some new bars, fewer than ``training.retrain_every_bars``."""


class TrainingDue(msgspec.Struct, frozen=True, kw_only=True):
    """The cadence's answer for one cycle."""

    due: bool
    reason: str
    detail: str
    new_bars: int | None = None
    """New bar times since the newest candidate (None: there is no candidate)."""


def bars_since(timestamps: Iterable[NDArray[np.int64]], after_ns: int) -> int:
    """Distinct bar times strictly after ``after_ns`` over the symbols' sorted timestamps."""
    tails = [ts[np.searchsorted(ts, after_ns, side="right") :] for ts in timestamps]
    tails = [tail for tail in tails if len(tail)]
    if not tails:
        return 0
    if len(tails) == 1:
        return len(tails[0])
    return int(np.unique(np.concatenate(tails)).size)


def training_due(new_bars: int | None, every: int, candidate: str | None = None) -> TrainingDue:
    """Whether to train now, given the new bar times since ``candidate`` (None: no candidate)."""
    if new_bars is None:
        return TrainingDue(due=True, reason=NO_CANDIDATE, detail="no candidate yet: training")
    name = candidate or "the newest candidate"
    if new_bars >= every:
        return TrainingDue(
            due=True,
            reason=CADENCE_REACHED,
            detail=f"{new_bars} new bar(s) since {name} (every {every}): training",
            new_bars=new_bars,
        )
    if new_bars == 0:
        return TrainingDue(
            due=False,
            reason=NO_NEW_BAR,
            detail=f"no new bar since {name}: nothing to train",
            new_bars=0,
        )
    return TrainingDue(
        due=False,
        reason=CADENCE_NOT_REACHED,
        detail=f"{new_bars} of {every} new bars since {name}: next training in "
        f"{every - new_bars} bar(s)",
        new_bars=new_bars,
    )
