"""The supervisor's halt and kill-switch latch.

A halt sets the shared ``halt_flag`` first (every side effect checks it at the moment it acts,
and a pool job in flight is cancelled by it: ``runtime/jobs.py``), then writes ``state/HALTED``,
audits, raises a critical alert, tells every actor ``Halt`` and ends the running cycle. A kill
switch (file, remote, drawdown, risk ceiling) is latched so a trip is audited once, not every
poll. The halt survives a restart of the process; when the operator removes ``state/HALTED``
(``--resume``/``--unkill``) the running daemon notices within a poll and tells every actor
``Resume``. A halt the state directory refuses to store holds in memory and is written once
writes work again (``state_writer.py``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aistock_actors.core.supervision import policy
from aistock_actors.messages.control import Halt, Resume
from aistock_actors.runtime.children import Children
from aistock_actors.runtime.clock import Clock
from aistock_actors.runtime.cycle_run import utc_now_iso
from aistock_actors.runtime.state_writer import StateWriter
from aistock_actors.runtime.telemetry import Telemetry
from aistock_actors.store.state import (
    HaltState,
    SupervisorState,
    halted_path,
    kill_switch_active,
    read_halt,
)

log = logging.getLogger("aistock_actors.runtime.supervisor")


class HaltLatch:
    """Halting, the kill switch, and the operator clearing a halt."""

    def __init__(
        self,
        state_dir: Path,
        *,
        halt_flag: threading.Event,
        clock: Clock,
        state: SupervisorState,
        writes: StateWriter,
        telemetry: Telemetry,
        children: Children,
        end_cycle: Callable[[str], None],
    ) -> None:
        self.state_dir = state_dir
        self.halt_flag = halt_flag
        self.clock = clock
        self.state = state
        self.writes = writes
        self.telemetry = telemetry
        self.children = children
        self.end_cycle = end_cycle
        """Abandons the running cycle (if any) as halted, with the halt's action."""
        self.halt: HaltState | None = read_halt(state_dir)
        if self.halt is not None:
            halt_flag.set()
        self.kill_active = self.halt is not None and self.halt.kind == "kill_switch"
        """Latched while a kill switch is in force, so a trip is audited once, not every poll."""

    @property
    def halted(self) -> bool:
        """Whether the system is halted."""
        return self.halt_flag.is_set()

    def halt_system(self, kind: str, action: str, message: str, details: dict[str, Any]) -> None:
        """Halt: set the flag first, persist, audit, alert, broadcast, stop the cycle.

        A halt the state directory refuses to store holds in memory (nothing trades, the
        process stays up) and is written by the housekeeping once writes work again.
        """
        self.halt_flag.set()
        if self.halt is None:
            self.halt = HaltState(
                kind=kind,
                reason=action,
                message=message,
                halted_at=utc_now_iso(self.clock),
                details=details,
            )
            self.writes.begin_halt()
            self.writes.write_halt_part(self.halt, "file")
            self.telemetry.update(halted=True, halt_reason=action)
            self.writes.audit(action, "supervisor", {"message": message, **details})
            self.writes.write_halt_part(self.halt, "alert")
            log.critical("HALTED: %s", message)
        self.children.tell_all(Halt(kind=kind, reason=action))
        self.end_cycle(action)

    def trip_kill_switch(self, source: str, detail: str) -> None:
        """A kill-switch source fired: halt with ``kill_switch_activated`` (audited once)."""
        self.halt_flag.set()
        if self.kill_active:
            return
        self.kill_active = True
        self.telemetry.update(kill_switch=True)
        message = f"kill switch activated ({source}){': ' + detail if detail else ''}"
        if self.halt is None:
            self.halt_system(
                "kill_switch", policy.KILL_SWITCH_ACTIVATED, message, {"source": source}
            )
            return
        details = {"source": source, "already_halted": self.halt.reason}
        self.writes.audit(
            policy.KILL_SWITCH_ACTIVATED, "supervisor", {"message": message, **details}
        )
        self.writes.alert("critical", policy.KILL_SWITCH_ACTIVATED, message, details=details)

    def check_kill_switch_file(self) -> None:
        """Trip the kill switch if ``state/KILL_SWITCH`` exists (works with no watcher up)."""
        if not self.kill_active and kill_switch_active(self.state_dir):
            self.trip_kill_switch("file", str(self.state_dir / "KILL_SWITCH"))

    def check_external_resume(self) -> None:
        """Resume when the operator removed ``state/HALTED`` and no kill switch is set."""
        if self.halt is None or "file" in self.writes.halt_unwritten:
            return  # a halt not yet on disk is not one the operator could have cleared
        if halted_path(self.state_dir).exists():
            return
        if kill_switch_active(self.state_dir):
            return
        log.warning("halt cleared by the operator (%s); resuming", self.halt.reason)
        self.halt = None
        self.kill_active = False
        self.telemetry.update(
            halted=False, halt_reason=None, kill_switch=False, consecutive_failures=0
        )
        self.halt_flag.clear()
        self.state.consecutive_failures = 0
        self.writes.save_state(self.state)
        self.children.tell_all(Resume())

    def write_failed(self, what: str, exc: OSError) -> None:
        """A state write was refused (``StateWriter`` logged it): a ``resource`` halt unless
        already halted. The process stays up (``/healthz`` turns 503, the kill switch keeps
        working) and the writer retries what is missing once the disk takes writes again."""
        if self.halt is None:
            self.halt_system(
                "resource",
                policy.STATE_WRITE_FAILED,
                f"cannot write {what}: {exc.strerror or exc}; halted (state directory "
                "read-only or full?)",
                {"file": what, "errno": exc.errno, "error": str(exc)},
            )
