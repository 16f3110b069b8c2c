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

import pykka

from aistock_actors.actors.base import ActorContext
from aistock_actors.core.supervision import policy
from aistock_actors.runtime.children import Child, SupervisorBase

log = logging.getLogger("aistock_actors.runtime.supervisor")


class ChildRestarts(SupervisorBase):
    """Starting, restarting and the crash reports of children."""

    def _start_child(self, child: Child) -> None:
        child.generation += 1
        child.restart_due = None
        child.started_at = self.clock.monotonic()
        ctx = ActorContext(
            name=child.spec.name,
            generation=child.generation,
            report=self.tell,
            halt_flag=self.halt_flag,
            config=self.loaded,
            audit=self.audit,
            alerts=self.alerts,
            net=self.net,
            clock=self.clock,
        )
        child.ref = child.spec.actor_class.start(ctx)
        if child.generation > 1:
            self._audit(policy.ACTOR_RESTARTED, child.spec.name, {"generation": child.generation})
        log.info(
            "started %s gen %d", child.spec.name, child.generation, extra={"actor": child.spec.name}
        )

    def _schedule_restart(self, child: Child, *, counted: bool) -> None:
        """Replace a failed child after a backoff; ``counted``: a cycle counted this fault."""
        now = self.clock.monotonic()
        child.fault_counted = counted
        old, child.ref = child.ref, None
        if old is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                old.stop(block=False)
        sup = self.cfg.supervision
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
        self._save_state()
        if self.intensity.record(now):
            self.halt_system(
                "restart_intensity_exceeded",
                policy.RESTART_INTENSITY_EXCEEDED,
                f"more than {sup.max_restarts} actor restarts within "
                f"{sup.restart_window_seconds:g}s (last: {name})",
                {"actor": name, "restarts_in_window": self.intensity.recent},
            )

    def _start_due_restarts(self, now: float) -> None:
        for child in self.children.values():
            if child.ref is None and child.restart_due is not None and now >= child.restart_due:
                self._start_child(child)

    def _on_child_down(self, name: str, generation: int, status: str, error: str) -> None:
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
        self._audit(policy.ACTOR_CRASHED, name, {"generation": generation, "error": error})
        self._alert("error", policy.ACTOR_CRASHED, f"{name} {error}", actor=name)
        pending = self.cycle.pending if self.cycle is not None else None
        counted = False  # whether this crash fails (and so counts in) the running cycle
        if self.cycle is not None and pending is not None and pending.actor == name:
            counted = True
            self.cycle.finish_pending(status, detail=error)
            self._alert_step_failure(pending.step, status, error)
        self._schedule_restart(child, counted=counted)
