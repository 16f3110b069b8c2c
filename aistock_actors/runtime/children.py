"""The supervisor's children: how each is started (:class:`ChildSpec`) and its live bookkeeping.

:class:`Children` is the supervisor's roster, in start order: a read-only mapping of name to
:class:`Child` (``sup.children["trainer"].generation``) that also finds a step's child and tells
every live child a message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pykka

from aistock_actors.actors.base import SupervisedActor
from aistock_actors.messages import Message, Request
from aistock_actors.runtime.cycle_run import CycleRun

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


class Children(Mapping[str, Child]):
    """The children by name, in start order (stopped in reverse)."""

    def __init__(self, specs: list[ChildSpec]) -> None:
        self._by_name = {spec.name: Child(spec=spec) for spec in specs}

    def __getitem__(self, name: str) -> Child:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def for_step(self, step: str) -> Child | None:
        """The child that performs ``step``, or ``None`` (the step is not built)."""
        return next((c for c in self._by_name.values() if c.spec.step == step), None)

    def tell_all(self, message: Message, *, watchers_only: bool = False) -> None:
        """Tell each live child, one ref at a time: ``ActorRegistry.broadcast`` would stop at
        the first dead actor, and a dead actor's crash is reported through ``on_failure``."""
        for child in self._by_name.values():
            if child.ref is None or (watchers_only and child.spec.step is not None):
                continue
            with contextlib.suppress(pykka.ActorDeadError):
                child.ref.tell(message)
