"""The base every supervised actor derives from: crash reporting, generations, the halt flag.

pykka has no supervision, so this base makes failures visible to the supervisor:

- Work arrives as a *tell* (a :class:`~aistock_actors.messages.Request`); because a tell has no
  return channel, the reply is told to the supervisor's inbox, stamped with the actor's name and
  generation. An unexpected exception stops the actor and pykka calls :meth:`on_failure`, which
  reports :class:`ActorCrashed`; the supervisor then starts a *new* instance.
- An exception in ``on_start`` (state reload) stops the actor without ``on_failure``: we catch,
  report :class:`ActorStartFailed`, and re-raise.
- Threads are daemon threads: a hung instance that the supervisor abandoned never keeps the
  process alive.
- The shared halt flag is checked by :meth:`ensure_not_halted` at the moment a side effect happens,
  because a Halt *message* waits behind whatever is already queued.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
import pykka

from aistock_actors.config import LoadedConfig
from aistock_actors.errors import (
    DataError,
    HaltedError,
    JobBackendError,
    JobCancelledError,
    JobTimeoutError,
    StateError,
    UnexpectedMessageError,
)
from aistock_actors.messages import Message, Reply, Request, StepFailed
from aistock_actors.messages.control import ActorCrashed, ActorStartFailed, Halt, Resume
from aistock_actors.runtime import faults, logs
from aistock_actors.runtime.clock import SYSTEM_CLOCK, Clock
from aistock_actors.runtime.jobs import JobRunner
from aistock_actors.services import pipeline_params as lifecycle
from aistock_actors.store.alerts import AlertSink
from aistock_actors.store.audit import AuditLog
from aistock_actors.store.bars import BarStore
from aistock_actors.store.models import ModelStore
from aistock_actors.store.signing import IntegrityKey

if TYPE_CHECKING:
    from aistock_actors.net.services import NetServices
    from aistock_actors.runtime.handover import HandOver

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActorContext:
    """Everything an actor instance is handed at start; nothing is global."""

    name: str
    """Child name, e.g. ``data_ingestor``."""
    generation: int
    """Incremented at every (re)start; replies carry it so stale ones are ignored."""
    report: Callable[[Message], None]
    """Tell the supervisor (thread-safe)."""
    halt_flag: threading.Event
    """Set the moment the system halts; checked before every side effect."""
    config: LoadedConfig
    audit: AuditLog
    alerts: AlertSink
    net: NetServices | None = None
    """The network loop (HTTP client, watchdog, telemetry); None when not running."""
    clock: Clock = SYSTEM_CLOCK
    """Wall, monotonic and market time (the supervisor's clock; a replay drives its market
    time)."""
    stopping: threading.Event | None = None
    """Set when the supervisor stops (SIGTERM): pool jobs in flight are abandoned."""
    hand_over: HandOver | None = None
    """The supervisor's one train -> backtest hand-over (``runtime/handover.py``); None: every
    step builds what it needs itself."""


class SupervisedActor(pykka.ThreadingActor):
    """Base of the eight actors: subclasses implement :meth:`load_state` and :meth:`handle`."""

    use_daemon_thread = True
    child_name: ClassVar[str] = "actor"
    inbox: ClassVar[Any] = None
    """The message union this actor declares (``messages/``) besides ``Halt`` and ``Resume``;
    anything else is refused before dispatch as :class:`UnexpectedMessageError` (a crash)."""

    def __init__(self, ctx: ActorContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.halted = ctx.halt_flag.is_set()

    # --- lifecycle -------------------------------------------------------------------------

    def on_start(self) -> None:
        logs.bind_actor(self.ctx.name)  # runs in this actor's own thread: its log lines name it
        try:
            plan = faults.active()
            if plan is not None:
                plan.before_start(self.ctx.name)
            self.load_state()
        except Exception as exc:
            log.error("%s gen %d failed to start: %r", self.ctx.name, self.ctx.generation, exc)
            self.ctx.report(
                ActorStartFailed(
                    actor=self.ctx.name, generation=self.ctx.generation, error=_fmt(exc)
                )
            )
            raise

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback_: TracebackType | None,
    ) -> None:
        error = _fmt(exception_value) if exception_value is not None else "unknown error"
        log.error("%s gen %d crashed: %s", self.ctx.name, self.ctx.generation, error)
        self.ctx.report(
            ActorCrashed(actor=self.ctx.name, generation=self.ctx.generation, error=error)
        )

    def load_state(self) -> None:
        """Reload this actor's state from disk (never from a previous instance's memory)."""

    # --- dispatch --------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        plan = faults.active()
        if plan is not None and not isinstance(message, (Halt, Resume)):
            message = plan.before_message(self.ctx.name, message)
        match message:
            case Halt():
                self.halted = True
                self.on_halt(message)
            case Resume():
                self.halted = False
                self.on_resume(message)
            case _ if self.inbox is not None and not isinstance(message, self.inbox):
                raise UnexpectedMessageError(
                    f"{self.ctx.name} received unexpected {type(message).__name__} "
                    "(outside its inbox)"
                )
            case Request():
                reply = self.handle(message)
                self.reply(reply)
            case _:
                self.handle_other(message)
        return None

    def handle(self, request: Request) -> Reply:
        """Perform one step; return its reply (a :class:`StepFailed` for expected failures)."""
        raise UnexpectedMessageError(f"{self.ctx.name} cannot handle {type(request).__name__}")

    def handle_other(self, message: Any) -> None:
        """Non-request messages; the default is an explicit error (a crash), never a silent drop."""
        raise UnexpectedMessageError(
            f"{self.ctx.name} received unexpected {type(message).__name__}"
        )

    def on_halt(self, message: Halt) -> None:
        """Hook: the system halted."""

    def on_resume(self, message: Resume) -> None:
        """Hook: the operator cleared the halt."""

    # --- helpers ---------------------------------------------------------------------------

    def reply(self, reply: Reply) -> None:
        """Stamp ``reply`` with this instance's name and generation and tell the supervisor."""
        stamped = msgspec.structs.replace(
            reply, actor=self.ctx.name, generation=self.ctx.generation
        )
        self.ctx.report(stamped)

    def fail(self, request: Request, reason: str, message: str = "") -> StepFailed:
        """Build the reply of an expected, reported failure."""
        return StepFailed(request_id=request.request_id, reason=reason, message=message)

    def ensure_not_halted(self, what: str) -> None:
        """Raise :class:`HaltedError` if the shared halt flag is set (check right before acting)."""
        if self.ctx.halt_flag.is_set():
            raise HaltedError(f"{self.ctx.name}: refused {what}: system is halted")


