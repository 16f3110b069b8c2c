"""The supervisor's restarts: start a child, replace a failed one after a backoff, escalate.

A crashed child (exception in a tell, failure in ``on_start``, a dead ref, a hung step) is
replaced by a new generation that reloads its state from disk, after a jittered exponential
backoff that the event loop schedules (the supervisor never sleeps). More than
``supervision.max_restarts`` restarts in ``restart_window_seconds`` halt the system. Each child
remembers whether a cycle already counted the fault it is restarting from, so one fault counts
once toward the consecutive-failure cap (see ``cycle_driver.py``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import pykka

from aistock_actors.actors.base import ActorContext
from aistock_actors.config import SupervisionConfig
from aistock_actors.core.supervision import policy
from aistock_actors.runtime.children import Child, Children
from aistock_actors.runtime.clock import Clock
from aistock_actors.runtime.state_writer import StateWriter
from aistock_actors.runtime.telemetry import Telemetry
from aistock_actors.store.state import SupervisorState

log = logging.getLogger("aistock_actors.runtime.supervisor")

HaltHook = Callable[[str, str, str, dict[str, Any]], None]
"""``halt(kind, action, message, details)``: the halt latch's ``halt_system``."""
StepFailHook = Callable[[str, str, str], bool]
"""``fail(actor, status, error)``: fail the running cycle's step if ``actor`` runs it; whether
it did (the crash then counts in that cycle)."""


class ChildRestarts:
    """Starting, restarting and the crash reports of children."""

    def __init__(
        self,
        children: Children,
        *,
        make_context: Callable[[Child], ActorContext],
        supervision: SupervisionConfig,
        clock: Clock,
        rng: Callable[[], float],
        state: SupervisorState,
        telemetry: Telemetry,
        writes: StateWriter,
        halt: HaltHook,
        fail_step: StepFailHook,
    ) -> None:
        self.children = children
        self.make_context = make_context
        self.supervision = supervision
        self.clock = clock
        self.rng = rng
        self.state = state
        self.telemetry = telemetry
        self.writes = writes
        self.halt = halt
        self.fail_step = fail_step
        self.intensity = policy.RestartIntensity(
            supervision.max_restarts, supervision.restart_window_seconds
        )

    def start(self, child: Child) -> None:
        """Start ``child``'s next generation (it reloads its state from disk)."""
        child.generation += 1
        child.restart_due = None
        child.started_at = self.clock.monotonic()
        child.ref = child.spec.actor_class.start(self.make_context(child))
        if child.generation > 1:
            self.writes.audit(
                policy.ACTOR_RESTARTED, child.spec.name, {"generation": child.generation}
            )
        log.info(
            "started %s gen %d", child.spec.name, child.generation, extra={"actor": child.spec.name}
        )

    def schedule(self, child: Child, *, counted: bool) -> None:
        """Replace a failed child after a backoff; ``counted``: a cycle counted this fault."""
        now = self.clock.monotonic()
        child.fault_counted = counted
        old, child.ref = child.ref, None
        if old is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                old.stop(block=False)
        sup = self.supervision
        child.consecutive_restarts = policy.restart_attempt(
            child.consecutive_restarts, now - child.started_at, sup.restart_window_seconds
        )
        delay = policy.backoff_delay(
            child.consecutive_restarts,
            sup.restart_backoff_base_seconds,
            sup.restart_backoff_max_seconds,
            self.rng() * 0.2,
        )
        child.restart_due = now + delay
        name = child.spec.name
        self.state.restarts[name] = self.state.restarts.get(name, 0) + 1
        self.telemetry.actor_restarted(name)
        self.writes.save_state(self.state)
        if self.intensity.record(now):
            self.halt(
                "restart_intensity_exceeded",
                policy.RESTART_INTENSITY_EXCEEDED,
                f"more than {sup.max_restarts} actor restarts within "
                f"{sup.restart_window_seconds:g}s (last: {name})",
                {"actor": name, "restarts_in_window": self.intensity.recent},
            )

    def start_due(self, now: float) -> None:
        """Start every child whose backoff has run out."""
        for child in self.children.values():
            if child.ref is None and child.restart_due is not None and now >= child.restart_due:
                self.start(child)

    def child_down(self, name: str, generation: int, status: str, error: str) -> None:
        """A crash report (``ActorCrashed``/``ActorStartFailed``): fail its step, restart it."""
        child = self.children.get(name)
        if child is None or generation != child.generation:
            log.info(
                "ignoring report from %s gen %d (stale)", name, generation, extra={"actor": name}
            )
            return
        if child.ref is None and child.restart_due is not None:
            # This generation's restart is already scheduled (found dead by a tell, or timed
            # out): its own crash report arriving later is the same failure, counted once.
            log.info(
                "%s gen %d already being restarted: %s",
                name,
                generation,
                error,
                extra={"actor": name},
            )
            return
        self.writes.audit(policy.ACTOR_CRASHED, name, {"generation": generation, "error": error})
        self.writes.alert("error", policy.ACTOR_CRASHED, f"{name} {error}", actor=name)
        counted = self.fail_step(name, status, error)  # whether this crash counts in a cycle
        self.schedule(child, counted=counted)
