"""Operator actions on the state directory, for the CLI and the web console alike (no daemon
needed).

``--kill``, ``--unkill``, ``--resume``, ``--ack``, ``--status`` and ``--audit-verify``
(``--approve`` and ``--reject`` are in :mod:`aistock_actors.services.promotion_decisions`). Each
one that changes something is audited with actor ``operator`` (``web`` when the console's control
API calls it). A running daemon notices the change on its next poll (at most
``kill_switch_poll_seconds``). Nothing here imports the ML stack: ``--status`` and ``--kill`` stay
fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from aistock_actors.config import LoadedConfig
from aistock_actors.core.supervision import policy
from aistock_actors.runtime.clock import SYSTEM_CLOCK, Clock
from aistock_actors.services.liveness import Liveness, liveness
from aistock_actors.store.alerts import (
    Alert,
    AlertSink,
    Severity,
    acknowledge,
    alert_counts,
    alert_id,
    list_alerts,
    load_acks,
)
from aistock_actors.store.atomic import fsync_dir
from aistock_actors.store.audit import AuditLog, verify_audit_log
from aistock_actors.store.audit_anchor import anchor_for
from aistock_actors.store.state import (
    CycleSummary,
    HaltState,
    StepRecord,
    clear_halt,
    kill_switch_active,
    kill_switch_path,
    load_supervisor_state,
    read_halt,
    save_supervisor_state,
)

if TYPE_CHECKING:  # loaded lazily: pandas and friends cost --kill/--unkill their latency
    from aistock_actors.services import risk_decisions as trading_ops
    from aistock_actors.store import replay as replay_store


def _audit(loaded: LoadedConfig) -> AuditLog:
    return AuditLog(loaded.state_dir / "audit" / "log.jsonl", anchor=anchor_for(loaded))


OPERATOR = "operator"
"""The audit actor of the CLI's commands (the console's are ``web``)."""


def kill(loaded: LoadedConfig, actor: str = OPERATOR) -> str:
    """Create ``state/KILL_SWITCH``; a running daemon halts within a poll interval."""
    path = kill_switch_path(loaded.state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    existed = path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    os.fsync(fd)
    os.close(fd)
    fsync_dir(path.parent)
    _audit(loaded).append(
        "kill_switch_set_by_operator", actor, {"file": str(path), "already_set": existed}
    )
    return f"kill switch ACTIVE: {path} (a running daemon halts within a second)"


def unkill(loaded: LoadedConfig, actor: str = OPERATOR) -> tuple[str, bool]:
    """Remove the kill switch and clear a kill-switch halt; say whether still halted."""
    state_dir = loaded.state_dir
    path = kill_switch_path(state_dir)
    existed = path.exists()
    path.unlink(missing_ok=True)
    halt = read_halt(state_dir)
    cleared = False
    if halt is not None and halt.kind == "kill_switch":
        clear_halt(state_dir)
        cleared = True
    from aistock_actors.services import risk_decisions as trading_ops

    acknowledged = trading_ops.acknowledge_drawdown(loaded, actor) if cleared else ""
    _audit(loaded).append(
        policy.KILL_SWITCH_DEACTIVATED,
        actor,
        {"file_removed": existed, "halt_cleared": cleared},
    )
    if halt is not None and not cleared:
        return (
            f"kill switch removed, but still HALTED: {halt.reason} ({halt.message}); "
            "fix the cause, then --resume",
            True,
        )
    return (
        f"kill switch deactivated; the autopilot resumes on its next cycle{acknowledged}"
        if existed or cleared
        else "kill switch was not active",
        False,
    )


def resume(loaded: LoadedConfig, actor: str = OPERATOR) -> tuple[str, bool]:
    """Clear a halt and reset the failure count; refused while the kill switch is on."""
    state_dir = loaded.state_dir
    if kill_switch_active(state_dir):
        return ("refused: the kill switch is active (state/KILL_SWITCH); run --unkill", False)
    halt = read_halt(state_dir)
    if halt is None:
        return ("not halted; nothing to resume", True)
    alerts = AlertSink(state_dir / "alerts")
    state = load_supervisor_state(state_dir, alerts)
    previous = state.consecutive_failures
    state.consecutive_failures = 0
    save_supervisor_state(state_dir, state)
    clear_halt(state_dir)
    from aistock_actors.services import risk_decisions as trading_ops

    acknowledged = trading_ops.acknowledge_drawdown(loaded, actor)
    _audit(loaded).append(
        policy.OPERATOR_RESUMED,
        actor,
        {
            "cleared_reason": halt.reason,
            "halted_at": halt.halted_at,
            "consecutive_failures_reset_from": previous,
        },
    )
    return (
        f"resumed: cleared halt '{halt.reason}' (halted at {halt.halted_at}); "
        f"consecutive failures reset to 0{acknowledged}",
        True,
    )


def ack(loaded: LoadedConfig, target: str, actor: str = OPERATOR,
        clock: Clock = SYSTEM_CLOCK) -> str:
    """``--ack ID|all``: acknowledge one alert or every open one; audited ``alerts_acknowledged``.

    Raises ``KeyError`` naming an unknown id (nothing changes then)."""
    root = loaded.state_dir / "alerts"
    done = acknowledge(root, target, actor, clock)
    if done:
        _audit(loaded).append("alerts_acknowledged", actor, {"target": target, "ids": done})
    if not done:
        already = "no open alert" if target == "all" else f"{target} was already acknowledged"
        return f"nothing to acknowledge: {already}"
    open_, _ = alert_counts(root)
    left = ", ".join(f"{k} {v}" for k, v in open_.items() if v) or "none"
    return f"acknowledged {len(done)} alert(s); open now: {left}"


RECENT_ALERTS = 5
"""How many recent critical and error alerts ``--status`` shows."""


class RecentAlert(msgspec.Struct, frozen=True, kw_only=True):
    """One recent critical or error alert as ``--status`` shows it."""

    id: str
    """The alert id (``--ack ID``): its file name without ``.json``."""
    ts: str
    severity: str
    code: str
    actor: str
    message: str
    file: str
    """The alert file (``cat`` it for the details)."""


def recent_alerts(
    alert_root: Path,
    limit: int = RECENT_ALERTS,
    severities: tuple[Severity, ...] = ("critical", "error"),
) -> list[RecentAlert]:
    """The newest ``limit`` open (unacknowledged) alerts of ``severities``, newest first
    (unreadable files skipped)."""
    found: list[RecentAlert] = []
    acked = load_acks(alert_root).acknowledged
    for severity in severities:
        paths = [p for p in list_alerts(alert_root, severity) if alert_id(p) not in acked]
        for path in paths[-limit:]:
            try:
                alert = msgspec.json.decode(path.read_bytes(), type=Alert)
            except (OSError, msgspec.DecodeError, msgspec.ValidationError):
                continue
            found.append(
                RecentAlert(
                    id=alert_id(path),
                    ts=alert.ts,
                    severity=alert.severity,
                    code=alert.code,
                    actor=alert.actor,
                    message=alert.message,
                    file=str(path),
                )
            )
    return sorted(found, key=lambda a: a.ts, reverse=True)[:limit]


class Status(msgspec.Struct, kw_only=True):
    """What ``--status`` shows (and ``--status --json`` prints)."""

    mode: str
    state_dir: str
    halted: bool
    halt: HaltState | None
    kill_switch: bool
    consecutive_failures: int
    max_consecutive_failures: int
    cycles_total: int
    cycles_succeeded: int
    cycles_failed: int
    cycles_degraded: int
    last_success_at: str | None
    last_cycle: CycleSummary | None
    restarts: dict[str, int]
    alerts: dict[str, int]
    """Open (not acknowledged) alerts per severity."""
    not_built: list[str]
    active_model: dict[str, Any] | None = None
    """The active model: id, sha256, activation time, training and backtest metrics."""
    pending_approvals: list[dict[str, Any]] = []
    """Manifest entries waiting for ``--approve`` / ``--reject``."""
    paper: trading_ops.PaperStatus | None = None
    """The paper account: equity, drawdown, positions at their last price."""
    risk: trading_ops.RiskStatus | None = None
    """The risk limits in force against the hard ceilings, and a pending expansion."""
    recent_alerts: list[RecentAlert] = []
    """The newest open critical and error alerts, newest first."""
    alerts_acknowledged: dict[str, int] = {}
    """Acknowledged alerts per severity (``--ack``)."""
    daemon: Liveness | None = None
    """Whether a process runs on this state directory: lock holder and heartbeat age."""
    active_model_why: str = ""
    """One line: why the active model is active, or why there is none."""
    recent_verdicts: list[dict[str, Any]] = []
    """The newest promotion verdicts with every stage, newest first."""
    replay: replay_store.ReplayState | None = None
    """A replay's cursor and summary (``state/replay.json``); None outside a replay."""


