"""The supervisor's cycle: send each step to its actor, take the replies, count the outcome.

The steps run in order (``core/supervision.py``); the supervisor tells a step's actor its
request, sets the step's deadline and goes back to its event loop, so a kill switch, a crash
report or a timeout is handled while the step runs. A failed step skips what its policy says.

One fault counts once toward ``headless.max_consecutive_failures``: when a step's actor is still
in its restart backoff after a fault an earlier cycle counted, the step is skipped as
``child_restarting`` and the cycle is ``degraded`` (neither counted nor a reset), instead of
failing a second time for the same crash when the daemon's interval is shorter than the backoff.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import msgspec
import pykka

from aistock_actors.config import Config
from aistock_actors.core.supervision import policy
from aistock_actors.messages import Reply, StepFailed
from aistock_actors.runtime.children import Child, Children
from aistock_actors.runtime.clock import Clock
from aistock_actors.runtime.cycle_run import (
    CycleRun,
    PendingStep,
    new_cycle_id,
    reply_data,
    utc_now_iso,
)
from aistock_actors.runtime.restarts import ChildRestarts, HaltHook
from aistock_actors.runtime.state_writer import StateWriter
from aistock_actors.runtime.telemetry import Telemetry
from aistock_actors.store.state import CycleSummary, StepRecord, SupervisorState

log = logging.getLogger("aistock_actors.runtime.supervisor")


class CycleDriver:
    """Running one cycle, one event at a time."""

    def __init__(
        self,
        children: Children,
        *,
        config: Config,
        clock: Clock,
        state: SupervisorState,
        halt_flag: threading.Event,
        writes: StateWriter,
        telemetry: Telemetry,
        restarts: ChildRestarts,
        halt: HaltHook,
    ) -> None:
        self.children = children
        self.cfg = config
        self.clock = clock
        self.state = state
        self.halt_flag = halt_flag
        self.writes = writes
        self.telemetry = telemetry
        self.restarts = restarts
        self.halt = halt
        self.cycle: CycleRun | None = None
        self.last_summary: CycleSummary | None = None

    def begin(self) -> bool:
        """Start a cycle unless halted or one is running."""
        if self.halt_flag.is_set() or self.cycle is not None:
            return False
        self.cycle = CycleRun(
            cycle_id=new_cycle_id(self.state.cycles_total + 1, self.clock),
            clock=self.clock,
            started_at=utc_now_iso(self.clock),
        )
        self.telemetry.update(cycle_running=True)
        log.info("cycle %s started", self.cycle.cycle_id)
        self.advance()
        return True

    def abandon(self, status: str, detail: str) -> None:
        """End the running cycle (if any): the step in flight and the rest get ``status``."""
        if self.cycle is not None:
            self.cycle.abandon_remaining(status, detail)
            self.finish()

    def advance(self) -> None:
        """Send the next step (skipping what the failure policy skips), or finish the cycle."""
        cycle = self.cycle
        while cycle is not None and self.cycle is cycle and cycle.pending is None:
            if not cycle.queue:
                self.finish()
                return
            step = cycle.queue.pop(0)
            if step in cycle.skip:
                cycle.record(step, "skipped", detail=cycle.skip[step])
                continue
            child = self.children.for_step(step)
            if child is None or child.spec.make_request is None:
                cycle.record(step, "not_built", detail="not built yet")
                continue
            self._send_step(cycle, step, child)

    def _send_step(self, cycle: CycleRun, step: str, child: Child) -> None:
        if child.ref is None:
            self._record_restarting(cycle, step, child)
            return
        request_id = f"{cycle.cycle_id}:{step}"
        assert child.spec.make_request is not None
        request = child.spec.make_request(request_id, cycle)
        now = self.clock.monotonic()
        timeout = getattr(self.cfg.supervision.step_timeouts, step, 60.0)
        cycle.pending = PendingStep(
            step=step,
            actor=child.spec.name,
            generation=child.generation,
            request_id=request_id,
            deadline=now + timeout,
            started=self.clock.monotonic(),
        )
        try:
            child.ref.tell(request)
        except pykka.ActorDeadError:
            cycle.finish_pending("crashed", detail=f"{child.spec.name} was dead")
            self._alert_step_failure(step, "crashed", "actor dead")
            self.restarts.schedule(child, counted=True)

    def _record_restarting(self, cycle: CycleRun, step: str, child: Child) -> None:
        """The step's actor is in its restart backoff: skip the step if a cycle already counted
        the fault, else fail it (counting the fault now); later steps follow the failure policy
        either way."""
        name = child.spec.name
        due = child.restart_due
        data: dict[str, Any] = {
            "reason": policy.CHILD_RESTARTING,
            "actor": name,
            "generation": child.generation,
            "restart_in_s": (
                None if due is None else round(max(0.0, due - self.clock.monotonic()), 3)
            ),
        }
        if policy.restarting_step_status(child.fault_counted) == "failed":
            child.fault_counted = True
            detail = f"{policy.CHILD_RESTARTING}: {name} unavailable (restarting)"
            cycle.record(step, "failed", detail=detail, data=data)
            self._alert_step_failure(step, "failed", detail)
            return
        detail = f"{policy.CHILD_RESTARTING}: {name} restarting after a fault already counted"
        cycle.record(step, "skipped", detail=detail, data=data)
        for later in policy.steps_to_skip(step):
            cycle.skip.setdefault(later, f"skipped: {step} {policy.CHILD_RESTARTING}")
        log.warning("step %s skipped: %s", step, detail, extra={"actor": name})
        self.writes.audit(
            policy.STEP_SKIPPED_CHILD_RESTARTING,
            name,
            {"cycle_id": cycle.cycle_id, "step": step, **data},
        )

    def _alert_step_failure(self, step: str, status: str, detail: str) -> None:
        code = policy.FAILURE_ALERT_CODES.get(step, f"{step}_failed")
        self.writes.alert(
            "error",
            code,
            f"step {step} {status}: {detail}",
            details={"step": step, "status": status},
        )

    def on_reply(self, reply: Reply) -> None:
        """A step's reply: record it (stale replies are ignored), then advance."""
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
        self.advance()

    def fail_step_of(self, actor: str, status: str, error: str) -> bool:
        """``actor`` crashed: fail the step it is running (if any); whether it was."""
        cycle = self.cycle
        pending = cycle.pending if cycle is not None else None
        if cycle is None or pending is None or pending.actor != actor:
            return False
        cycle.finish_pending(status, detail=error)
        self._alert_step_failure(pending.step, status, error)
        return True

    def check_deadline(self, now: float) -> None:
        """Fail the step in flight as ``timeout`` past its deadline; restart its actor."""
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
            self.restarts.schedule(child, counted=True)

    def finish(self) -> None:
        """Close the running cycle, count it, audit it; halt at the failure cap."""
        cycle, self.cycle = self.cycle, None
        if cycle is None:
            return
        summary = cycle.summary()
        restarting = restarting_actors(summary.steps)
        if restarting:
            outcome = policy.cycle_outcome((s.status for s in summary.steps), restarting=True)
            summary = msgspec.structs.replace(summary, outcome=outcome)
        self.last_summary = summary
        decision = self._count_cycle(summary)
        failed = [s.name for s in summary.steps if policy.is_failure(s.status)]
        details: dict[str, Any] = {
            "cycle_id": summary.cycle_id,
            "outcome": summary.outcome,
            "failed_steps": failed,
            "consecutive_failures": self.state.consecutive_failures,
        }
        if restarting:
            details["restarting"] = restarting
        action = CYCLE_AUDIT_ACTIONS.get(summary.outcome)
        if action is not None:
            self.writes.audit(action, "supervisor", details)
        log.info("cycle %s %s", summary.cycle_id, summary.outcome)
        report_cycle(self.telemetry, summary, self.state.consecutive_failures)
        if decision.halt:
            self.halt(
                "max_failures_reached",
                policy.MAX_FAILURES_REACHED,
                f"{self.state.consecutive_failures} consecutive failed cycle(s) "
                f"({decision.reason}): halted_automation",
                details,
            )

    def _count_cycle(self, summary: CycleSummary) -> policy.FailureDecision:
        """Apply the failure counter's decision and the totals to ``supervisor.json``."""
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
        elif summary.outcome == "degraded":
            st.cycles_degraded += 1
        self.writes.save_state(self.state)
        return decision


