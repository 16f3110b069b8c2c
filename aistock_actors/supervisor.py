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
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pykka

from aistock_actors.actors.base import ActorContext, SupervisedActor
from aistock_actors.config import LoadedConfig
from aistock_actors.core import supervision as policy
from aistock_actors.cycle import CycleRun, PendingStep, new_cycle_id, reply_data, utc_now_iso
from aistock_actors.messages import Message, Reply, Request, StepFailed
from aistock_actors.messages.control import (
    ActorCrashed,
    ActorStartFailed,
    CheckKillSwitch,
    Halt,
    KillSwitchTripped,
    Resume,
)
from aistock_actors.net.services import NetServices
from aistock_actors.redact import Redactor
from aistock_actors.store.alerts import AlertSink, Severity
from aistock_actors.store.audit import AuditLog
from aistock_actors.store.state import (
    CycleSummary,
    HaltState,
    halted_path,
    kill_switch_active,
    load_supervisor_state,
    read_halt,
    save_supervisor_state,
    write_halt,
)
from aistock_actors.telemetry import Telemetry

log = logging.getLogger(__name__)

RequestFactory = Callable[[str, CycleRun], Request]

STATE_WRITE_FAILED = "state_write_failed"
"""Halt reason (kind ``resource``) and critical alert: the state directory refused a write."""
WRITE_RETRY_SECONDS = 1.0
"""How often writes that failed (the halt, audit records, ``supervisor.json``) are retried."""
AUDIT_BACKLOG_MAX = 10_000
"""Audit records kept in memory while the audit log cannot be written (oldest dropped, logged)."""


@dataclass(frozen=True)
class ChildSpec:
    """How to start one child and which cycle step (if any) it performs."""

    name: str
    actor_class: type[SupervisedActor]
    step: str | None = None
    make_request: RequestFactory | None = None


@dataclass
class Child:
    """A child's live bookkeeping."""

    spec: ChildSpec
    ref: Any = None
    generation: int = 0
    consecutive_restarts: int = 0
    restart_due: float | None = None
    started_at: float = 0.0
    history: list[str] = field(default_factory=list)


