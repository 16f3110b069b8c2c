"""The pure supervision policy: outcomes, the consecutive-failure cap, restarts and backoff."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aistock_actors.core.supervision import policy


def test_cycle_outcome_precedence() -> None:
    assert policy.cycle_outcome(["ok", "halted", "failed"]) == "halted"
    assert policy.cycle_outcome(["ok", "aborted", "crashed"]) == "aborted"
    assert policy.cycle_outcome(["ok", "timeout"], restarting=True) == "failed"
    assert policy.cycle_outcome(["ok", "skipped"], restarting=True) == "degraded"
    assert policy.cycle_outcome(["ok", "skipped", "not_built"]) == "succeeded"


def test_a_degraded_cycle_neither_counts_nor_resets() -> None:
    decision = policy.after_cycle(
        2, "degraded", max_consecutive_failures=3, enable_auto_recovery=True
    )
    assert (decision.consecutive_failures, decision.halt) == (2, False)


def test_the_cap_halts_at_the_cap_and_auto_recovery_off_halts_at_once() -> None:
    at_cap = policy.after_cycle(2, "failed", max_consecutive_failures=3, enable_auto_recovery=True)
    assert at_cap.halt and at_cap.reason == policy.MAX_FAILURES_REACHED
    first = policy.after_cycle(0, "failed", max_consecutive_failures=3, enable_auto_recovery=False)
    assert first.halt and first.reason == policy.AUTO_RECOVERY_DISABLED


def test_a_restarting_step_fails_only_for_a_fault_not_counted_yet() -> None:
    assert policy.restarting_step_status(fault_counted=False) == "failed"
    assert policy.restarting_step_status(fault_counted=True) == "skipped"


def test_restart_attempt_starts_over_after_a_long_run() -> None:
    assert policy.restart_attempt(3, ran_for=1.0, window=30.0) == 4
    assert policy.restart_attempt(3, ran_for=31.0, window=30.0) == 1


@given(st.integers(1, 100), st.floats(0.0, 10.0), st.floats(0.0, 100.0), st.floats(-1.0, 1.0))
def test_backoff_stays_within_the_maximum_plus_jitter(
    attempt: int, base: float, maximum: float, jitter: float
) -> None:
    delay = policy.backoff_delay(attempt, base, maximum, jitter)
    assert 0.0 <= delay <= maximum * 1.2 + 1e-9


@given(st.lists(st.sampled_from(["succeeded", "degraded", "failed", "aborted"]), max_size=40))
def test_the_count_is_the_failed_cycles_since_the_last_success(outcomes: list[str]) -> None:
    """Degraded and aborted cycles are transparent: the count is exactly the failed cycles
    since the last success, and the cap halts the moment it is reached."""
    count, cap = 0, 3
    for index, outcome in enumerate(outcomes):
        decision = policy.after_cycle(
            count,
            outcome,  # type: ignore[arg-type]
            max_consecutive_failures=cap,
            enable_auto_recovery=True,
        )
        count = decision.consecutive_failures
        since = outcomes[: index + 1]
        last_ok = max((i for i, o in enumerate(since) if o == "succeeded"), default=-1)
        assert count == since[last_ok + 1 :].count("failed")
        assert decision.halt == (outcome == "failed" and count >= cap)