CYCLE_AUDIT_ACTIONS = {
    "failed": policy.AUTOPILOT_FAILED,
    "succeeded": policy.CYCLE_SUCCEEDED,
    "degraded": policy.CYCLE_DEGRADED,
}
"""The audit action of a finished cycle by outcome (halted and aborted cycles: the halt's own)."""


def restarting_actors(steps: list[StepRecord]) -> list[str]:
    """Actors whose step a cycle skipped as ``child_restarting``."""
    return [
        str(s.data.get("actor"))
        for s in steps
        if s.status == "skipped" and s.data.get("reason") == policy.CHILD_RESTARTING
    ]


def report_cycle(telemetry: Telemetry, summary: CycleSummary, consecutive_failures: int) -> None:
    """Telemetry hook: count a finished cycle and the figures its steps reported."""
    steps = {step.name: step for step in summary.steps}
    ingest = steps.get("ingest")
    judge = steps.get("judge")
    bars = int(ingest.data.get("bars_added", 0)) if ingest and ingest.status == "ok" else 0
    verdict = judge.data.get("status") if judge and judge.status == "ok" else None
    telemetry.cycle_finished(
        summary.cycle_id,
        summary.outcome,
        bars,
        promoted=int(verdict == "approved"),
        rejected=int(verdict == "rejected"),
    )
    telemetry.update(consecutive_failures=consecutive_failures)
    # Risk and paper trading report their figures in their step data (messages/risk.py,
    # messages/trading.py); the ledger and limits files stay the truth.
    risk, trade, snap = steps.get("risk"), steps.get("trade"), telemetry.snapshot()
    if risk is not None and risk.status == "ok" and isinstance(risk.data.get("limits"), dict):
        telemetry.update(
            risk_limits={k: float(v) for k, v in risk.data["limits"].items()},
            risk_adjustments=snap.risk_adjustments + int(risk.data.get("adjustments", 0)),
        )
    if trade is not None and trade.status == "ok" and "equity" in trade.data:
        telemetry.update(
            equity=float(trade.data["equity"]),
            drawdown=float(trade.data["drawdown"]),
            trades_executed=snap.trades_executed + int(trade.data.get("fills", 0)),
        )
