"""Tests for the active-strategy registry and its grace cycles (T5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aistock_actors.core.promotion.registry import (
    PROMOTION_GRACE_CYCLES,
    RegistryEvent,
    RegistryState,
    StrategyRecord,
    add_strategy,
    update_registry,
)

START = datetime(2025, 1, 1, tzinfo=UTC)


def at(cycle: int) -> datetime:
    return START + timedelta(hours=cycle)


def registry(*ids: str) -> RegistryState:
    state = RegistryState()
    for sid in ids:
        state, _ = add_strategy(state, sid, f"model-{sid}", START)
    return state


def run(
    state: RegistryState, cycles: list[dict[str, bool]]
) -> tuple[RegistryState, list[RegistryEvent]]:
    events: list[RegistryEvent] = []
    for index, evaluated in enumerate(cycles, start=1):
        state, new = update_registry(state, evaluated, at(index))
        events.extend(new)
    return state, events


def test_grace_constant() -> None:
    assert PROMOTION_GRACE_CYCLES == 3


def test_missing_once_survives() -> None:
    state, events = run(registry("a", "b"), [{"b": True}])
    assert state.strategy_ids == ["a", "b"]
    record = state.get("a")
    assert record is not None
    assert record.consecutive_failures == 1
    assert record.last_evaluated_at is None
    assert [(e.kind, e.strategy_id, e.cause, e.consecutive_failures) for e in events] == [
        ("entered_grace", "a", "missing", 1)
    ]


def test_missing_three_times_is_removed() -> None:
    state, events = run(registry("a", "b"), [{"b": True}] * 3)
    assert state.strategy_ids == ["b"]
    assert [(e.kind, e.consecutive_failures) for e in events] == [
        ("entered_grace", 1),
        ("grace_continued", 2),
        ("removed", 3),
    ]
    assert all(e.grace_cycles == 3 for e in events)


def test_fail_fail_pass_resets() -> None:
    state, events = run(registry("a"), [{"a": False}, {"a": False}, {"a": True}])
    record = state.get("a")
    assert record is not None
    assert record.consecutive_failures == 0
    assert record.last_evaluated_at == "2025-01-01T03:00:00Z"
    assert [(e.kind, e.cause, e.consecutive_failures) for e in events] == [
        ("entered_grace", "failed", 1),
        ("grace_continued", "failed", 2),
        ("recovered", "passed", 2),
    ]
    state, _ = run(state, [{"a": False}, {}])
    assert state.strategy_ids == ["a"]


def test_failing_and_missing_count_together() -> None:
    state, events = run(registry("a"), [{"a": False}, {}, {"a": False}])
    assert state.strategy_ids == []
    assert events[-1].kind == "removed"
    assert events[-1].cause == "failed"


def test_a_passing_strategy_produces_no_events() -> None:
    state, events = run(registry("a"), [{"a": True}] * 5)
    assert events == []
    assert state.strategy_ids == ["a"]


def test_unknown_ids_in_evaluated_are_ignored() -> None:
    state, events = run(registry("a"), [{"a": True, "new": True}])
    assert state.strategy_ids == ["a"]
    assert events == []


def test_input_state_is_not_modified() -> None:
    state = registry("a")
    before = msgspec.json.encode(state)
    update_registry(state, {"a": False}, at(1))
    assert msgspec.json.encode(state) == before


def test_custom_grace_cycles() -> None:
    state, events = update_registry(registry("a"), {}, at(1), grace_cycles=1)
    assert state.strategy_ids == []
    assert events[0].kind == "removed"
    with pytest.raises(ValueError, match="grace_cycles"):
        update_registry(registry("a"), {}, at(1), grace_cycles=0)


def test_add_strategy_appends_and_updates() -> None:
    state, event = add_strategy(RegistryState(), "s1", "m1", "2025-01-01T00:00:00+00:00")
    assert event.kind == "added"
    assert state.strategies[0].added_at == "2025-01-01T00:00:00Z"
    state, _ = update_registry(state, {"s1": False}, at(1))
    state, event = add_strategy(state, "s1", "m2", at(2))
    assert event.kind == "updated"
    record = state.get("s1")
    assert record is not None
    assert (record.model_id, record.consecutive_failures) == ("m2", 0)
    with pytest.raises(ValueError, match="non-empty"):
        add_strategy(state, "", "m", at(3))


def test_state_round_trips_and_rejects_duplicates() -> None:
    state, _ = run(registry("a", "b"), [{"a": False}])
    raw = msgspec.json.encode(state)
    assert msgspec.json.decode(raw, type=RegistryState) == state
    record = StrategyRecord(strategy_id="x", model_id="m", added_at="2025-01-01T00:00:00Z")
    with pytest.raises(ValueError, match="more than once"):
        RegistryState(strategies=[record, record])
    doubled = msgspec.json.encode({"strategies": [record, record]})
    with pytest.raises(msgspec.ValidationError, match="more than once"):
        msgspec.json.decode(doubled, type=RegistryState)


def test_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        update_registry(registry("a"), {}, datetime(2025, 1, 1))


# None = not evaluated this cycle, True = passed, False = failed.
outcomes = st.lists(st.sampled_from([True, False, None]), max_size=30)


def _expected_removal_cycle(history: list[bool | None]) -> int | None:
    streak = 0
    for cycle, outcome in enumerate(history, start=1):
        streak = 0 if outcome else streak + 1
        if streak >= PROMOTION_GRACE_CYCLES:
            return cycle
    return None


@given(outcomes)
def test_removed_exactly_at_the_third_consecutive_miss(history: list[bool | None]) -> None:
    state = registry("a")
    removal = _expected_removal_cycle(history)
    for cycle, outcome in enumerate(history, start=1):
        evaluated = {} if outcome is None else {"a": outcome}
        state, events = update_registry(state, evaluated, at(cycle))
        removed_now = any(e.kind == "removed" for e in events)
        assert removed_now == (cycle == removal)
        assert (state.get("a") is None) == (removal is not None and cycle >= removal)
        if removal is not None and cycle >= removal:
            break
        record = state.get("a")
        assert record is not None
        assert record.consecutive_failures < PROMOTION_GRACE_CYCLES


@given(st.dictionaries(st.sampled_from("abcde"), outcomes, min_size=1))
def test_each_strategy_evolves_independently(histories: dict[str, list[bool | None]]) -> None:
    state = registry(*sorted(histories))
    length = max(len(h) for h in histories.values())
    removed: dict[str, int] = {}
    for cycle in range(1, length + 1):
        evaluated = {
            sid: h[cycle - 1]
            for sid, h in histories.items()
            if cycle <= len(h) and h[cycle - 1] is not None
        }
        state, events = update_registry(state, evaluated, at(cycle))  # type: ignore[arg-type]
        removed.update({e.strategy_id: cycle for e in events if e.kind == "removed"})
    for sid, history in histories.items():
        padded = history + [None] * (length - len(history))
        assert removed.get(sid) == _expected_removal_cycle(padded)
        assert (sid in state.strategy_ids) == (sid not in removed)
