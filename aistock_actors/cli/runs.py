"""Running the autopilot from the CLI: one cycle (``--run-once``), the daemon (``--daemon``), the
signal handling that stops them and the printed cycle summary."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING

from aistock_actors.cli.exit_codes import EXIT_CYCLE_FAILED, EXIT_HALTED, EXIT_OK
from aistock_actors.config import LoadedConfig
from aistock_actors.runtime.clock import SYSTEM_CLOCK, Clock
from aistock_actors.services import operator_actions as operator
from aistock_actors.store.lock import DaemonLock
from aistock_actors.store.state import CycleSummary

if TYPE_CHECKING:  # the runtime (pandas, scikit-learn, aiohttp) loads only for cycles, so that
    # --kill, --unkill, --resume and --status start in a fraction of a second
    from aistock_actors.runtime.supervisor import Supervisor

log = logging.getLogger("aistock_actors.cli.app")


def _stop_on_signals() -> threading.Event:
    """Route SIGTERM/SIGINT to a clean stop; installed first, before the lock and the (slow)
    runtime imports, so a signal at any moment of start-up still stops cleanly."""
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.warning("received %s: stopping cleanly", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return stop


def _start_supervisor(
    loaded: LoadedConfig, stop: threading.Event, clock: Clock = SYSTEM_CLOCK
) -> Supervisor:
    """Build and start the production supervisor, sharing the signal handlers' stop event."""
    from aistock_actors.runtime.child_specs import default_specs
    from aistock_actors.runtime.supervisor import Supervisor
    from aistock_actors.services import model_hygiene
    from aistock_actors.services.pipeline_params import check_parallel
    from aistock_actors.store.models import ModelStore

    check_parallel(loaded.config)  # a missing optional extra is a config error, before any actor
    from aistock_actors.config.safety_paths import check_safety_paths

    check_safety_paths(loaded.config, os.environ)  # #17: no dead kill switch, report or webhook
    from aistock_actors.cli.download import check_data_source

    check_data_source(loaded)  # a missing key variable or unknown calendar: one line, no actor
    supervisor = Supervisor(loaded, default_specs(), clock=clock)
    supervisor.stop_event = stop
    # No cycle runs yet: a model folder an interrupted cycle left (no verdict names it) goes now.
    model_hygiene.remove_orphans(
        ModelStore(loaded.models_dir, supervisor.alerts),
        loaded.state_dir,
        supervisor.audit,
        supervisor.state,
    )
    supervisor.start()
    return supervisor


def run_once(loaded: LoadedConfig) -> int:
    """``--run-once``: one cycle under the state-dir lock; print its summary."""
    from aistock_actors.runtime import progress

    stop = _stop_on_signals()
    with DaemonLock(loaded.state_dir, "run-once"):
        supervisor = _start_supervisor(loaded, stop)
        if progress.should_enable(sys.stderr):  # a person is watching: show long work
            progress.enable(sys.stderr)
        try:
            summary = supervisor.run_once()
        finally:
            progress.disable()
            supervisor.stop()
        if summary is None:
            halt = supervisor.halt
            reason = f"{halt.reason}: {halt.message}" if halt else "halted"
            print(
                f"refused: the autopilot is halted ({reason}). "
                "Fix the cause, then --unkill or --resume.",
                file=sys.stderr,
            )
            return EXIT_HALTED
        print(render_summary(summary, loaded))
        return {"succeeded": EXIT_OK, "failed": EXIT_CYCLE_FAILED, "halted": EXIT_HALTED}.get(
            summary.outcome, EXIT_OK
        )


def run_daemon(loaded: LoadedConfig, interval_seconds: float, *, on_bar_close: bool = False) -> int:
    """``--daemon``: cycles every interval (or after each bar close) until SIGTERM/SIGINT; exit 0
    after a clean stop."""
    stop = _stop_on_signals()
    with DaemonLock(loaded.state_dir, "daemon") as lock:
        supervisor = _start_supervisor(loaded, stop)
        supervisor.integrity_checks.append(("daemon_lock_lost", lock.check))  # #17
        log.info("daemon started: state=%s interval=%.1fs", loaded.state_dir, interval_seconds)
        try:
            supervisor.run_daemon(interval_seconds, on_bar_close=on_bar_close)
        finally:
            supervisor.stop()
        log.info("daemon stopped cleanly")
    return EXIT_OK


def render_summary(summary: CycleSummary, loaded: LoadedConfig) -> str:
    """The cycle summary printed by ``--run-once``."""
    total = sum(step.duration_s for step in summary.steps)
    lines = [
        f"cycle {summary.cycle_id}: {summary.outcome.upper()} ({total:.2f}s)",
        f"  {'step':<10}{'status':<11}{'time':>8}  detail",
    ]
    for step in summary.steps:
        detail = operator.step_detail(step)
        lines.append(f"  {step.name:<10}{step.status:<11}{step.duration_s:>7.2f}s  {detail}")
    state_dir = loaded.state_dir
    lines.append(
        f"state: {state_dir}  audit: {state_dir / 'audit' / 'log.jsonl'}  "
        f"alerts: {state_dir / 'alerts'}"
    )
    return "\n".join(lines)
