"""What the parts of the supervisor share: the children's bookkeeping and the common state.

:class:`aistock_actors.runtime.supervisor.Supervisor` is assembled from one part per responsibility
—
restarts (``restarts.py``), the halt and kill-switch latch (``halting.py``), the cycle
(``cycle_driver.py``) — over :class:`SupervisorBase`, which declares the state they all use
(set up by ``Supervisor.__init__``) and the hooks one part calls in another.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pykka

from aistock_actors.actors.base import SupervisedActor
from aistock_actors.config import Config, LoadedConfig
from aistock_actors.core.supervision import policy
from aistock_actors.messages import Message, Request
from aistock_actors.net.services import NetServices
from aistock_actors.runtime.clock import Clock
from aistock_actors.runtime.cycle_run import CycleRun
from aistock_actors.runtime.state_writer import StateWriter
from aistock_actors.runtime.telemetry import Telemetry
from aistock_actors.store.alerts import AlertSink, Severity
from aistock_actors.store.audit import AuditLog
from aistock_actors.store.state import CycleSummary, HaltState, SupervisorState

RequestFactory = Callable[[str, CycleRun], Request]
"""Builds a step's request from its request id and the running cycle."""


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
    fault_counted: bool = False
    """Whether a cycle already counted the fault this child is restarting from."""
    history: list[str] = field(default_factory=list)


class SupervisorBase:
    """The supervisor's shared state and the hooks between its parts."""

    loaded: LoadedConfig
    cfg: Config
    state_dir: Path
    audit: AuditLog
    alerts: AlertSink
    writes: StateWriter
    telemetry: Telemetry
    net: NetServices
    inbox: queue.Queue[Message]
    halt_flag: threading.Event
    """Set the moment the system halts; every side effect checks it."""
    stop_event: threading.Event
    clock: Clock
    rng: Callable[[], float]
    state: SupervisorState
    """Counters persisted in ``supervisor.json``."""
    halt: HaltState | None
    children: dict[str, Child]
    intensity: policy.RestartIntensity
    cycle: CycleRun | None
    last_summary: CycleSummary | None

    # --- shared helpers ------------------------------------------------------------------------

    def tell(self, message: Message) -> None:
        """Thread-safe entry to the supervisor's inbox (handed to actors as ``report``)."""
        self.inbox.put(message)

    def _save_state(self) -> None:
        self.writes.save_state(self.state)

    def _audit(self, action: str, actor: str, details: dict[str, Any]) -> None:
        self.writes.audit(action, actor, details)

    def _alert(
        self,
        severity: Severity,
        code: str,
        message: str,
        *,
        actor: str = "supervisor",
        details: dict[str, Any] | None = None,
    ) -> None:
        self.writes.alert(severity, code, message, actor=actor, details=details)

    def _tell_children(self, message: Message, *, watchers_only: bool = False) -> None:
        """Tell each live child, one ref at a time: ``ActorRegistry.broadcast`` would stop at
        the first dead actor, and a dead actor's crash is reported through ``on_failure``."""
        for child in self.children.values():
            if child.ref is None or (watchers_only and child.spec.step is not None):
                continue
            with contextlib.suppress(pykka.ActorDeadError):
                child.ref.tell(message)

    # --- hooks implemented by the parts ----------------------------------------------------------

    def halt_system(self, kind: str, action: str, message: str, details: dict[str, Any]) -> None:
        """Halt the system (``halting.HaltLatch``)."""
        raise NotImplementedError

    def _schedule_restart(self, child: Child, *, counted: bool) -> None:
        """Replace a failed child after a backoff (``restarts.ChildRestarts``)."""
        raise NotImplementedError

    def _finish_cycle(self) -> None:
        """Close the running cycle and count it (``cycle_driver.CycleDriver``)."""
        raise NotImplementedError

    def _alert_step_failure(self, step: str, status: str, detail: str) -> None:
        """Raise a failed step's error alert (``cycle_driver.CycleDriver``)."""
        raise NotImplementedError