class WatchedActor(SupervisedActor):
    """A watcher child (kill switch, health): every message it handles runs under the network
    loop's watchdog (:mod:`aistock_actors.net.watchdog`), so a handler busy for longer than
    ``supervision.watcher_timeout_seconds`` is reported as a crash and the child replaced -- a
    watcher has no step whose timeout would notice it."""

    def on_receive(self, message: Any) -> Any:
        net = self.ctx.net
        if net is None:
            return super().on_receive(message)
        with net.watch(self.ctx.name, self.ctx.generation, self.ctx.report):
            return super().on_receive(message)


POOL_STEP_FAILURES: tuple[tuple[type[Exception], str], ...] = (
    (JobTimeoutError, "timeout"),  # the step's budget spent: the batch was killed
    (JobCancelledError, "cancelled"),  # a halt or a stop: the step is abandoned, nothing kept
    (JobBackendError, "backend_unavailable"),  # dask scheduler unreachable, worker lost
    (DataError, "no_data"),
    (StateError, "bar_store_unreadable"),
    (ValueError, "insufficient_data"),  # too little history for the purged splits
)
"""The expected failures of a pool step (train, backtest) and their ``StepFailed`` reasons, in
the order they are matched."""
POOL_STEP_ERRORS: tuple[type[Exception], ...] = tuple(kind for kind, _ in POOL_STEP_FAILURES)


class PoolActor(SupervisedActor):
    """A supervised actor that runs its work in a job runner (process pool or dask cluster).

    Subclasses call ``super().load_state()`` to open the stores and the runner; the runner is
    closed when the actor stops or crashes (the last user closes a local dask cluster), so a
    restart never leaks worker processes.
    """

    def load_state(self) -> None:
        cfg = self.ctx.config
        self.bars = BarStore(cfg.state_dir / "bars")
        self.models = ModelStore(cfg.models_dir, self.ctx.alerts, IntegrityKey.from_config(cfg))
        self.runner: JobRunner = lifecycle.job_runner(cfg.config)
        # A halt or a stop abandons the pool work in flight (nothing trained for a halted
        # cycle; SIGTERM does not wait for a running fit): runtime/jobs.py.
        self.runner.owner = self.ctx.name
        self.runner.cancel_when("halted", self.ctx.halt_flag)
        if self.ctx.stopping is not None:
            self.runner.cancel_when("stopping", self.ctx.stopping)

    def pool_failure(self, request: Request, exc: Exception) -> StepFailed:
        """The ``StepFailed`` of one of :data:`POOL_STEP_ERRORS` (anything else is re-raised)."""
        for kind, reason in POOL_STEP_FAILURES:
            if isinstance(exc, kind):
                return self.fail(request, reason, str(exc))
        raise exc

    def on_stop(self) -> None:
        self._close_runner()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback_: TracebackType | None,
    ) -> None:
        super().on_failure(exception_type, exception_value, traceback_)
        self._close_runner()

    def _close_runner(self) -> None:
        """Release the job runner: the last one closes a local dask cluster (parallel.py)."""
        runner: JobRunner | None = getattr(self, "runner", None)
        if runner is not None:
            runner.close()


def _fmt(exc: BaseException) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text[:2000]