def status(loaded: LoadedConfig, clock: Clock = SYSTEM_CLOCK) -> Status:
    """Collect the status from the state files (read-only: creates nothing)."""
    from aistock_actors.services import promotion_decisions as promotion_ops
    from aistock_actors.services import risk_decisions as trading_ops

    state_dir = loaded.state_dir
    state = load_supervisor_state(state_dir, None)
    halt = read_halt(state_dir)
    alert_root = state_dir / "alerts"
    open_alerts, acked_alerts = alert_counts(alert_root)
    active = promotion_ops.active_model_summary(loaded)
    verdicts = promotion_ops.recent_verdicts(loaded)
    return Status(
        mode=loaded.config.mode,
        state_dir=str(state_dir),
        halted=halt is not None,
        halt=halt,
        # In force: the file, or a latched trip of any source (the remote one leaves no file).
        kill_switch=kill_switch_active(state_dir)
        or (halt is not None and halt.kind == "kill_switch"),
        consecutive_failures=state.consecutive_failures,
        max_consecutive_failures=loaded.config.headless.max_consecutive_failures,
        cycles_total=state.cycles_total,
        cycles_succeeded=state.cycles_succeeded,
        cycles_failed=state.cycles_failed,
        cycles_degraded=state.cycles_degraded,
        last_success_at=state.last_success_at,
        last_cycle=state.last_cycle,
        restarts=dict(state.restarts),
        alerts=open_alerts,
        # what the last cycle reported as having no actor: no actor module is imported here
        not_built=[step.name for step in (state.last_cycle.steps if state.last_cycle else [])
                   if step.status == "not_built"],
        active_model=active,
        pending_approvals=promotion_ops.pending_summary(loaded),
        paper=trading_ops.paper_status(state_dir),
        risk=trading_ops.risk_status(state_dir),
        recent_alerts=recent_alerts(alert_root),
        alerts_acknowledged=acked_alerts,
        daemon=liveness(state_dir, clock),
        active_model_why=promotion_ops.active_model_why(active, verdicts),
        recent_verdicts=verdicts,
        replay=_replay(state_dir),
    )


