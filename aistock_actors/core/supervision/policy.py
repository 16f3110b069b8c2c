"""Supervision policy, pure: cycle steps and their failure policy, restart intensity, backoff,
the consecutive-failure cap, how a refused state write is retried, and the vocabulary of audit
actions and halt reasons.

The supervisor (``aistock_actors/runtime/supervisor.py``) is the shell that applies these rules;
every
rule of the manual's "Automated Error Recovery" table lives here once.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from typing import Literal

import msgspec

# --- Cycle steps --------------------------------------------------------------------------

STEPS: tuple[str, ...] = ("ingest", "train", "backtest", "judge", "risk", "trade")
"""The steps of one cycle, in order."""

FAILED_STATUSES: frozenset[str] = frozenset({"failed", "timeout", "crashed"})
"""Step statuses that fail a cycle (the others: ``ok``, ``not_built``, ``skipped``, ``halted``,
``aborted``)."""

SKIP_ON_FAILURE: dict[str, tuple[str, ...]] = {
    # Data ingestion failure: retry next cycle, alert — nothing downstream runs on stale input.
    "ingest": ("train", "backtest", "judge", "risk", "trade"),
    # Training failure: keep the previous model, alert — nothing to backtest or judge.
    "train": ("backtest", "judge"),
    # Backtest failure: skip promotion, alert.
    "backtest": ("judge",),
    # Judge, risk and trade failures skip nothing: trading continues with the previous model
    # and the last persisted risk limits.
    "judge": (),
    "risk": (),
    "trade": (),
}
"""Which later steps a failed step skips (the manual's failure-recovery table)."""

FAILURE_ALERT_CODES: dict[str, str] = {
    "ingest": "data_ingestion_failed",
    "train": "training_failed",
    "backtest": "backtest_failed",
    "judge": "promotion_judge_failed",
    "risk": "risk_governor_failed",
    "trade": "paper_trading_failed",
}

CycleOutcome = Literal["succeeded", "degraded", "failed", "halted", "aborted"]
"""``degraded``: nothing failed, but a step was skipped because its actor is still restarting
from a fault an earlier cycle already counted (:data:`CHILD_RESTARTING`)."""

# --- Audit actions and halt reasons ---------------------------------------------------------

KILL_SWITCH_ACTIVATED = "kill_switch_activated"
KILL_SWITCH_DEACTIVATED = "kill_switch_deactivated"
MAX_FAILURES_REACHED = "max_failures_reached"
RESTART_INTENSITY_EXCEEDED = "restart_intensity_exceeded"
AUTOPILOT_FAILED = "autopilot_failed"
CYCLE_SUCCEEDED = "cycle_succeeded"
CYCLE_DEGRADED = "cycle_degraded"
RISK_CEILING_CLAMPED = "risk_ceiling_clamped"
OPERATOR_RESUMED = "operator_resumed"
ACTOR_RESTARTED = "actor_restarted"
ACTOR_CRASHED = "actor_crashed"
AUTO_RECOVERY_DISABLED = "auto_recovery_disabled"
CHILD_RESTARTING = "child_restarting"
"""Why a step did not run: its actor is in its restart backoff after a fault already counted."""
STEP_SKIPPED_CHILD_RESTARTING = "step_skipped_child_restarting"
"""Audit action of a step skipped as :data:`CHILD_RESTARTING`."""

STATE_WRITE_FAILED = "state_write_failed"
"""Halt reason (kind ``resource``) and critical alert: the state directory refused a write."""

def is_failure(status: str) -> bool:
    """Whether a step status counts as a failure of the cycle."""
    return status in FAILED_STATUSES


def steps_to_skip(failed_step: str) -> tuple[str, ...]:
    """Later steps that the failure of ``failed_step`` skips."""
    return SKIP_ON_FAILURE.get(failed_step, ())


def cycle_outcome(statuses: Iterable[str], *, restarting: bool = False) -> CycleOutcome:
    """Outcome of a cycle from its step statuses: halted > aborted > failed > degraded >
    succeeded; ``restarting``: a step was skipped as :data:`CHILD_RESTARTING`."""
    seen = set(statuses)
    if "halted" in seen:
        return "halted"
    if "aborted" in seen:
        return "aborted"
    if seen & FAILED_STATUSES:
        return "failed"
    return "degraded" if restarting else "succeeded"


class FailureDecision(msgspec.Struct, frozen=True, kw_only=True):
    """What the failure counter says after a cycle."""

    consecutive_failures: int
    halt: bool
    reason: str | None = None


def after_cycle(
    consecutive_failures: int,
    outcome: CycleOutcome,
    *,
    max_consecutive_failures: int,
    enable_auto_recovery: bool,
) -> FailureDecision:
    """Update the consecutive-failure count; a success resets it, the cap halts.

    With auto recovery disabled the first failed cycle halts. Halted and aborted cycles (an
    operator stop) neither count nor reset, and nor do degraded ones: their actor is still
    restarting from a fault an earlier cycle counted, so counting again would count one fault
    twice, and resetting would let an actor that crashes on every request escape the cap.
    """
    if outcome == "succeeded":
        return FailureDecision(consecutive_failures=0, halt=False)
    if outcome != "failed":
        return FailureDecision(consecutive_failures=consecutive_failures, halt=False)
    count = consecutive_failures + 1
    if not enable_auto_recovery:
        return FailureDecision(consecutive_failures=count, halt=True, reason=AUTO_RECOVERY_DISABLED)
    if count >= max_consecutive_failures:
        return FailureDecision(consecutive_failures=count, halt=True, reason=MAX_FAILURES_REACHED)
    return FailureDecision(consecutive_failures=count, halt=False)


# --- Restarts ---------------------------------------------------------------------------------


def restarting_step_status(fault_counted: bool) -> Literal["skipped", "failed"]:
    """Status of a step whose actor is down, waiting for its restart.

    Each fault of an actor counts once toward the consecutive-failure cap: when a cycle already
    counted it (the step crashed, timed out or found the actor dead), the next cycles that find
    the actor still in its backoff skip the step (``child_restarting``, not a failure). A fault
    no cycle has counted yet (a failed restart, a crash between steps) fails the step once.
    """
    return "skipped" if fault_counted else "failed"


class RestartIntensity:
    """OTP restart intensity: more than ``max_restarts`` within ``window`` seconds escalates."""

    def __init__(self, max_restarts: int, window: float) -> None:
        self.max_restarts = max_restarts
        self.window = window
        self._times: deque[float] = deque()

    def record(self, now: float) -> bool:
        """Record a restart at ``now``; return True when the intensity is exceeded."""
        self._times.append(now)
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()
        return len(self._times) > self.max_restarts

    @property
    def recent(self) -> int:
        """Restarts currently inside the window."""
        return len(self._times)


def restart_attempt(consecutive_restarts: int, ran_for: float, window: float) -> int:
    """Which consecutive restart of a child this is (1-based), for its backoff.

    A child that ran longer than the restart ``window`` before failing starts over at 1, so an
    actor failing once a day is restarted at the base delay, not the maximum.
    """
    previous = 0 if ran_for > window else consecutive_restarts
    return previous + 1


def backoff_delay(attempt: int, base: float, maximum: float, jitter: float) -> float:
    """Delay before restart ``attempt`` (1-based): ``min(max, base·2^(k-1)) · (1 + jitter)``.

    ``jitter`` is a uniform draw in ``[0, 0.2]`` supplied by the caller, so this stays pure.
    """
    if attempt < 1 or base <= 0:
        return 0.0
    exponent = min(attempt - 1, 60)
    raw = min(maximum, base * math.pow(2.0, exponent))
    return raw * (1.0 + min(max(jitter, 0.0), 0.2))


# --- Writes the state directory refuses ----------------------------------------------------------

WRITE_RETRY_SECONDS = 1.0
"""How often writes that failed (the halt, audit records, ``supervisor.json``) are retried."""
AUDIT_BACKLOG_MAX = 10_000
"""Audit records kept in memory while the audit log cannot be written (oldest dropped, logged)."""