class Supervisor:
    """Owns the actors and the cycle; see the module docstring."""

    def __init__(
        self,
        loaded: LoadedConfig,
        specs: list[ChildSpec],
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.loaded = loaded
        self.cfg = loaded.config
        self.state_dir = loaded.state_dir
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # Secrets (webhook URLs, routing key, tokens) never reach the audit log, alerts or logs.
        self.redactor = Redactor.from_config(self.cfg)
        self._log_filter = self.redactor.logging_filter()
        self.audit = AuditLog(self.state_dir / "audit" / "log.jsonl", redact=self.redactor.details)
        self.alerts = AlertSink(self.state_dir / "alerts", redact=self.redactor.details)
        self.inbox: queue.Queue[Message] = queue.Queue()
        self.halt_flag = threading.Event()
        self.stop_event = threading.Event()
        self.clock = clock
        self.rng = rng
        self.state = load_supervisor_state(self.state_dir, self.alerts)
        self.halt: HaltState | None = read_halt(self.state_dir)
        if self.halt is not None:
            self.halt_flag.set()
        sup = self.cfg.supervision
        self.intensity = policy.RestartIntensity(sup.max_restarts, sup.restart_window_seconds)
        self.children: dict[str, Child] = {s.name: Child(spec=s) for s in specs}
        self.cycle: CycleRun | None = None
        self.last_summary: CycleSummary | None = None
        self._next_watch = 0.0
        # Writes refused by a read-only or full state directory, retried by the housekeeping:
        # the parts of the halt not yet on disk, audit records in order, supervisor.json.
        self._halt_unwritten: list[str] = []
        self._audit_backlog: list[tuple[str, str, dict[str, Any]]] = []
        self._state_unsaved = False
        self._halt_alert_sent = False
        self._next_write_retry = 0.0
        # Latched while a kill switch is in force, so a trip is audited once, not every poll.
        self._kill_active = self.halt is not None and self.halt.kind == "kill_switch"
        self.telemetry = Telemetry(self.state_dir)
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
        for child in self.children.values():
            self._start_child(child)
        if self.halt is not None:
            log.warning("starting halted: %s (%s)", self.halt.reason, self.halt.message)
        self._check_kill_switch_file()

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
        self._retry_writes(force=True)
        if self._halt_unwritten or self._audit_backlog or self._state_unsaved:
            log.critical(
                "stopping with writes the state directory refused: halt parts %s, %d audit "
                "record(s), supervisor.json %s",
                self._halt_unwritten or "none",
                len(self._audit_backlog),
                "unsaved" if self._state_unsaved else "saved",
            )
        self.net.stop(drain_timeout=min(2.0, timeout))
        self._log_filter.uninstall()

    # --- running -----------------------------------------------------------------------------

    @property
    def halted(self) -> bool:
        """Whether the system is halted."""
        return self.halt_flag.is_set()

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
        next_at = self.clock()
        self.net.daemon_interval_seconds = interval_seconds
        poll = self.cfg.supervision.kill_switch_poll_seconds
        while not self.stop_event.is_set():
            now = self.clock()
            if self.cycle is None and not self.halted and now >= next_at:
                self.begin_cycle()
                next_at = now + interval_seconds
            wait = poll if self.cycle is not None else min(poll, max(0.0, next_at - now))
            self.pump(wait)

    def begin_cycle(self) -> bool:
        """Start a cycle unless halted or one is running."""
        if self.halted or self.cycle is not None:
            return False
        self.cycle = CycleRun(cycle_id=new_cycle_id(self.state.cycles_total + 1))
        self.telemetry.update(cycle_running=True)
        log.info("cycle %s started", self.cycle.cycle_id)
        self._advance()
        return True

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

    def tell(self, message: Message) -> None:
        """Thread-safe entry to the supervisor's inbox (handed to actors as ``report``)."""
        self.inbox.put(message)

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

    def _housekeeping(self) -> None:
        now = self.clock()
        self._check_kill_switch_file()
        self._check_external_resume()
        if now >= self._next_watch:
            self._next_watch = now + self.cfg.supervision.kill_switch_poll_seconds
            self._tell_children(CheckKillSwitch(), watchers_only=True)
        self._retry_writes()
        self._start_due_restarts(now)
        self._check_step_deadline(now)
        if self.cycle is not None and self.cycle.pending is None:
            self._advance()
        try:
            self.telemetry.beat()
        except OSError as exc:  # often the first sign of a full or read-only state directory
            if self.halt is None:  # (while halted it says nothing new: no log flood)
                self._write_failed("state/heartbeat.json", exc)

    def _tell_children(self, message: Message, *, watchers_only: bool = False) -> None:
        """Tell each live child, one ref at a time: ``ActorRegistry.broadcast`` would stop at
        the first dead actor, and a dead actor's crash is reported through ``on_failure``."""
        for child in self.children.values():
            if child.ref is None or (watchers_only and child.spec.step is not None):
                continue
            with contextlib.suppress(pykka.ActorDeadError):
                child.ref.tell(message)

    def _on_reply(self, reply: Reply) -> None:
        cycle = self.cycle
        pending = cycle.pending if cycle is not None else None
        if (
            cycle is None
            or pending is None
            or reply.request_id != pending.request_id
            or reply.generation != pending.generation
        ):
            log.info(
                "ignoring stale reply %s from %s gen %d",
                type(reply).__name__,
                reply.actor,
                reply.generation,
                extra={"actor": reply.actor},
            )
            return
        if isinstance(reply, StepFailed):
            detail = f"{reply.reason}: {reply.message}" if reply.message else reply.reason
            cycle.finish_pending("failed", detail=detail, data=reply_data(reply))
            self._alert_step_failure(pending.step, "failed", detail)
        else:
            cycle.results[pending.step] = reply
            cycle.finish_pending("ok", data=reply_data(reply))
        self.children[pending.actor].consecutive_restarts = 0
        self._advance()

    def _on_child_down(self, name: str, generation: int, status: str, error: str) -> None:
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
        if self.cycle is not None and pending is not None and pending.actor == name:
            self.cycle.finish_pending(status, detail=error)
            self._alert_step_failure(pending.step, status, error)
        self._schedule_restart(child)

    # --- restarts ----------------------------------------------------------------------------

    def _start_child(self, child: Child) -> None:
        child.generation += 1
        child.restart_due = None
        child.started_at = self.clock()
        ctx = ActorContext(
            name=child.spec.name,
            generation=child.generation,
            report=self.tell,
            halt_flag=self.halt_flag,
            config=self.loaded,
            audit=self.audit,
            alerts=self.alerts,
            net=self.net,
        )
        child.ref = child.spec.actor_class.start(ctx)
        if child.generation > 1:
            self._audit(policy.ACTOR_RESTARTED, child.spec.name, {"generation": child.generation})
        log.info(
            "started %s gen %d", child.spec.name, child.generation, extra={"actor": child.spec.name}
        )

    def _schedule_restart(self, child: Child) -> None:
        now = self.clock()
        old, child.ref = child.ref, None
        if old is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                old.stop(block=False)
        sup = self.cfg.supervision
        if now - child.started_at > sup.restart_window_seconds:
            child.consecutive_restarts = 0
        child.consecutive_restarts += 1
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

    def _check_step_deadline(self, now: float) -> None:
        cycle = self.cycle
        if cycle is None or cycle.pending is None or now < cycle.pending.deadline:
            return
        pending = cycle.pending
        timeout = pending.deadline - pending.started
        detail = f"no reply within {timeout:g}s; actor abandoned and restarted"
        cycle.finish_pending("timeout", detail=detail)
        self._alert_step_failure(pending.step, "timeout", detail)
        child = self.children[pending.actor]
        if child.generation == pending.generation:
            self._schedule_restart(child)

    # --- the cycle ---------------------------------------------------------------------------

    def _child_for_step(self, step: str) -> Child | None:
        for child in self.children.values():
            if child.spec.step == step:
                return child
        return None

    def _advance(self) -> None:
        cycle = self.cycle
        while cycle is not None and self.cycle is cycle and cycle.pending is None:
            if not cycle.queue:
                self._finish_cycle()
                return
            step = cycle.queue.pop(0)
            if step in cycle.skip:
                cycle.record(step, "skipped", detail=cycle.skip[step])
                continue
            child = self._child_for_step(step)
            if child is None or child.spec.make_request is None:
                cycle.record(step, "not_built", detail="not built yet")
                continue
            self._send_step(cycle, step, child)

    def _send_step(self, cycle: CycleRun, step: str, child: Child) -> None:
        if child.ref is None:
            detail = f"{child.spec.name} unavailable (restarting)"
            cycle.record(step, "failed", detail=detail)
            self._alert_step_failure(step, "failed", detail)
            return
        request_id = f"{cycle.cycle_id}:{step}"
        assert child.spec.make_request is not None
        request = child.spec.make_request(request_id, cycle)
        now = self.clock()
        timeout = getattr(self.cfg.supervision.step_timeouts, step, 60.0)
        cycle.pending = PendingStep(
            step=step,
            actor=child.spec.name,
            generation=child.generation,
            request_id=request_id,
            deadline=now + timeout,
            started=time.monotonic(),
        )
        try:
            child.ref.tell(request)
        except pykka.ActorDeadError:
            cycle.finish_pending("crashed", detail=f"{child.spec.name} was dead")
            self._alert_step_failure(step, "crashed", "actor dead")
            self._schedule_restart(child)

    def _alert_step_failure(self, step: str, status: str, detail: str) -> None:
        code = policy.FAILURE_ALERT_CODES.get(step, f"{step}_failed")
        self._alert(
            "error",
            code,
            f"step {step} {status}: {detail}",
            details={"step": step, "status": status},
        )

    def _finish_cycle(self) -> None:
        cycle, self.cycle = self.cycle, None
        if cycle is None:
            return
        summary = cycle.summary()
        self.last_summary = summary
        hcfg = self.cfg.headless
        decision = policy.after_cycle(
            self.state.consecutive_failures,
            summary.outcome,  # type: ignore[arg-type]
            max_consecutive_failures=hcfg.max_consecutive_failures,
            enable_auto_recovery=hcfg.enable_auto_recovery,
        )
        st = self.state
        st.consecutive_failures = decision.consecutive_failures
        st.cycles_total += 1
        st.last_cycle = summary
        if summary.outcome == "succeeded":
            st.cycles_succeeded += 1
            st.last_success_at = summary.finished_at
        elif summary.outcome == "failed":
            st.cycles_failed += 1
        self._save_state()
        failed = [s.name for s in summary.steps if policy.is_failure(s.status)]
        details = {
            "cycle_id": summary.cycle_id,
            "outcome": summary.outcome,
            "failed_steps": failed,
            "consecutive_failures": st.consecutive_failures,
        }
        if summary.outcome == "failed":
            self._audit(policy.AUTOPILOT_FAILED, "supervisor", details)
        elif summary.outcome == "succeeded":
            self._audit(policy.CYCLE_SUCCEEDED, "supervisor", details)
        log.info("cycle %s %s", summary.cycle_id, summary.outcome)
        self._report_cycle(summary)
        if decision.halt:
            self.halt_system(
                "max_failures_reached",
                policy.MAX_FAILURES_REACHED,
                f"{st.consecutive_failures} consecutive failed cycle(s) "
                f"({decision.reason}): halted_automation",
                details,
            )

    def _report_cycle(self, summary: CycleSummary) -> None:
        steps = {step.name: step for step in summary.steps}
        ingest = steps.get("ingest")
        judge = steps.get("judge")
        bars = int(ingest.data.get("bars_added", 0)) if ingest and ingest.status == "ok" else 0
        verdict = judge.data.get("status") if judge and judge.status == "ok" else None
        self.telemetry.cycle_finished(
            summary.cycle_id,
            summary.outcome,
            bars,
            promoted=int(verdict == "approved"),
            rejected=int(verdict == "rejected"),
        )
        self.telemetry.update(consecutive_failures=self.state.consecutive_failures)
        # Risk and paper trading report their figures in their step data (messages/risk.py,
        # messages/trading.py); the ledger and limits files stay the truth.
        risk, trade, snap = steps.get("risk"), steps.get("trade"), self.telemetry.snapshot()
        if risk is not None and risk.status == "ok" and isinstance(risk.data.get("limits"), dict):
            self.telemetry.update(
                risk_limits={k: float(v) for k, v in risk.data["limits"].items()},
                risk_adjustments=snap.risk_adjustments + int(risk.data.get("adjustments", 0)),
            )
        if trade is not None and trade.status == "ok" and "equity" in trade.data:
            self.telemetry.update(
                equity=float(trade.data["equity"]),
                drawdown=float(trade.data["drawdown"]),
                trades_executed=snap.trades_executed + int(trade.data.get("fills", 0)),
            )

    # --- halt and kill switch ----------------------------------------------------------------

    def halt_system(self, kind: str, action: str, message: str, details: dict[str, Any]) -> None:
        """Halt: set the flag first, persist, audit, alert, broadcast, stop the cycle.

        A halt the state directory refuses to store holds in memory (nothing trades, the
        process stays up) and is written by the housekeeping once writes work again.
        """
        self.halt_flag.set()
        if self.halt is None:
            self.halt = HaltState(
                kind=kind, reason=action, message=message, halted_at=utc_now_iso(), details=details
            )
            self._halt_unwritten, self._halt_alert_sent = ["file", "alert"], False
            self._write_halt_part("file")
            self.telemetry.update(halted=True, halt_reason=action)
            self._audit(action, "supervisor", {"message": message, **details})
            self._write_halt_part("alert")
            log.critical("HALTED: %s", message)
        self._tell_children(Halt(kind=kind, reason=action))
        if self.cycle is not None:
            self.cycle.abandon_remaining("halted", f"halted: {action}")
            self._finish_cycle()

    def trip_kill_switch(self, source: str, detail: str) -> None:
        """A kill-switch source fired: halt with ``kill_switch_activated`` (audited once)."""
        self.halt_flag.set()
        if self._kill_active:
            return
        self._kill_active = True
        self.telemetry.update(kill_switch=True)
        message = f"kill switch activated ({source}){': ' + detail if detail else ''}"
        if self.halt is None:
            self.halt_system(
                "kill_switch", policy.KILL_SWITCH_ACTIVATED, message, {"source": source}
            )
            return
        details = {"source": source, "already_halted": self.halt.reason}
        self._audit(policy.KILL_SWITCH_ACTIVATED, "supervisor", {"message": message, **details})
        self._alert("critical", policy.KILL_SWITCH_ACTIVATED, message, details=details)

    def _check_kill_switch_file(self) -> None:
        if not self._kill_active and kill_switch_active(self.state_dir):
            self.trip_kill_switch("file", str(self.state_dir / "KILL_SWITCH"))

    def _check_external_resume(self) -> None:
        if self.halt is None or "file" in self._halt_unwritten:
            return  # a halt not yet on disk is not one the operator could have cleared
        if halted_path(self.state_dir).exists():
            return
        if kill_switch_active(self.state_dir):
            return
        log.warning("halt cleared by the operator (%s); resuming", self.halt.reason)
        self.halt = None
        self._kill_active = False
        self.telemetry.update(
            halted=False, halt_reason=None, kill_switch=False, consecutive_failures=0
        )
        self.halt_flag.clear()
        self.state.consecutive_failures = 0
        self._save_state()
        self._tell_children(Resume())

    # --- writes the state directory may refuse (read-only or full) ---------------------------

    def _write_failed(self, what: str, exc: OSError) -> None:
        """A state write failed: CRITICAL log, and a ``resource`` halt unless already halted.

        The process stays up (``/healthz`` turns 503, the kill switch keeps working) and
        :meth:`_retry_writes` writes what is missing once the disk takes writes again.
        """
        log.critical("cannot write %s: %s", what, exc)
        self._next_write_retry = self.clock() + WRITE_RETRY_SECONDS
        if self.halt is None:
            self.halt_system(
                "resource",
                STATE_WRITE_FAILED,
                f"cannot write {what}: {exc.strerror or exc}; halted (state directory "
                "read-only or full?)",
                {"file": what, "errno": exc.errno, "error": str(exc)},
            )

    def _save_state(self) -> None:
        """Persist ``supervisor.json``; on failure halt and retry later."""
        try:
            save_supervisor_state(self.state_dir, self.state)
        except OSError as exc:
            self._state_unsaved = True
            self._write_failed("state/supervisor.json", exc)
        else:
            self._state_unsaved = False

    def _audit(self, action: str, actor: str, details: dict[str, Any]) -> None:
        """Append an audit record; records the log refuses wait in order for a retry."""
        self._audit_backlog.append((action, actor, details))
        if len(self._audit_backlog) > AUDIT_BACKLOG_MAX:
            dropped = self._audit_backlog.pop(0)
            log.critical("audit backlog full: dropped %s %s", dropped[0], dropped[2])
        try:
            self._flush_audit()
        except OSError as exc:
            self._write_failed("state/audit/log.jsonl", exc)

    def _flush_audit(self) -> None:
        while self._audit_backlog:
            action, actor, details = self._audit_backlog[0]
            self.audit.append(action, actor, details)
            self._audit_backlog.pop(0)

    def _alert(
        self,
        severity: Severity,
        code: str,
        message: str,
        *,
        actor: str = "supervisor",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Raise an alert; an alert file that cannot be written is logged at CRITICAL (and still
        reaches the webhooks) by the sink, and halts."""
        try:
            self.alerts.raise_alert(severity, code, message, actor=actor, details=details)
        except OSError as exc:
            self._write_failed("state/alerts", exc)

    def _write_halt_part(self, part: str) -> None:
        """Write one part of the halt (``file``: state/HALTED, ``alert``: its critical alert)."""
        halt = self.halt
        if halt is None or part not in self._halt_unwritten:
            return
        try:
            if part == "file":
                write_halt(self.state_dir, halt)
            else:  # the first attempt reaches the webhooks even if the file cannot be written
                notify, self._halt_alert_sent = not self._halt_alert_sent, True
                self.alerts.raise_alert(
                    "critical", halt.reason, halt.message, details=halt.details, notify=notify
                )
        except OSError as exc:
            log.critical("cannot write the halt (%s): %s; it holds in memory", part, exc)
            self._next_write_retry = self.clock() + WRITE_RETRY_SECONDS
            return
        self._halt_unwritten.remove(part)

    def _retry_writes(self, *, force: bool = False) -> None:
        """Write what the state directory refused earlier: the halt first, then the rest."""
        if not (self._halt_unwritten or self._audit_backlog or self._state_unsaved):
            return
        if not force and self.clock() < self._next_write_retry:
            return
        self._next_write_retry = self.clock() + WRITE_RETRY_SECONDS
        self._write_halt_part("file")
        if "file" in self._halt_unwritten:
            return
        try:
            self._flush_audit()
        except OSError as exc:
            log.critical("audit log still not writable: %s", exc)
            return
        self._write_halt_part("alert")
        if self._state_unsaved:
            self._save_state()
        if not (self._halt_unwritten or self._audit_backlog or self._state_unsaved):
            log.warning("state directory writable again: halt and pending records written")
