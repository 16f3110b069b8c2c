"""Which bar times a replay walks, pure: the union timeline and the ``--from``/``--to`` window.

A replay's market clock steps through the union of every symbol's bar times, one at a time.
``--from`` defaults to the first bar time at which the longest symbol has the history a
candidate needs (so the first step already trains), ``--to`` to the last bar. A date without a
time means the whole day: ``--from 2020-03-02`` starts at its first bar, ``--to 2020-03-06``
ends with its last. Every refusal is a :class:`~aistock_actors.errors.ReplayError` whose message
is the one line the CLI prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
from numpy.typing import NDArray

from aistock_actors.core.data.bars import format_timestamp
from aistock_actors.errors import ReplayError

DAY_NS = 86_400 * 10**9
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ReplayWindow:
    """The bar times of a replay: ``timeline[first:last + 1]``."""

    timeline: NDArray[np.int64]
    """Every bar time of the data, sorted, each once."""
    first: int
    last: int

    @property
    def steps(self) -> NDArray[np.int64]:
        """The market times the replay's clock takes, in order."""
        return self.timeline[self.first : self.last + 1]

    @property
    def total(self) -> int:
        """How many steps (cycles) the replay runs."""
        return self.last - self.first + 1


def parse_date(text: str, *, end_of_day: bool = False) -> int:
    """``--from``/``--to`` text (ISO date or datetime; UTC unless it says otherwise) in ns;
    a bare date is its first instant, or its last with ``end_of_day``."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = (day - date(1970, 1, 1)).days * DAY_NS
            return start + DAY_NS - 1 if end_of_day else start
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ReplayError(f"not an ISO date (YYYY-MM-DD) or date-time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def union_timeline(per_symbol: Mapping[str, NDArray[np.int64]]) -> NDArray[np.int64]:
    """Every bar time of any symbol, sorted, each once."""
    arrays = [np.asarray(ts, dtype=np.int64) for ts in per_symbol.values() if len(ts)]
    if not arrays:
        return np.empty(0, dtype=np.int64)
    return np.unique(np.concatenate(arrays))


def first_trainable(per_symbol: Mapping[str, NDArray[np.int64]], required: int) -> int | None:
    """The earliest bar time at which some symbol has ``required`` bars (None: none ever has)."""
    reached = [int(ts[required - 1]) for ts in per_symbol.values() if len(ts) >= required]
    return min(reached) if reached else None


def _day(ns: int) -> str:
    return format_timestamp(ns)


def resolve_window(
    per_symbol: Mapping[str, NDArray[np.int64]],
    required: int,
    *,
    start: int | None = None,
    end: int | None = None,
    start_text: str | None = None,
    end_text: str | None = None,
) -> ReplayWindow:
    """The steps between ``start`` and ``end`` (ns, inclusive; ``*_text`` as the user typed
    them, for the messages); raise :class:`ReplayError` when there is nothing sensible to walk."""
    timeline = union_timeline(per_symbol)
    if len(timeline) == 0:
        raise ReplayError("the CSV folder holds no bar: nothing to replay")
    lo, hi = int(timeline[0]), int(timeline[-1])
    span = f"the data covers {_day(lo)} to {_day(hi)}"
    if start is not None and end is not None and start > end:
        raise ReplayError(f"--from {start_text} is after --to {end_text}")
    if start is not None and start > hi:
        raise ReplayError(f"--from {start_text} is after the last bar: {span}")
    first_day = start_text is not None and len(start_text) == 10 and start is not None and (
        lo < start + DAY_NS
    )  # a bare date names the day of the first bar even when that bar is not at midnight
    if start is not None and start < lo and not first_day:
        raise ReplayError(f"--from {start_text} is before the first bar: {span}")
    if end is not None and end < lo:
        raise ReplayError(f"--to {end_text} is before the first bar: {span}")
    if end is not None and end > hi + DAY_NS - 1:
        raise ReplayError(f"--to {end_text} is after the last bar: {span}")
    if start is None:
        start = first_trainable(per_symbol, required)
        if start is None:
            longest = max(len(ts) for ts in per_symbol.values())
            raise ReplayError(
                f"no symbol has the {required} bars a candidate needs (the longest has "
                f"{longest}): give --from to replay without training, or more history"
            )
        if end is not None and start > end:
            raise ReplayError(
                f"--to {end_text} is before {_day(start)}, the first bar with enough history "
                f"to train ({required} bars): give --from too"
            )
    first = int(np.searchsorted(timeline, start, side="left"))
    last = int(np.searchsorted(timeline, hi if end is None else end, side="right")) - 1
    if first > last:
        raise ReplayError(f"no bar between --from {start_text} and --to {end_text}: {span}")
    return ReplayWindow(timeline=timeline, first=first, last=last)
