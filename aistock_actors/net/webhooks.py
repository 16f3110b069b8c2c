"""Alert delivery to the configured webhooks, asynchronous and bounded.

The alert listener (:meth:`WebhookDispatcher.offer`) runs on whatever thread raised the alert
and only *enqueues*: building a small dict and appending it under a lock, then waking the
network loop. Each target has its own lane (a bounded deque and one worker task on the loop),
so a dead Slack never delays PagerDuty, and no webhook ever delays the supervisor or a cycle.

A full lane drops its *oldest* entry and logs the running count. A delivery is retried with
jittered exponential backoff up to ``monitoring.retry_max_attempts`` attempts and
``monitoring.retry_max_seconds``, then abandoned with one log line (never an alert: an alert
about a dead webhook would be queued for that same webhook).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from aistock_actors.net.apprise_target import apprise_payload, send_apprise
from aistock_actors.net.http import RetryPolicy, expect_2xx, request_with_retry
from aistock_actors.net.payloads import (
    NOTIFY_SEVERITIES,
    IncidentTracker,
    WebhookTarget,
    generic_payload,
    pagerduty_resolve,
    pagerduty_trigger,
    slack_payload,
)
from aistock_actors.runtime.clock import SYSTEM_CLOCK
from aistock_actors.runtime.redaction import Redactor
from aistock_actors.store.alerts import Alert

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One POST waiting in a lane."""

    code: str
    event: str
    payload: dict[str, Any]


@dataclass
class LaneStats:
    """Counters of one lane (read by tests and the shutdown log)."""

    queued: int = 0
    delivered: int = 0
    abandoned: int = 0
    dropped: int = 0


@dataclass
class _Lane:
    target: WebhookTarget
    capacity: int
    items: deque[Delivery] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stats: LaneStats = field(default_factory=LaneStats)
    busy: bool = False
    wake: asyncio.Event | None = None

    def put(self, delivery: Delivery) -> Delivery | None:
        with self.lock:
            dropped = self.items.popleft() if len(self.items) >= self.capacity else None
            self.items.append(delivery)
            self.stats.queued += 1
            if dropped is not None:
                self.stats.dropped += 1
            return dropped

    def pop(self) -> Delivery | None:
        with self.lock:
            item = self.items.popleft() if self.items else None
            self.busy = item is not None
            return item

    def idle(self) -> bool:
        with self.lock:
            return not self.items and not self.busy


