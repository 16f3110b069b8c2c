"""HealthReporter: POSTs the manual's health report to the external monitoring endpoint.

A watcher child (no cycle step): on the supervisor's ticks it checks whether a report is due
(``headless.health_report_interval_seconds``; the first one once the first cycle has finished, or
one interval after start, so it never reports a run of zero counters), builds it from
the telemetry snapshot with :func:`aistock_actors.core.supervision.health.build_health_report`, and
hands
the POST to the network loop. It never blocks a cycle: the POST runs on the loop, retried with
backoff within the interval, and the outcome comes back as
:class:`~aistock_actors.messages.ops.HealthReportDelivered`. A failed report is the warning alert
``health_report_failed`` — not a cycle failure, raised once when a streak of failures starts (the
later ones are logged) — and the first success after failures raises ``health_report_recovered``
(info), which resolves it on PagerDuty.

When it stops (``--run-once`` after its cycle, a daemon on SIGTERM) it sends one last report if
a cycle finished since the last one, waiting for it at most a few seconds. The same report is
served on demand at ``GET /report`` by the monitoring server. Besides the
telemetry it carries what is on disk (:func:`~aistock_actors.services.report_facts.disk_facts`):
the active model and the open and acknowledged alert counts.
"""

from __future__ import annotations

import concurrent.futures
import logging
from typing import Any

from aistock_actors.actors.base import WatchedActor
from aistock_actors.core.supervision.health import build_health_report
from aistock_actors.messages.control import CheckKillSwitch
from aistock_actors.messages.ops import HealthReportDelivered, HealthReporterInbox
from aistock_actors.net.health_post import post_health_report
from aistock_actors.services.report_facts import disk_facts
from aistock_actors.sources.calendar import data_age_function

log = logging.getLogger(__name__)

FINAL_REPORT_BUDGET_S = 5.0
"""Longest wait for the last report when the reporter stops (retries included)."""


class HealthReporter(WatchedActor):
    """Sends a health report every interval; see the module docstring."""

    child_name = "health_reporter"
    inbox = HealthReporterInbox

    def load_state(self) -> None:
        headless = self.ctx.config.config.headless
        self._url = headless.external_health_report_url
        self._data_age = data_age_function(self.ctx.config.config.data)  # sessions, not days
        self._interval = headless.health_report_interval_seconds
        self._next_due = 0.0
        self._in_flight: concurrent.futures.Future[Any] | None = None
        self._in_flight_since = 0.0
        self._failures = 0
        self.reports_sent = 0
        self._started = self.ctx.clock.monotonic()
        self._reported_cycle: str | None = None
        """The last finished cycle the newest report covered."""

    def handle_other(self, message: Any) -> None:
        match message:
            case CheckKillSwitch():
                self.tick()
            case HealthReportDelivered():
                self.on_delivered(message)
            case _:
                super().handle_other(message)

    def build_report(self) -> dict[str, Any]:
        """The report as it would be sent now."""
        net = self.ctx.net
        assert net is not None
        cfg = self.ctx.config.config
        clock = self.ctx.clock
        report = build_health_report(
            net.telemetry.snapshot(),
            clock.time(),
            cfg.monitoring.max_data_age_seconds,
            max_drawdown=cfg.risk.max_portfolio_drawdown_halt,
            data_age=self._data_age,
            # A replay judges the age of its bars in market time (issue #13), never wall time.
            market_now=clock.market_now().timestamp() if clock.is_simulated() else None,
        )
        return {**report, **disk_facts(self.ctx.config)}

    def tick(self) -> None:
        """Send a report when one is due and none is in flight."""
        net = self.ctx.net
        if not self._url or net is None or not net.running:
            return
        now = self.ctx.clock.monotonic()
        if self._in_flight is not None:
            if now - self._in_flight_since < 2 * self._interval + 5.0:
                return
            self._in_flight.cancel()  # only rescues a lost callback: calls are bounded
            self._in_flight = None
        if now < self._next_due:
            return
        snap = net.telemetry.snapshot()
        if snap.last_cycle_id is None and now - self._started < self._interval:
            return  # nothing has run yet: the first report waits for the first cycle
        self._reported_cycle = snap.last_cycle_id
        self._next_due = now + self._interval
        self._in_flight_since = now
        self._in_flight = net.tell_when_done(
            post_health_report(
                net.session,
                self._url,
                self.build_report(),
                policy=net.retry.within(self._interval),
                redact=net.redactor.text,
            ),
            self.actor_ref,
            lambda reason: HealthReportDelivered(ok=False, attempts=0, error=reason),
        )

    def on_stop(self) -> None:
        """Send a last report covering the cycles since the newest one (bounded wait)."""
        net = self.ctx.net
        if not self._url or net is None or not net.running:
            return
        last = net.telemetry.snapshot().last_cycle_id
        if last is None or last == self._reported_cycle:
            return
        budget = min(FINAL_REPORT_BUDGET_S, self._interval)
        try:
            future = net.submit(post_health_report(
                net.session, self._url, self.build_report(),
                policy=net.retry.within(budget), redact=net.redactor.text))
            result = future.result(timeout=budget + 1.0)
        except Exception as exc:  # stopping: log it, never block or fail the stop
            log.warning("final health report not sent: %r", exc)
            return
        if result.ok:
            self.reports_sent += 1
            self._reported_cycle = last
        else:
            log.warning("final health report not delivered: %s", result.error)

    def on_delivered(self, result: HealthReportDelivered) -> None:
        """Alert on a failed report; note a recovery."""
        self._in_flight = None
        if self.ctx.net is not None:
            self.ctx.net.metrics.health_reports.labels("delivered" if result.ok else "failed").inc()
        if result.ok:
            self.reports_sent += 1
            if self._failures:
                self.ctx.alerts.raise_alert(
                    "info",
                    "health_report_recovered",
                    f"health reports delivered again after {self._failures} failure(s)",
                    actor=self.ctx.name,
                )
            self._failures = 0
            return
        self._failures += 1
        if self._failures > 1:  # one alert when the streak starts; the recovery closes it
            log.warning("health report failed again (%d in a row): %s", self._failures,
                        result.error)
            return
        self.ctx.alerts.raise_alert(
            "warning",
            "health_report_failed",
            f"health_report_failed: monitoring endpoint unreachable: {result.error}",
            actor=self.ctx.name,
            details={
                "error": result.error,
                "attempts": result.attempts,
                "consecutive_failures": self._failures,
            },
        )
