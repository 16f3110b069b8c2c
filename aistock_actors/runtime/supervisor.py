"""The Supervisor: starts the actors, runs cycles, restarts crashed actors, counts failures, halts.

Erlang/OTP is the model. Children start in dependency order and stop in reverse, each with a
timeout. A crashed child (exception in a tell, failure in ``on_start``, a dead ref, a hung step)
is replaced by a new instance that reloads its state from disk, after a jittered exponential
backoff that the event loop schedules (the supervisor never sleeps). More than
``supervision.max_restarts`` restarts in ``restart_window_seconds`` escalate to a halt.

The supervisor runs on the caller's thread as an event loop over one inbox queue: replies to
step requests, crash reports and kill-switch events all arrive there, and every
``kill_switch_poll_seconds`` it also checks ``state/KILL_SWITCH`` itself, so the file kill switch
works even while the KillSwitchWatcher is down.

A write the state directory refuses (read-only or full: ``supervisor.json``, ``HALTED``, the
audit log, an alert file) does not end the process: it is logged at CRITICAL, raises the critical
alert ``state_write_failed`` where it can, and halts (kind ``resource``). The halt holds in memory
(nothing trades; ``/healthz`` says 503; the kill switch still works) and the refused writes are
retried every ``WRITE_RETRY_SECONDS`` until they succeed.

This module is the event loop and the lifecycle; the rest is one module per responsibility:
``restarts.py`` (starting and restarting children), ``halting.py`` (the halt and kill-switch
latch), ``cycle_driver.py`` (the cycle, its failure counting and telemetry), ``state_writes.py``
(writes the state directory may refuse), over ``supervisor_base.py`` (their shared state), with
the pure rules in ``core/supervision.py``.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
from collections.abc import Callable

import pykka

from aistock_actors.config import LoadedConfig
from aistock_actors.core.supervision import policy
from aistock_actors.core.supervision.policy import (
    AUDIT_BACKLOG_MAX,
    STATE_WRITE_FAILED,
    WRITE_RETRY_SECONDS,
)
from aistock_actors.messages import Message, Reply
from aistock_actors.messages.control import (
    ActorCrashed,
    ActorStartFailed,
    CheckKillSwitch,
    KillSwitchTripped,
)
from aistock_actors.net.services import NetServices
from aistock_actors.runtime.children import Child, ChildSpec, RequestFactory
from aistock_actors.runtime.clock import SYSTEM_CLOCK, Clock
from aistock_actors.runtime.cycle_driver import CycleDriver
from aistock_actors.runtime.halt_latch import HaltLatch
from aistock_actors.runtime.redaction import Redactor
from aistock_actors.runtime.restarts import ChildRestarts
from aistock_actors.runtime.state_writer import StateWriter
from aistock_actors.runtime.telemetry import Telemetry
from aistock_actors.store.alerts import AlertSink
from aistock_actors.store.audit import AuditLog, verify_audit_log
from aistock_actors.store.audit_anchor import anchor_for
from aistock_actors.store.state import CycleSummary, load_supervisor_state, read_halt

__all__ = [
    "AUDIT_BACKLOG_MAX",
    "STATE_WRITE_FAILED",
    "WRITE_RETRY_SECONDS",
    "Child",
    "ChildSpec",
    "RequestFactory",
    "Supervisor",
]

log = logging.getLogger(__name__)


class Supervisor(CycleDriver, ChildRestarts, HaltLatch):
    """Owns the actors and the cycle; see the module docstring."""

    def __init__(
        self,
        loaded: LoadedConfig,
        specs: list[ChildSpec],
        *,
        clock: Clock = SYSTEM_CLOCK,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.loaded = loaded
        self.cfg = loaded.config
        self.state_dir = loaded.state_dir
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # Secrets (webhook URLs, routing key, tokens) never reach the audit log, alerts or logs.
        self.redactor = Redactor.from_config(self.cfg)
        self._log_filter = self.redactor.logging_filter()
        self.audit = AuditLog(
            self.state_dir / "audit" / "log.jsonl", redact=self.redactor.details, clock=clock,
            anchor=anchor_for(loaded),  # #17: the keyed head outside state/
            max_bytes=self.cfg.security.audit_max_bytes,  # #18: rotation keeps it bounded
            keep_files=self.cfg.security.audit_keep_files,
        )
        self.alerts = AlertSink(
            self.state_dir / "alerts", redact=self.redactor.details, clock=clock
        )
        self.inbox = queue.Queue()
        self.halt_flag = threading.Event()
        self.stop_event = threading.Event()
        self.clock = clock
        self.rng = rng
        # Writes refused by a read-only or full state directory wait there for a retry.
        self.writes = StateWriter(
            self.state_dir, self.audit, self.alerts, clock.monotonic, on_failure=self._write_failed
        )
        self.state = load_supervisor_state(self.state_dir, self.alerts)
        self.halt = read_halt(self.state_dir)
        if self.halt is not None:
            self.halt_flag.set()
        sup = self.cfg.supervision
        self.intensity = policy.RestartIntensity(sup.max_restarts, sup.restart_window_seconds)
        self.children = {s.name: Child(spec=s) for s in specs}
        self.cycle = None
        self.last_summary = None
        self._next_watch = 0.0
        # Hardening (#17): (halt action, check) pairs run every housekeeping; a check returning a
        # reason halts (e.g. the daemon's lock file replaced: DaemonLock.check).
        self.integrity_checks: list[tuple[str, Callable[[], str | None]]] = []
        self._audit_head_reported: str | None = None
        # Latched while a kill switch is in force, so a trip is audited once, not every poll.
        self._kill_active = self.halt is not None and self.halt.kind == "kill_switch"
        self.telemetry = Telemetry(self.state_dir, clock=clock)
        # The network loop (webhooks, remote kill switch, health reports, /metrics) is created
        # here and started in start(); alerts raised before that wait in the webhook queues.
        self.net = NetServices(loaded, self.telemetry, self.redactor, self.alerts)
        self.alerts.add_listener(self.net.on_alert)
        self.telemetry.update(
            halted=self.halt is not None,
            halt_reason=self.halt.reason if self.halt else None,
            kill_switch=self._kill_active,
            consecutive_failures=self.state.consecutive_failures,
            restarts=dict(self.state.restarts),
        )

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Audit config clamps, start every child in order, honour a kill switch already set."""
        self._log_filter.install()
        self.net.start()
        for clamp in self.loaded.clamps:
            self._audit(
                policy.RISK_CEILING_CLAMPED,
                "config",
                {
                    "key": clamp.key,
                    "requested": clamp.requested,
                    "applied": clamp.applied,
                },
            )
            self._alert(
                "warning",
                policy.RISK_CEILING_CLAMPED,
                f"{clamp.key}={clamp.requested} is above the hard ceiling; running at "
                f"{clamp.applied}",
                actor="config",
            )
        self._verify_audit_at_start()
        for child in self.children.values():
            self._start_child(child)
        if self.halt is not None:
            log.warning("starting halted: %s (%s)", self.halt.reason, self.halt.message)
        self._check_kill_switch_file()

    def _verify_audit_at_start(self) -> None:
        """#17: a broken or unanchored-cut audit chain halts before any actor acts on it."""
        result = verify_audit_log(self.audit.path, self.audit.anchor)
        if result.ok:
            return
        at = f" at line {result.first_broken_line}" if result.first_broken_line else ""
        self.halt_system("integrity", "audit_chain_broken",
                         f"audit log {self.audit.path} broken{at}: {result.reason}", {})

    def stop(self) -> None:
        """Abort a running cycle, stop children in reverse order with timeouts, persist."""
        if self.cycle is not None:
            self.cycle.abandon_remaining("aborted", "stopped by operator signal")
            self._finish_cycle()
        timeout = self.cfg.supervision.shutdown_timeout_seconds
        for child in reversed(list(self.children.values())):
            ref, child.ref = child.ref, None
            if ref is None:
                continue
            try:
                ref.stop(block=True, timeout=timeout)
            except pykka.Timeout:
                log.error(
                    "%s did not stop within %.1fs; abandoned",
                    child.spec.name,
                    timeout,
                    extra={"actor": child.spec.name},
                )
            except pykka.ActorDeadError:
                pass
        self._save_state()
        self.writes.retry(self.halt, self.state, force=True)
        self.writes.log_unwritten()
        self.net.stop(drain_timeout=min(2.0, timeout))
        self._log_filter.uninstall()

    # --- running -----------------------------------------------------------------------------

    def run_once(self) -> CycleSummary | None:
        """Run one cycle to completion (or halt/stop); None when refused because halted."""
        if not self.begin_cycle():
            return None
        while self.cycle is not None:
            if self.stop_event.is_set():
                self.cycle.abandon_remaining("aborted", "stopped by operator signal")
                self._finish_cycle()
                break
            self.pump(self.cfg.supervision.kill_switch_poll_seconds)
        return self.last_summary

    def run_daemon(self, interval_seconds: float) -> None:
        """Run cycles every ``interval_seconds`` until :attr:`stop_event` is set."""
        next_at = self.clock.monotonic()
        self.net.daemon_interval_seconds = interval_seconds
        poll = self.cfg.supervision.kill_switch_poll_seconds
        while not self.stop_event.is_set():
            now = self.clock.monotonic()
            if self.cycle is None and not self.halted and now >= next_at:
                self.begin_cycle()
                next_at = now + interval_seconds
            wait = poll if self.cycle is not None else min(poll, max(0.0, next_at - now))
            self.pump(wait)

    def pump(self, timeout: float) -> None:
        """Handle every queued event (waiting up to ``timeout`` for the first), then housekeep."""
        try:
            first: Message | None = self.inbox.get(timeout=max(0.0, timeout))
        except queue.Empty:
            first = None
        event = first
        while event is not None:
            self._dispatch(event)
            try:
                event = self.inbox.get_nowait()
            except queue.Empty:
                event = None
        self._housekeeping()

    # --- events ------------------------------------------------------------------------------

    def _dispatch(self, event: Message) -> None:
        match event:
            case ActorCrashed(actor=name, generation=gen, error=error):
                self._on_child_down(name, gen, "crashed", error)
            case ActorStartFailed(actor=name, generation=gen, error=error):
                self._on_child_down(name, gen, "crashed", f"on_start failed: {error}")
            case KillSwitchTripped(source=source, detail=detail):
                self.trip_kill_switch(source, detail)
            case Reply():
                self._on_reply(event)
            case _:
                log.error("supervisor received unexpected %s; ignored", type(event).__name__)

    def _check_integrity(self) -> None:
        if self.halted:
            return
        for action, check in self.integrity_checks:
            reason = check()
            if reason is not None:
                self.halt_system("integrity", action, reason, {})
                return

    def _housekeeping(self) -> None:
        now = self.clock.monotonic()
        self._check_integrity()
        if self.audit.head is not None and self.audit.head != self._audit_head_reported:
            self._audit_head_reported = self.audit.head
            self.telemetry.update(audit_head=self.audit.head)
        self._check_kill_switch_file()
        self._check_external_resume()
        if now >= self._next_watch:
            self._next_watch = now + self.cfg.supervision.kill_switch_poll_seconds
            self._tell_children(CheckKillSwitch(), watchers_only=True)
        self.writes.retry(self.halt, self.state)
        self._start_due_restarts(now)
        self._check_step_deadline(now)
        if self.cycle is not None and self.cycle.pending is None:
            self._advance()
        try:
            self.telemetry.beat()
        except OSError as exc:  # often the first sign of a full or read-only state directory
            if self.halt is None:  # (while halted it says nothing new: no log flood)
                self.writes.failed("state/heartbeat.json", exc)