class WebhookDispatcher:
    """Per-target lanes of deliveries; see the module docstring."""

    def __init__(
        self,
        targets: list[WebhookTarget],
        policy: RetryPolicy,
        queue_size: int,
        redactor: Redactor,
        tracker: IncidentTracker | None = None,
        *,
        count: Callable[[str, str], None] = lambda _target, _result: None,
    ) -> None:
        self.policy = policy
        self._count = count
        self.redactor = redactor
        self.tracker = tracker or IncidentTracker()
        self._lanes = [_Lane(target=t, capacity=queue_size) for t in targets]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def kinds(self) -> list[str]:
        """Configured target kinds, in order."""
        return [lane.target.kind for lane in self._lanes]

    def stats(self) -> dict[str, LaneStats]:
        """A copy of each lane's counters, by target kind."""
        out: dict[str, LaneStats] = {}
        for lane in self._lanes:
            with lane.lock:
                out[lane.target.kind] = LaneStats(**vars(lane.stats))
        return out

    # --- any thread --------------------------------------------------------------------------

    def offer(self, alert: Alert) -> None:
        """The alert listener: decide what each target gets and enqueue it; never blocks."""
        resolved = self.tracker.observe(alert)
        notify = alert.severity in NOTIFY_SEVERITIES
        for lane in self._lanes:
            for delivery in self._deliveries(lane.target, alert, notify, resolved):
                dropped = lane.put(delivery)
                if dropped is not None:
                    self._count(lane.target.kind, "dropped")
                    log.warning(
                        "webhook %s queue full (%d): dropped the oldest alert %s "
                        "(%d dropped so far)",
                        lane.target.kind,
                        lane.capacity,
                        dropped.code,
                        lane.stats.dropped,
                    )
            self._wake(lane)

    @staticmethod
    def _deliveries(
        target: WebhookTarget, alert: Alert, notify: bool, resolved: list[str]
    ) -> list[Delivery]:
        if target.kind == "pagerduty":
            assert target.routing_key is not None
            out = [
                Delivery(
                    code=code, event="resolve", payload=pagerduty_resolve(code, target.routing_key)
                )
                for code in resolved
            ]
            if notify:
                out.append(
                    Delivery(
                        code=alert.code,
                        event="trigger",
                        payload=pagerduty_trigger(alert, target.routing_key),
                    )
                )
            return out
        if not notify:
            return []
        if target.kind == "apprise":
            return [Delivery(code=alert.code, event="alert", payload=apprise_payload(alert))]
        payload = slack_payload(alert) if target.kind == "slack" else generic_payload(alert)
        return [Delivery(code=alert.code, event="alert", payload=payload)]

    def _wake(self, lane: _Lane) -> None:
        loop, wake = self._loop, lane.wake
        if loop is None or wake is None:
            return  # not started yet: the lane keeps the item until start()
        with contextlib.suppress(RuntimeError):  # the loop is closing; stop() logs what is left
            loop.call_soon_threadsafe(wake.set)

    # --- on the network loop -----------------------------------------------------------------

    def start(self, session: aiohttp.ClientSession) -> None:
        """Start one worker per lane (call on the loop)."""
        self._loop = asyncio.get_running_loop()
        for lane in self._lanes:
            lane.wake = asyncio.Event()
            lane.wake.set()  # deliver whatever was queued before the loop started
            task = asyncio.create_task(
                self._run_lane(lane, session), name=f"webhook-{lane.target.kind}"
            )
            self._tasks.append(task)

    async def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every lane to empty; True when all did."""
        deadline = SYSTEM_CLOCK.monotonic() + timeout
        while not all(lane.idle() for lane in self._lanes):
            if SYSTEM_CLOCK.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def pending(self) -> int:
        """Deliveries not yet attempted or in flight."""
        total = 0
        for lane in self._lanes:
            with lane.lock:
                total += len(lane.items) + int(lane.busy)
        return total

    async def _run_lane(self, lane: _Lane, session: aiohttp.ClientSession) -> None:
        assert lane.wake is not None
        while True:
            lane.wake.clear()
            delivery = lane.pop()
            if delivery is None:
                await lane.wake.wait()
                continue
            try:
                await self._deliver(lane, delivery, session)
            finally:
                with lane.lock:
                    lane.busy = False

    async def _deliver(
        self, lane: _Lane, delivery: Delivery, session: aiohttp.ClientSession
    ) -> None:
        if lane.target.kind == "apprise":
            ok, attempts, error = await send_apprise(
                lane.target.apprise_urls, delivery.payload, self.policy)
            self._settle(lane, delivery, ok, attempts, error)
            return
        result = await request_with_retry(
            session,
            "POST",
            lane.target.url,
            policy=self.policy,
            parse=expect_2xx,
            json_body=delivery.payload,
            redact=self.redactor.text,
        )
        with lane.lock:
            if result.ok:
                lane.stats.delivered += 1
            else:
                lane.stats.abandoned += 1
        self._count(lane.target.kind, "delivered" if result.ok else "abandoned")
        if not result.ok:
            log.warning(
                "webhook %s: abandoned %s %s after %d attempt(s) in %.1fs: %s",
                lane.target.kind,
                delivery.event,
                delivery.code,
                result.attempts,
                result.elapsed,
                result.error,
            )

    def _settle(self, lane: _Lane, delivery: Delivery, ok: bool, attempts: int,
                error: str) -> None:
        """Count and log the outcome of a non-HTTP (apprise) delivery."""
        with lane.lock:
            if ok:
                lane.stats.delivered += 1
            else:
                lane.stats.abandoned += 1
        self._count(lane.target.kind, "delivered" if ok else "abandoned")
        if not ok:
            log.warning("webhook %s: abandoned %s %s after %d attempt(s): %s", lane.target.kind,
                        delivery.event, delivery.code, attempts, self.redactor.text(error))
