"""Metrics of the operations layer, registered on the supervisor's own Prometheus registry.

They complement ``aistock_actors/runtime/telemetry.py`` so that ``ops/prometheus/alerts.yml`` needs
no
hard-coded interval: "no successful cycle for two intervals" is
``time() - aistock_last_successful_cycle_timestamp_seconds > 2 * aistock_daemon_interval_seconds``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from aistock_actors.runtime.clock import SYSTEM_CLOCK


class NetMetrics:
    """The operations gauges and counters (one set per supervisor registry)."""

    def __init__(self, registry: CollectorRegistry, started_at: float | None = None) -> None:
        r = registry
        self.daemon_interval = Gauge(
            "aistock_daemon_interval_seconds",
            "Seconds between cycle starts in --daemon (0 when not a daemon).",
            registry=r,
        )
        self.start_time = Gauge(
            "aistock_start_timestamp_seconds",
            "Unix time the autopilot process started.",
            registry=r,
        )
        self.start_time.set(SYSTEM_CLOCK.time() if started_at is None else started_at)
        self.open_critical = Gauge(
            "aistock_open_critical_alerts",
            "Critical alerts not yet resolved (by --unkill / --resume).",
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "aistock_webhook_deliveries",
            "Webhook deliveries by target and result (delivered, abandoned, dropped).",
            ["target", "result"],
            registry=r,
        )
        self.remote_kill_failures = Gauge(
            "aistock_remote_kill_switch_consecutive_failures",
            "Failed remote kill-switch checks in a row.",
            registry=r,
        )
        self.health_reports = Counter(
            "aistock_health_reports",
            "Health reports by result (delivered, failed).",
            ["result"],
            registry=r,
        )

    def webhook(self, target: str, result: str) -> None:
        """Count one webhook outcome."""
        self.webhook_deliveries.labels(target, result).inc()
