"""Watchdog for the watcher actors (children without a cycle step).

A step actor that hangs is caught by its step timeout; a watcher has no step, so nothing would
notice a KillSwitchWatcher stuck in a handler. Each watcher marks when it starts and finishes a
message (:meth:`Watchdog.busy`); a periodic task on the network loop reports a watcher busy for
longer than ``supervision.watcher_timeout_seconds`` to the supervisor as
:class:`~aistock_actors.messages.control.ActorCrashed`, and the supervisor abandons the instance
and starts a new generation — exactly as for a crash. Only *time inside one message* counts, so
an idle watcher (or a supervisor that is not pumping ticks) is never mistaken for a hung one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from aistock_actors.messages import Message
from aistock_actors.messages.control import ActorCrashed
from aistock_actors.runtime.clock import SYSTEM_CLOCK

log = logging.getLogger(__name__)


@dataclass
class _Busy:
    since: float
    report: Callable[[Message], None]


class Watchdog:
    """Tracks which watcher instance is inside a message since when; thread-safe."""

    def __init__(self, timeout: float, clock: Callable[[], float] = SYSTEM_CLOCK.monotonic) -> None:
        self.timeout = timeout
        self.clock = clock
        self._busy: dict[tuple[str, int], _Busy] = {}
        self._lock = threading.Lock()

    @contextmanager
    def busy(self, name: str, generation: int, report: Callable[[Message], None]) -> Iterator[None]:
        """Mark ``name``/``generation`` busy for the duration of the ``with`` block."""
        key = (name, generation)
        with self._lock:
            self._busy[key] = _Busy(since=self.clock(), report=report)
        try:
            yield
        finally:
            with self._lock:
                self._busy.pop(key, None)

    def check(self) -> list[tuple[str, int]]:
        """Report every instance busy past the timeout (once each); return them."""
        now = self.clock()
        with self._lock:
            hung = [(k, b) for k, b in self._busy.items() if now - b.since > self.timeout]
            for key, _ in hung:
                del self._busy[key]
        for (name, generation), entry in hung:
            stuck = now - entry.since
            log.error(
                "%s gen %d hung for %.1fs in one message; restarting",
                name,
                generation,
                stuck,
                extra={"actor": name},
            )
            entry.report(
                ActorCrashed(
                    actor=name,
                    generation=generation,
                    error=f"hung: busy on one message for {stuck:.1f}s "
                    f"(supervision.watcher_timeout_seconds={self.timeout:g})",
                )
            )
        return [key for key, _ in hung]

    async def run(self) -> None:
        """Check periodically, forever (a task on the network loop)."""
        period = min(1.0, max(0.05, self.timeout / 4.0))
        while True:
            await asyncio.sleep(period)
            self.check()
