"""The champion window: the bars on which the incumbent is scored and compared with the candidate.

Split from :mod:`aistock_actors.core.model.pipeline` (its module docstring, **Incumbent**, says
why the window is the bars after the incumbent's training end when there are enough of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

if TYPE_CHECKING:
    from aistock_actors.core.model.pipeline import OOSEvaluation


MIN_CHAMPION_WINDOW_BARS = 63
"""Fewest bars after the incumbent's training end for the champion window to be those bars only
(module docstring, **Incumbent**): about one quarter of daily bars. Fewer would make the
comparison mostly noise (a Sharpe ratio measured on ``n`` daily bars has a standard error of
about ``sqrt(252 / n)`` annualised: 2.0 at 63 bars, 3.5 at 20), and the registry retires an
active model on a few failed re-evaluations. It also spaces promotions: a newly promoted model
is compared on the whole, partly in-sample, window until it has this many unseen bars."""


@dataclass(frozen=True, kw_only=True)
class ChampionWindow:
    """The bars on which the incumbent is scored and compared with the candidate."""

    start: str
    end: str
    """First and last bar (ISO-8601)."""
    bars: int
    after_training_end: bool
    """``True``: every bar is strictly after the incumbent's training end (out of sample for
    both models); ``False``: the candidate's whole out-of-sample window, partly (or wholly)
    inside the incumbent's training data."""
    bars_after_training_end: int
    """Bars of the candidate's out-of-sample window strictly after the incumbent's training end
    (0 when that end is unknown)."""
    training_end: str | None
    """The incumbent's training end as given (``None``: unknown)."""
    candidate: OOSEvaluation
    """The candidate on this window (the whole-window evaluation when it is the whole window)."""
    note: str
    """What was compared, for the operator (stage 7's note, the manifest, the report)."""


def _as_index_time(value: str, times: pd.DatetimeIndex) -> pd.Timestamp | None:
    """``value`` (ISO-8601) in the time zone of ``times`` (UTC assumed for a naive side), or
    ``None`` if it is not a time."""
    try:
        moment = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if not isinstance(moment, pd.Timestamp) or pd.isna(moment):
        return None
    if times.tz is None:
        return moment.tz_convert("UTC").tz_localize(None) if moment.tzinfo is not None else moment
    if moment.tzinfo is None:
        moment = moment.tz_localize("UTC")
    return moment.tz_convert(times.tz)


def after_training_end(index: pd.MultiIndex, training_end: str | None) -> npt.NDArray[np.bool_]:
    """Which rows of ``index`` are strictly after ``training_end`` (none if it is unknown)."""
    times = pd.DatetimeIndex(index.get_level_values("timestamp"))
    end = None if training_end is None else _as_index_time(training_end, times)
    if end is None:
        return np.zeros(len(times), dtype=bool)
    return np.asarray(times > end, dtype=bool)


def window_note(
    incumbent_id: str, window: tuple[str, str, int], after: bool, unseen: int, end: str | None
) -> str:
    span = f"{window[0]} .. {window[1]} ({window[2]} bars)"
    if after:
        return (
            f"incumbent {incumbent_id} and candidate compared on {span}, all after the "
            f"incumbent's training end {end}"
        )
    if end is None:
        why = "the incumbent's training end is unknown"
    else:
        why = (
            f"only {unseen} bars after the incumbent's training end {end} "
            f"(fewer than {MIN_CHAMPION_WINDOW_BARS})"
        )
    return (
        f"incumbent {incumbent_id} and candidate compared on the full window {span}: {why}, "
        "so the incumbent is partly in-sample"
    )


def champion_window(
    challenger: OOSEvaluation,
    incumbent_id: str,
    index: pd.MultiIndex,
    unseen: int,
    training_end: str | None,
    after: bool,
) -> ChampionWindow:
    times = index.get_level_values("timestamp")
    start, end = pd.Timestamp(times.min()).isoformat(), pd.Timestamp(times.max()).isoformat()
    bars = challenger.bars
    return ChampionWindow(
        start=start,
        end=end,
        bars=bars,
        after_training_end=after,
        bars_after_training_end=unseen,
        training_end=training_end,
        candidate=challenger,
        note=window_note(incumbent_id, (start, end, bars), after, unseen, training_end),
    )
