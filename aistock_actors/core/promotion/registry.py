"""Active-strategy registry with grace cycles (SPEC_AUDIT_FIX_06 T5).

The old registry replaced the whole active list every cycle, so an incumbent vanished the first
time it was left out of a candidate set. Here each active strategy carries a
``consecutive_failures`` counter: a cycle in which it passes re-evaluation resets it; a cycle in
which it fails, or is not evaluated at all, increments it (not evaluated is not proof of being bad,
but it is not proof of being good either). A strategy is removed only once the counter reaches
``PROMOTION_GRACE_CYCLES``. Every change of grace state is returned as a :class:`RegistryEvent`
so the actor can log and audit it.

New strategies enter only through :func:`add_strategy` (after the promotion gate); ids in
``evaluated`` that are not in the registry are ignored by :func:`update_registry`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

import msgspec

from aistock_actors.core.promotion.gate import utc_iso

PROMOTION_GRACE_CYCLES = 3
"""Consecutive failed or missed cycles after which an active strategy is removed."""

EventKind = Literal["added", "updated", "entered_grace", "grace_continued", "recovered", "removed"]
Cause = Literal["promoted", "passed", "failed", "missing"]


class StrategyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One active strategy and its grace-period bookkeeping."""

    strategy_id: str
    model_id: str
    consecutive_failures: int = 0
    """Cycles in a row in which the strategy failed or was not evaluated."""
    added_at: str
    """When the strategy (or its current model) was added, ISO-8601 UTC."""
    last_evaluated_at: str | None = None
    """Last cycle in which it was re-evaluated (passed or failed); ``None`` if never."""


class RegistryState(msgspec.Struct, frozen=True, kw_only=True):
    """The active strategies, in the order they were added."""

    strategies: list[StrategyRecord] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        ids = [record.strategy_id for record in self.strategies]
        duplicates = sorted({sid for sid in ids if ids.count(sid) > 1})
        if duplicates:
            raise ValueError(f"registry lists strategy ids more than once: {duplicates}")
        for record in self.strategies:
            if record.consecutive_failures < 0:
                raise ValueError(f"strategy {record.strategy_id!r} has a negative failure count")

    def get(self, strategy_id: str) -> StrategyRecord | None:
        """The record of ``strategy_id``, or ``None`` if it is not active."""
        return next((r for r in self.strategies if r.strategy_id == strategy_id), None)

    @property
    def strategy_ids(self) -> list[str]:
        """Ids of the active strategies, in order."""
        return [record.strategy_id for record in self.strategies]


class RegistryEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A change of one strategy's registry state, for the log and the audit trail."""

    kind: EventKind
    strategy_id: str
    model_id: str
    cause: Cause
    consecutive_failures: int
    """The counter after this cycle (for ``recovered``: the count that was cleared)."""
    grace_cycles: int
    """The removal threshold in force."""
    time: str


def _check_grace(grace_cycles: int) -> None:
    if grace_cycles < 1:
        raise ValueError(f"grace_cycles must be >= 1, got {grace_cycles}")


def _event(
    kind: EventKind, record: StrategyRecord, cause: Cause, count: int, grace: int, time: str
) -> RegistryEvent:
    return RegistryEvent(
        kind=kind,
        strategy_id=record.strategy_id,
        model_id=record.model_id,
        cause=cause,
        consecutive_failures=count,
        grace_cycles=grace,
        time=time,
    )


def _step(
    record: StrategyRecord, outcome: bool | None, time: str, grace: int
) -> tuple[StrategyRecord | None, RegistryEvent | None]:
    """One strategy's cycle: ``outcome`` is True (passed), False (failed) or None (missing)."""
    evaluated_at = record.last_evaluated_at if outcome is None else time
    if outcome is not None and bool(outcome):
        kept = msgspec.structs.replace(record, consecutive_failures=0, last_evaluated_at=time)
        if record.consecutive_failures == 0:
            return kept, None
        return kept, _event("recovered", record, "passed", record.consecutive_failures, grace, time)
    cause: Cause = "missing" if outcome is None else "failed"
    count = record.consecutive_failures + 1
    if count >= grace:
        return None, _event("removed", record, cause, count, grace, time)
    kind: EventKind = "entered_grace" if count == 1 else "grace_continued"
    kept = msgspec.structs.replace(
        record, consecutive_failures=count, last_evaluated_at=evaluated_at
    )
    return kept, _event(kind, record, cause, count, grace, time)


def update_registry(
    state: RegistryState,
    evaluated: Mapping[str, bool],
    timestamp: str | datetime,
    grace_cycles: int = PROMOTION_GRACE_CYCLES,
) -> tuple[RegistryState, list[RegistryEvent]]:
    """Apply one cycle's re-evaluation results and return the new state and its events.

    ``evaluated`` maps strategy id to whether it passed this cycle; an active strategy absent
    from it counts as a failure for grace purposes. A strategy is removed when its consecutive
    failures reach ``grace_cycles`` (never earlier). ``state`` is not modified.
    """
    _check_grace(grace_cycles)
    time = utc_iso(timestamp)
    kept: list[StrategyRecord] = []
    events: list[RegistryEvent] = []
    for record in state.strategies:
        new_record, event = _step(record, evaluated.get(record.strategy_id), time, grace_cycles)
        if new_record is not None:
            kept.append(new_record)
        if event is not None:
            events.append(event)
    return RegistryState(strategies=kept), events


def add_strategy(
    state: RegistryState, strategy_id: str, model_id: str, timestamp: str | datetime
) -> tuple[RegistryState, RegistryEvent]:
    """Make a promoted model active as ``strategy_id`` with a clean failure counter.

    If ``strategy_id`` is already active its model is replaced in place (event ``updated``);
    otherwise it is appended (event ``added``). ``state`` is not modified.
    """
    if not strategy_id or not model_id:
        raise ValueError("strategy_id and model_id must be non-empty")
    time = utc_iso(timestamp)
    record = StrategyRecord(strategy_id=strategy_id, model_id=model_id, added_at=time)
    existing = state.get(strategy_id)
    if existing is None:
        strategies = [*state.strategies, record]
        kind: EventKind = "added"
    else:
        strategies = [record if r.strategy_id == strategy_id else r for r in state.strategies]
        kind = "updated"
    event = _event(kind, record, "promoted", 0, PROMOTION_GRACE_CYCLES, time)
    return RegistryState(strategies=strategies), event
