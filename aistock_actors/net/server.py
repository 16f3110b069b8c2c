"""The monitoring HTTP server: ``/healthz``, ``/metrics`` and ``/report``.

It runs on the network loop (not in an actor), so it keeps answering while actors restart.

- ``GET /healthz``: 200 with ``{"status": "ok", ...}`` while healthy; 503 with
  ``"status": "unhealthy"`` and ``reasons`` when halted or when no cycle has finished for two
  daemon intervals (:func:`aistock_actors.core.supervision.health.healthz`).
- ``GET /metrics``: Prometheus text exposition of the supervisor's registry
  (``aistock_cycles_total{outcome}``, ``aistock_halted``,
  ``aistock_heartbeat_timestamp_seconds`` …).
- ``GET /report``: the health report the HealthReporter POSTs, on demand.
- ``/`` and ``/api/...``: the operator console and its JSON API (``aistock_actors/net/console.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

from aistock_actors.core.supervision.health import build_health_report, healthz
from aistock_actors.net.console import Console
from aistock_actors.runtime.telemetry import Telemetry


def make_app(
    telemetry: Telemetry,
    interval: Callable[[], float | None],
    max_data_age_s: float,
    max_drawdown: float | None,
    console: Console | None = None,
    data_age: Callable[[float, float], float] | None = None,
    facts: Callable[[], dict[str, Any]] | None = None,
) -> web.Application:
    """The aiohttp application; ``interval`` returns the daemon interval (None: not a daemon);
    with ``console`` it also serves the operator console at ``/`` and its ``/api/``; ``facts``
    (read on a worker thread) adds the on-disk facts to ``/report`` and the alert gauges of
    ``/metrics`` (``aistock_alerts_open{severity}``, ``aistock_alerts_acknowledged{severity}``)."""
    open_gauge = acked_gauge = None
    if facts is not None:
        open_gauge = Gauge("aistock_alerts_open", "Alerts not acknowledged, by severity.",
                           ["severity"], registry=telemetry.registry)
        acked_gauge = Gauge("aistock_alerts_acknowledged", "Acknowledged alerts, by severity.",
                            ["severity"], registry=telemetry.registry)

    async def get_healthz(_request: web.Request) -> web.Response:
        ok, body = healthz(telemetry.snapshot(), telemetry.clock.time(), interval())
        return web.json_response(body, status=200 if ok else 503)

    async def get_metrics(_request: web.Request) -> web.Response:
        if facts is not None and open_gauge is not None and acked_gauge is not None:
            now = await asyncio.to_thread(facts)
            for severity, count in now["alerts_open"].items():
                open_gauge.labels(severity).set(count)
            for severity, count in now["alerts_acknowledged"].items():
                acked_gauge.labels(severity).set(count)
        body = generate_latest(telemetry.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def get_report(_request: web.Request) -> web.Response:
        clock = telemetry.clock
        report = build_health_report(
            telemetry.snapshot(),
            clock.time(),
            max_data_age_s,
            max_drawdown=max_drawdown,
            data_age=data_age,
            market_now=clock.market_now().timestamp() if clock.is_simulated() else None,
        )
        if facts is not None:
            report = {**report, **await asyncio.to_thread(facts)}
        return web.json_response(report)

    app = web.Application()
    app.router.add_get("/healthz", get_healthz)
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/report", get_report)
    if console is not None:
        console.add_routes(app)
    return app