def step_detail(step: StepRecord) -> str:
    """A step's detail, or its scalar data (``bars_added=12, symbols=4``) when it has none."""
    return step.detail or ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in step.data.items()
        if v is not None and not isinstance(v, (list, dict))
    )


def _replay(state_dir: Path) -> replay_store.ReplayState | None:
    from aistock_actors.store import replay as replay_store

    try:
        return replay_store.load_replay(state_dir)
    except ValueError:  # both copies unreadable: --replay says so; --status shows the rest
        return None


def replay_line(st: Status) -> str | None:
    """``replay: complete, 1005 of 1005 bars (2016-11-21 .. 2020-10-01), 2 promotions``."""
    rp = st.replay
    if rp is None:
        return None
    done = (rp.done or "")[:10] or "not started"
    line = f"{rp.status}, {rp.steps_done} of {rp.steps_total} bars ({rp.first_step[:10]} .. {done})"
    if rp.summary is not None and rp.summary.account is not None:
        line += (f", {len(rp.summary.promotions)} promotion(s), paper equity "
                 f"{rp.summary.account.final_equity:,.0f}")
    return line


def degraded_suffix(cycles_degraded: int) -> str:
    """``", N degraded"`` for the cycles line, empty when no cycle was degraded."""
    return f", {cycles_degraded} degraded" if cycles_degraded else ""


