"""Bookkeeping of one running cycle: which step is in flight, what each step returned.

The supervisor drives a :class:`CycleRun` one event at a time (it never blocks on a step), so a
kill switch, a crash report or a timeout is handled while a step runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from aistock_actors.core.supervision.policy import STEPS, cycle_outcome, steps_to_skip
from aistock_actors.messages import Reply
from aistock_actors.runtime.clock import SYSTEM_CLOCK, Clock, iso_utc
from aistock_actors.store.state import CycleSummary, StepRecord

_META_FIELDS = {"request_id", "actor", "generation", "type"}
_BULK_FIELDS = {"equity_curve"}
"""Reply fields too bulky for ``supervisor.json`` and ``--status`` (the backtest's equity curve
lives in ``state/promotion/curves/``)."""


def utc_now_iso(clock: Clock = SYSTEM_CLOCK) -> str:
    """The clock's wall time, ISO-8601 UTC with a ``Z``."""
    return iso_utc(clock.now())


def new_cycle_id(sequence: int, clock: Clock = SYSTEM_CLOCK) -> str:
    """A sortable, unique-per-state-dir cycle id, e.g. ``c20261121T002300Z-0042``, stamped with
    the market time: the wall time in a live daemon, the bar a replay is at (so a replay's
    model and order ids do not depend on when it ran)."""
    stamp = clock.market_now().strftime("%Y%m%dT%H%M%SZ")
    return f"c{stamp}-{sequence:04d}"


@dataclass
class PendingStep:
    """The step currently in flight."""

    step: str
    actor: str
    generation: int
    request_id: str
    deadline: float
    started: float


@dataclass
class CycleRun:
    """A cycle in progress."""

    cycle_id: str
    started_at: str = field(default_factory=utc_now_iso)
    queue: list[str] = field(default_factory=lambda: list(STEPS))
    records: list[StepRecord] = field(default_factory=list)
    results: dict[str, Reply] = field(default_factory=dict)
    skip: dict[str, str] = field(default_factory=dict)
    pending: PendingStep | None = None
    clock: Clock = SYSTEM_CLOCK

    def record(
        self,
        step: str,
        status: str,
        *,
        detail: str = "",
        duration_s: float = 0.0,
        data: dict[str, Any] | None = None,
    ) -> StepRecord:
        """Record a step's outcome; a failure marks the steps its policy skips."""
        rec = StepRecord(
            name=step,
            status=status,
            duration_s=round(duration_s, 4),
            detail=detail,
            data=data or {},
        )
        self.records.append(rec)
        if status in ("failed", "timeout", "crashed"):
            for later in steps_to_skip(step):
                self.skip.setdefault(later, f"skipped: {step} {status}")
        return rec

    def finish_pending(
        self, status: str, *, detail: str = "", data: dict[str, Any] | None = None
    ) -> StepRecord | None:
        """Close the in-flight step with ``status``."""
        if self.pending is None:
            return None
        pending, self.pending = self.pending, None
        return self.record(
            pending.step,
            status,
            detail=detail,
            data=data,
            duration_s=self.clock.monotonic() - pending.started,
        )

    def abandon_remaining(self, status: str, detail: str) -> None:
        """Mark every step not yet run (and the one in flight) with ``status``."""
        self.finish_pending(status, detail=detail)
        while self.queue:
            self.record(self.queue.pop(0), "skipped", detail=detail)

    def summary(self) -> CycleSummary:
        """The finished cycle as persisted in ``supervisor.json``."""
        return CycleSummary(
            cycle_id=self.cycle_id,
            started_at=self.started_at,
            finished_at=utc_now_iso(self.clock),
            outcome=cycle_outcome(r.status for r in self.records),
            steps=list(self.records),
        )


def reply_data(reply: Reply) -> dict[str, Any]:
    """A reply's payload as plain JSON data, without routing fields and bulk (``equity_curve``)."""
    data = msgspec.to_builtins(reply)
    return {k: v for k, v in data.items() if k not in _META_FIELDS and k not in _BULK_FIELDS}
