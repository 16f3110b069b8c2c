"""Fault injection for reliability tests — off in normal runs, never reachable from a config file.

A :class:`FaultPlan` makes a named actor raise in a handler, hang past its step timeout, reply
slowly, receive a malformed message, fail in ``on_start``, or run a pool job that takes
``seconds`` longer in its worker process (``slow_job``: a long fit, for the prompt-stop tests).
It is switched on only by

- :func:`install` (in-process tests), or
- the environment: ``AISTOCK_FAULT_INJECTION=i-understand-this-breaks-things`` together with
  ``AISTOCK_FAULT_PLAN=<path to a JSON list of FaultSpec>`` (subprocess soak and SIGKILL tests).

There is no config key for it, and a wrong or partial environment leaves it off (and says so in
the log), so a production config cannot enable it by accident.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Literal

import msgspec

from aistock_actors.errors import InjectedFault

log = logging.getLogger(__name__)

ENV_SWITCH = "AISTOCK_FAULT_INJECTION"
ENV_SWITCH_VALUE = "i-understand-this-breaks-things"
ENV_PLAN = "AISTOCK_FAULT_PLAN"

FaultKind = Literal["raise", "hang", "slow", "malformed", "on_start", "slow_job"]


class MalformedMessage(msgspec.Struct, frozen=True):
    """What an actor receives instead of its request under a ``malformed`` fault."""

    garbage: str = "\x00not-a-message"


class FaultSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One fault: which actor, what, on which message type, how many times."""

    actor: str
    kind: FaultKind
    message_type: str | None = None
    """Only for messages of this class name (None: any request or tick)."""
    times: int = 1
    """How many times it fires (then the actor behaves normally)."""
    after: int = 0
    """Let this many matching messages (or starts) through before the first firing, so a long
    run can spread its faults over many cycles."""
    seconds: float = 30.0
    """How long a ``hang`` lasts at most, how slow a ``slow`` reply is, or how long a
    ``slow_job``'s worker sleeps before running the job."""


class FaultPlan:
    """A set of faults and how often each has fired; thread-safe."""

    def __init__(self, specs: list[FaultSpec]) -> None:
        self.specs = list(specs)
        self.fired: dict[int, int] = {}
        self.seen: dict[int, int] = {}
        self.history: list[tuple[str, str, str]] = []
        """(actor, kind, message type) of every firing, in order."""
        self._lock = threading.Lock()
        self.release = threading.Event()
        """Set to end every injected hang at once (tests set it at teardown)."""

    def _take(
        self, actor: str, kinds: tuple[str, ...], message_type: str | None
    ) -> FaultSpec | None:
        with self._lock:
            for index, spec in enumerate(self.specs):
                if spec.actor != actor or spec.kind not in kinds:
                    continue
                if spec.message_type is not None and spec.message_type != message_type:
                    continue
                if self.fired.get(index, 0) >= spec.times:
                    continue
                self.seen[index] = self.seen.get(index, 0) + 1
                if self.seen[index] <= spec.after:
                    continue
                self.fired[index] = self.fired.get(index, 0) + 1
                self.history.append((actor, spec.kind, message_type or "on_start"))
                return spec
        return None

    def before_start(self, actor: str) -> None:
        """Called by the actor base in ``on_start``; may raise :class:`InjectedFault`."""
        if self._take(actor, ("on_start",), None) is not None:
            log.warning("fault injection: on_start %s", actor)
            raise InjectedFault(f"injected on_start failure in {actor}")

    def before_message(self, actor: str, message: object) -> object:
        """Called before each message is handled; returns the message to handle."""
        spec = self._take(actor, ("raise", "hang", "slow", "malformed"), type(message).__name__)
        if spec is None:
            return message
        log.warning("fault injection: %s %s on %s", spec.kind, actor, type(message).__name__)
        if spec.kind == "raise":
            raise InjectedFault(f"injected exception in {actor} on {type(message).__name__}")
        if spec.kind in ("hang", "slow"):
            self.release.wait(spec.seconds)
            return message
        return MalformedMessage()

    def job_delay(self, actor: str) -> float | None:
        """Seconds a pool batch of ``actor`` sleeps in its worker first (``slow_job``), or None."""
        spec = self._take(actor, ("slow_job",), "job")
        if spec is None:
            return None
        log.warning("fault injection: slow_job %s (%.0fs in the worker)", actor, spec.seconds)
        return spec.seconds

    def count(self) -> int:
        """Faults fired so far."""
        with self._lock:
            return sum(self.fired.values())


_installed: FaultPlan | None = None
_env_checked = False


def install(plan: FaultPlan | None) -> None:
    """Activate ``plan`` for this process (None switches injection off)."""
    global _installed, _env_checked
    _installed = plan
    _env_checked = True


def active() -> FaultPlan | None:
    """The active plan, loading it once from the environment if both variables are set right."""
    global _installed, _env_checked
    if not _env_checked:
        _env_checked = True
        switch, plan_path = os.environ.get(ENV_SWITCH), os.environ.get(ENV_PLAN)
        if switch == ENV_SWITCH_VALUE and plan_path:
            specs = msgspec.json.decode(Path(plan_path).read_bytes(), type=list[FaultSpec])
            _installed = FaultPlan(specs)
            log.warning("FAULT INJECTION ACTIVE (%d faults from %s)", len(specs), plan_path)
        elif switch or plan_path:
            log.error(
                "fault injection NOT enabled: %s must be %r and %s set",
                ENV_SWITCH,
                ENV_SWITCH_VALUE,
                ENV_PLAN,
            )
    return _installed