def render_status(st: Status) -> str:
    """Human-readable status."""
    lines = [f"mode:                 {st.mode}", f"state dir:            {st.state_dir}"]
    if st.daemon is not None:
        lines.append(f"process:              {st.daemon.summary}")
    if st.halt is not None:
        lines.append(f"HALTED:               {st.halt.reason} since {st.halt.halted_at}")
        lines.append(f"                      {st.halt.message}")
    else:
        lines.append("halted:               no")
    lines.append(f"kill switch:          {'ACTIVE' if st.kill_switch else 'off'}")
    lines.append(f"consecutive failures: {st.consecutive_failures} / {st.max_consecutive_failures}")
    lines.append(
        f"cycles:               {st.cycles_total} total, {st.cycles_succeeded} ok, "
        f"{st.cycles_failed} failed{degraded_suffix(st.cycles_degraded)}; "
        f"last success {st.last_success_at or 'never'}"
    )
    if st.last_cycle is not None:
        lc = st.last_cycle
        lines.append(
            f"last cycle:           {lc.cycle_id} {lc.outcome} (finished {lc.finished_at})"
        )
        for step in lc.steps:
            lines.append(
                f"  {step.name:<10}{step.status:<11}{step.duration_s:>7.2f}s  {step_detail(step)}"
            )
    restarts = ", ".join(f"{k}={v}" for k, v in sorted(st.restarts.items())) or "none"
    lines.append(f"actor restarts:       {restarts}")
    acked = ", ".join(f"{k} {v}" for k, v in st.alerts_acknowledged.items() if v)
    lines.append("alerts:               " + ", ".join(f"{k} {v}" for k, v in st.alerts.items())
                 + f" open; acknowledged: {acked or 'none'}")
    shown = f"newest {len(st.recent_alerts)} critical/error" if st.recent_alerts else "none"
    lines.append(f"recent alerts:        {shown}")
    for alert in st.recent_alerts:
        message = " ".join(alert.message.split())
        lines.append(f"  {alert.ts}  {alert.severity:<8} {alert.code} ({alert.actor}): {message}"
                     f"  [--ack {alert.id}]")
    from aistock_actors.services import promotion_decisions as promotion_ops
    from aistock_actors.services import risk_decisions as trading_ops

    lines.extend(promotion_ops.render_lifecycle(st.active_model, st.pending_approvals))
    if st.active_model_why:
        lines.append(f"why:                  {st.active_model_why}")
    lines.extend(trading_ops.render_trading(st.paper, st.risk))
    lines.append(f"not built yet:        {', '.join(st.not_built) or 'nothing'}")
    replay = replay_line(st)
    if replay is not None:
        lines.append(f"replay:               {replay}")
    return "\n".join(lines)


def audit_verify(loaded: LoadedConfig) -> tuple[str, bool]:
    """Verify the audit chain; name the first broken line."""
    path = loaded.state_dir / "audit" / "log.jsonl"
    result = verify_audit_log(path, anchor_for(loaded))
    torn = " (a torn last line from a crash was skipped)" if result.torn_tail else ""
    at = f" at line {result.first_broken_line}" if result.first_broken_line else ""
    if result.ok:
        return f"audit log OK: {result.records} records, hash chain intact{torn} ({path})", True
    return (
        f"audit log BROKEN{at}: {result.reason} ({path}; "
        f"{result.records} records verified before it)",
        False,
    )
