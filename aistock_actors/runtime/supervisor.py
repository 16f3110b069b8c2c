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

This module is the event loop and the lifecycle. The Supervisor is ONE class composed of small
collaborators it holds (as mopidy's ``Core`` holds its controllers), each in its own module:
:class:`~aistock_actors.runtime.children.Children` (the roster), :class:`ChildRestarts`
(starting and restarting children), :class:`HaltLatch` (the halt and kill-switch latch),
:class:`CycleDriver` (the cycle, its failure counting and telemetry) and :class:`StateWriter`
(writes the state directory may refuse); the pure rules are in ``core/supervision/policy.py``.
The collaborators reach each other only through the hooks wired here.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
from collections.abc import Callable
from typing import Any

import pykka

from aistock_actors.actors.base import ActorContext
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
from aistock_actors.runtime.children import Child, Children, ChildSpec, RequestFactory
from aistock_actors.runtime.clock import SYSTEM_CLOCK, Clock
from aistock_actors.runtime.cycle_driver import CycleDriver
from aistock_actors.runtime.cycle_run import CycleRun
from aistock_actors.runtime.halt_latch import HaltLatch
from aistock_actors.runtime.handover import HandOver
from aistock_actors.runtime.redaction import Redactor
from aistock_actors.runtime.restarts import ChildRestarts
from aistock_actors.runtime.schedule import bar_close_schedule
from aistock_actors.runtime.state_writer import StateWriter
from aistock_actors.runtime.telemetry import Telemetry
from aistock_actors.store.alerts import AlertSink
from aistock_actors.store.audit import AuditLog, verify_audit_log
from aistock_actors.store.audit_anchor import anchor_for
from aistock_actors.store.state import CycleSummary, HaltState, load_supervisor_state

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


class Supervisor:
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
            self.state_dir / "audit" / "log.jsonl",
            redact=self.redactor.details,
            clock=clock,
            anchor=anchor_for(loaded),  # #17: the keyed head outside state/
            max_bytes=self.cfg.security.audit_max_bytes,  # #18: rotation keeps it bounded
            keep_files=self.cfg.security.audit_keep_files,
        )
        self.alerts = AlertSink(
            self.state_dir / "alerts", redact=self.redactor.details, clock=clock
        )
        self.inbox: queue.Queue[Message] = queue.Queue()
        self.halt_flag = threading.Event()
        """Set the moment the system halts; every side effect checks it."""
        self.stop_event = threading.Event()
        """Set (by a signal handler or a test) to end ``run_once``/``run_daemon``."""
        self.stopping = threading.Event()
        """Set when :meth:`stop` begins: pool jobs in flight are cancelled (``jobs.py``)."""
        self.clock, self.rng = clock, rng
        self.hand_over = HandOver()  # the Trainer's results for the Backtester (this process)
        # Writes refused by a read-only or full state directory wait there for a retry.
        self.writes = StateWriter(
            self.state_dir, self.audit, self.alerts, clock.monotonic,
            on_failure=lambda what, exc: self.latch.write_failed(what, exc),
        )
        self.state = load_supervisor_state(self.state_dir, self.alerts)
        """Counters persisted in ``supervisor.json``."""
        self.children = Children(specs)
        # Hardening (#17): (halt action, check) pairs run every housekeeping; a check returning a
        # reason halts (e.g. the daemon's lock file replaced: DaemonLock.check).
        self.integrity_checks: list[tuple[str, Callable[[], str | None]]] = []
        self._audit_head_reported: str | None = None
        self.telemetry = Telemetry(self.state_dir, clock=clock)
        self.latch = HaltLatch(
            self.state_dir,
            halt_flag=self.halt_flag,
            clock=clock,
            state=self.state,
            writes=self.writes,
            telemetry=self.telemetry,
            children=self.children,
            end_cycle=lambda action: self.driver.abandon("halted", f"halted: {action}"),
        )
        self.restarts = ChildRestarts(
            self.children,
            make_context=self._context,
            supervision=self.cfg.supervision,
            clock=clock,
            rng=rng,
            state=self.state,
            telemetry=self.telemetry,
            writes=self.writes,
            halt=self.latch.halt_system,
            fail_step=lambda actor, status, error: self.driver.fail_step_of(actor, status, error),
        )
        self.driver = CycleDriver(
            self.children,
            config=self.cfg,
            clock=clock,
            state=self.state,
            halt_flag=self.halt_flag,
            writes=self.writes,
            telemetry=self.telemetry,
            restarts=self.restarts,
            halt=self.latch.halt_system,
        )
        self._next_watch = 0.0
        # The network loop (webhooks, remote kill switch, health reports, /metrics) is created
        # here and started in start(); alerts raised before that wait in the webhook queues.
        self.net = NetServices(loaded, self.telemetry, self.redactor, self.alerts)
        self.alerts.add_listener(self.net.on_alert)
        halt = self.latch.halt
        self.telemetry.update(
            halted=halt is not None,
            halt_reason=halt.reason if halt else None,
            kill_switch=self.latch.kill_active,
            consecutive_failures=self.state.consecutive_failures,
            restarts=dict(self.state.restarts),
        )

    # --- what callers and tests read -----------------------------------------------------------

    @property
    def halt(self) -> HaltState | None:
        """The halt in force (``state/HALTED``), or ``None``."""
        return self.latch.halt

    @property
    def halted(self) -> bool:
        """Whether the system is halted."""
        return self.latch.halted

    @property
    def cycle(self) -> CycleRun | None:
        """The running cycle, or ``None``."""
        return self.driver.cycle

    @property
    def last_summary(self) -> CycleSummary | None:
        """The last finished cycle's summary."""
        return self.driver.last_summary

    @property
    def intensity(self) -> policy.RestartIntensity:
        """The restart-intensity window (``supervision.max_restarts``)."""
        return self.restarts.intensity

    def tell(self, message: Message) -> None:
        """Thread-safe entry to the supervisor's inbox (handed to actors as ``report``)."""
        self.inbox.put(message)

    def begin_cycle(self) -> bool:
        """Start a cycle unless halted or one is running."""
        return self.driver.begin()

    def halt_system(self, kind: str, action: str, message: str, details: dict[str, Any]) -> None:
        """Halt the system (see :class:`HaltLatch`)."""
        self.latch.halt_system(kind, action, message, details)

    def trip_kill_switch(self, source: str, detail: str) -> None:
        """A kill-switch source fired (see :class:`HaltLatch`)."""
        self.latch.trip_kill_switch(source, detail)

    def _context(self, child: Child) -> ActorContext:
        return ActorContext(
            name=child.spec.name,
            generation=child.generation,
            report=self.tell,
            halt_flag=self.halt_flag,
            config=self.loaded,
            audit=self.audit,
            alerts=self.alerts,
            net=self.net,
            clock=self.clock,
            stopping=self.stopping,
            hand_over=self.hand_over,
        )

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Audit config clamps, start every child in order, honour a kill switch already set."""
        self._log_filter.install()
        self.net.start()
        for clamp in self.loaded.clamps:
            self.writes.audit(
                policy.RISK_CEILING_CLAMPED,
                "config",
                {
                    "key": clamp.key,
                    "requested": clamp.requested,
                    "applied": clamp.applied,
                },
            )
            self.writes.alert(
                "warning",
                policy.RISK_CEILING_CLAMPED,
                f"{clamp.key}={clamp.requested} is above the hard ceiling; running at "
                f"{clamp.applied}",
                actor="config",
            )
        self._verify_audit_at_start()
        for child in self.children.values():
            self.restarts.start(child)
        if self.halt is not None:
            log.warning("starting halted: %s (%s)", self.halt.reason, self.halt.message)
        self.latch.check_kill_switch_file()

    def _verify_audit_at_start(self) -> None:
        """#17: a broken or unanchored-cut audit chain halts before any actor acts on it."""
        result = verify_audit_log(self.audit.path, self.audit.anchor)
        if result.ok:
            return
        at = f" at line {result.first_broken_line}" if result.first_broken_line else ""
        self.halt_system(
            "integrity",
            "audit_chain_broken",
            f"audit log {self.audit.path} broken{at}: {result.reason}",
            {},
        )

    def stop(self) -> None:
        """Abort a running cycle, stop children in reverse order with timeouts, persist."""
        self.stopping.set()
        self.driver.abandon("aborted", "stopped by operator signal")
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
        self.writes.save_state(self.state)
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
                self.driver.abandon("aborted", "stopped by operator signal")
                break
            self.pump(self.cfg.supervision.kill_switch_poll_seconds)
        return self.last_summary

    def run_daemon(self, interval_seconds: float, *, on_bar_close: bool = False) -> None:
        """Run cycles every ``interval_seconds`` (or, ``on_bar_close``, shortly after each bar
        closes: ``runtime/schedule.py``) until :attr:`stop_event` is set."""
        until_next = bar_close_schedule(self.cfg, self.clock) if on_bar_close else None
        next_at = self.clock.monotonic()
        self.net.daemon_interval_seconds = interval_seconds
        poll = self.cfg.supervision.kill_switch_poll_seconds
        while not self.stop_event.is_set():
            now = self.clock.monotonic()
            if self.cycle is None and not self.halted and now >= next_at:
                self.begin_cycle()
                gap = until_next() if until_next else interval_seconds
                if until_next:  # /healthz: no cycle for two of these is unhealthy (weekends too)
                    self.net.daemon_interval_seconds = max(gap, 60.0)
                next_at = now + gap
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
                self.restarts.child_down(name, gen, "crashed", error)
            case ActorStartFailed(actor=name, generation=gen, error=error):
                self.restarts.child_down(name, gen, "crashed", f"on_start failed: {error}")
            case KillSwitchTripped(source=source, detail=detail):
                self.latch.trip_kill_switch(source, detail)
            case Reply():
                self.driver.on_reply(event)
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
        self.latch.check_kill_switch_file()
        self.latch.check_external_resume()
        if now >= self._next_watch:
            self._next_watch = now + self.cfg.supervision.kill_switch_poll_seconds
            self.children.tell_all(CheckKillSwitch(), watchers_only=True)
        self.writes.retry(self.halt, self.state)
        self.restarts.start_due(now)
        self.driver.check_deadline(now)
        if self.cycle is not None and self.cycle.pending is None:
            self.driver.advance()
        try:
            self.telemetry.beat()
        except OSError as exc:  # often the first sign of a full or read-only state directory
            if self.halt is None:  # (while halted it says nothing new: no log flood)
                self.writes.failed("state/heartbeat.json", exc)
