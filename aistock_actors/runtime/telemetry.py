"""Telemetry: what the supervisor knows right now, for ``/metrics``, ``/healthz`` and the heartbeat.

The supervisor updates one :class:`Telemetry` on every event (cycle finished, restart, halt, kill
switch); readers on other threads (the HTTP server, the HealthReporter) take consistent
snapshots. Metrics use ``prometheus_client`` with a registry of our own, so two supervisors in
one test process never share counters.

``state/heartbeat.json`` is rewritten (atomically, at most once a second) by every loop of the
supervisor, so an outside monitor can alert on silence — see ``ops/prometheus/alerts.yml``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics

from aistock_actors.runtime.clock import SYSTEM_CLOCK, Clock
from aistock_actors.store.atomic import atomic_write_json

disable_created_metrics()  # type: ignore[no-untyped-call]

HEARTBEAT_FILE = "heartbeat.json"


class TelemetrySnapshot(msgspec.Struct, kw_only=True):
    """A consistent copy of the supervisor's view, safe to read on any thread."""

    started_at: float
    heartbeat_at: float = 0.0
    halted: bool = False
    halt_reason: str | None = None
    kill_switch: bool = False
    consecutive_failures: int = 0
    cycles: dict[str, int] = {}
    cycle_running: bool = False
    last_cycle_id: str | None = None
    last_cycle_outcome: str | None = None
    last_cycle_finished_at: float | None = None
    last_success_at: float | None = None
    last_bar_added_at: float | None = None
    last_bar_market_at: float | None = None
    """In a replay: the market time (epoch seconds) of the last cycle that added bars, which is
    what the health report's ``data_stale`` judges there (never the wall clock)."""
    bars_added_total: int = 0
    promotions: int = 0
    rejections: int = 0
    risk_adjustments: int = 0
    trades_executed: int = 0
    active_model: str | None = None
    risk_limits: dict[str, float] = {}
    equity: float | None = None
    drawdown: float | None = None
    restarts: dict[str, int] = {}
    open_critical_alerts: int = 0
    audit_head: str | None = None
    """sha256 of the audit log's last record (#17: a monitor compares it between reports)."""


class Telemetry:
    """Thread-safe holder of the snapshot plus the Prometheus metrics derived from it."""

    def __init__(self, state_dir: Path | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self._lock = threading.Lock()
        self.clock = clock
        self._snap = TelemetrySnapshot(started_at=clock.time())
        self._state_dir = state_dir
        self._last_heartbeat_write = 0.0
        self.registry = CollectorRegistry()
        r = self.registry
        self.m_cycles = Counter(
            "aistock_cycles", "Cycles finished, by outcome.", ["outcome"], registry=r
        )
        self.m_consecutive = Gauge(
            "aistock_consecutive_failures", "Consecutive failed cycles.", registry=r
        )
        self.m_halted = Gauge("aistock_halted", "1 while halted.", registry=r)
        self.m_kill = Gauge(
            "aistock_kill_switch_active", "1 while a kill switch is in force.", registry=r
        )
        self.m_last_success = Gauge(
            "aistock_last_successful_cycle_timestamp_seconds",
            "Unix time of the last successful cycle.",
            registry=r,
        )
        self.m_heartbeat = Gauge(
            "aistock_heartbeat_timestamp_seconds",
            "Unix time of the supervisor's last loop.",
            registry=r,
        )
        self.m_bars = Counter("aistock_bars_ingested", "Bars ingested.", registry=r)
        self.m_promotions = Counter("aistock_promotions", "Models promoted.", registry=r)
        self.m_rejections = Counter(
            "aistock_promotion_rejections", "Candidates rejected.", registry=r
        )
        self.m_risk_limit = Gauge(
            "aistock_risk_limit", "Current risk limits.", ["limit"], registry=r
        )
        self.m_equity = Gauge("aistock_paper_equity", "Paper portfolio equity.", registry=r)
        self.m_drawdown = Gauge("aistock_paper_drawdown", "Paper portfolio drawdown.", registry=r)
        self.m_restarts = Counter(
            "aistock_actor_restarts", "Actor restarts, by actor.", ["actor"], registry=r
        )

    def snapshot(self) -> TelemetrySnapshot:
        """A copy of the current view."""
        with self._lock:
            return msgspec.structs.replace(
                self._snap,
                cycles=dict(self._snap.cycles),
                restarts=dict(self._snap.restarts),
                risk_limits=dict(self._snap.risk_limits),
            )

    def update(self, **fields: Any) -> None:
        """Set snapshot fields (and the gauges that mirror them)."""
        with self._lock:
            for key, value in fields.items():
                setattr(self._snap, key, value)
            snap = self._snap
            self.m_consecutive.set(snap.consecutive_failures)
            self.m_halted.set(1 if snap.halted else 0)
            self.m_kill.set(1 if snap.kill_switch else 0)
            if snap.last_success_at is not None:
                self.m_last_success.set(snap.last_success_at)
            for name, value in snap.risk_limits.items():
                self.m_risk_limit.labels(name).set(value)
            if snap.equity is not None:
                self.m_equity.set(snap.equity)
            if snap.drawdown is not None:
                self.m_drawdown.set(snap.drawdown)

    def cycle_finished(
        self, cycle_id: str, outcome: str, bars_added: int, promoted: int, rejected: int
    ) -> None:
        """Count a finished cycle and what it did."""
        now = self.clock.time()
        with self._lock:
            snap = self._snap
            snap.cycles[outcome] = snap.cycles.get(outcome, 0) + 1
            snap.cycle_running = False
            snap.last_cycle_id = cycle_id
            snap.last_cycle_outcome = outcome
            snap.last_cycle_finished_at = now
            if outcome == "succeeded":
                snap.last_success_at = now
                self.m_last_success.set(now)
            snap.bars_added_total += bars_added
            if bars_added > 0:
                snap.last_bar_added_at = now
                if self.clock.is_simulated():
                    snap.last_bar_market_at = self.clock.market_now().timestamp()
            snap.promotions += promoted
            snap.rejections += rejected
        self.m_cycles.labels(outcome).inc()
        self.m_bars.inc(bars_added)
        self.m_promotions.inc(promoted)
        self.m_rejections.inc(rejected)

    def actor_restarted(self, actor: str) -> None:
        """Count a restart of ``actor``."""
        with self._lock:
            self._snap.restarts[actor] = self._snap.restarts.get(actor, 0) + 1
        self.m_restarts.labels(actor).inc()

    def beat(self) -> None:
        """Record a supervisor loop; rewrite ``state/heartbeat.json`` at most once a second."""
        now = self.clock.time()
        with self._lock:
            self._snap.heartbeat_at = now
        self.m_heartbeat.set(now)
        if self._state_dir is None or now - self._last_heartbeat_write < 1.0:
            return
        self._last_heartbeat_write = now
        snap = self.snapshot()
        atomic_write_json(
            self._state_dir / HEARTBEAT_FILE,
            {
                "ts": now,
                "pid_started_at": snap.started_at,
                "halted": snap.halted,
                "cycle_running": snap.cycle_running,
                "last_cycle_id": snap.last_cycle_id,
                "consecutive_failures": snap.consecutive_failures,
            },
            keep_backup=False,
        )
