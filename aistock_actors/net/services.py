"""NetServices: the asyncio side of the system, beside pykka.

pykka knows nothing of asyncio, so one dedicated thread (``aistock-net``) runs an event loop
that owns the single ``aiohttp.ClientSession``, the monitoring server, the webhook workers and
the watcher watchdog. Actors never block on the network: they :meth:`NetServices.submit` a
coroutine and go on; the outcome comes back to them as a message (``ref.tell``). Nothing on the
loop ever waits on a pykka future.

The supervisor creates one instance (no thread yet), registers :meth:`on_alert` as its alert
listener, :meth:`start`\\ s it before the children and :meth:`stop`\\ s it after them: pending
webhook deliveries get a short grace period, then every task is cancelled and gathered, and the
server and the session are closed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any, TypeVar

import aiohttp
import pykka
from aiohttp import web

from aistock_actors.config import LoadedConfig
from aistock_actors.messages import Message
from aistock_actors.net.console import Console
from aistock_actors.net.http import RetryPolicy
from aistock_actors.net.payloads import IncidentTracker, webhook_targets
from aistock_actors.net.prometheus import NetMetrics
from aistock_actors.net.server import make_app
from aistock_actors.net.watchdog import Watchdog
from aistock_actors.net.webhooks import WebhookDispatcher
from aistock_actors.runtime.redaction import Redactor
from aistock_actors.runtime.telemetry import Telemetry
from aistock_actors.services.report_facts import disk_facts
from aistock_actors.sources.calendar import data_age_function
from aistock_actors.store.alerts import Alert, AlertSink

log = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=Message)

START_TIMEOUT_S = 10.0


class NetServices:
    """The network loop thread and everything it owns; see the module docstring."""

    def __init__(
        self,
        loaded: LoadedConfig,
        telemetry: Telemetry,
        redactor: Redactor,
        alerts: AlertSink,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        cfg = loaded.config
        self.loaded = loaded
        self.telemetry = telemetry
        self.redactor = redactor
        self.alerts = alerts
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.retry = RetryPolicy.from_config(cfg.monitoring)
        self.metrics = NetMetrics(telemetry.registry, telemetry.snapshot().started_at)
        self._daemon_interval: float | None = None
        targets, self._webhook_problems = webhook_targets(cfg, self.environ)
        self.tracker = IncidentTracker()
        self.webhooks = WebhookDispatcher(
            targets,
            self.retry,
            cfg.monitoring.webhook_queue_size,
            redactor,
            self.tracker,
            count=self.metrics.webhook,
        )
        self.watchdog = Watchdog(cfg.supervision.watcher_timeout_seconds)
        self.bound_port: int | None = None
        """The monitoring server's port once listening (useful with ``listen_port: 0``)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._server_error: str | None = None
        self._start_error: BaseException | None = None
        self._watchdog_task: asyncio.Task[None] | None = None

    # --- supervisor's thread -----------------------------------------------------------------

    @property
    def daemon_interval_seconds(self) -> float | None:
        """Set by ``run_daemon``; ``/healthz`` turns 503 after two intervals without a cycle."""
        return self._daemon_interval

    @daemon_interval_seconds.setter
    def daemon_interval_seconds(self, value: float | None) -> None:
        self._daemon_interval = value
        self.metrics.daemon_interval.set(value or 0.0)

    @property
    def running(self) -> bool:
        """Whether the loop thread is up."""
        return self._thread is not None and self._thread.is_alive() and self._loop is not None

    def start(self) -> None:
        """Start the loop thread, the session, the server and the workers; report problems."""
        if self._thread is not None:
            return
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="aistock-net", daemon=True
        )
        self._thread.start()
        if not ready.wait(START_TIMEOUT_S) or self._start_error is not None:
            raise RuntimeError(f"network loop failed to start: {self._start_error!r}")
        for problem in self._webhook_problems:
            self.alerts.raise_alert("warning", "webhook_misconfigured", problem, actor="net")
        if self._server_error is not None:
            mon = self.loaded.config.monitoring
            self.alerts.raise_alert(
                "error",
                "monitoring_server_failed",
                f"cannot listen on {mon.listen_host}:{mon.listen_port}: {self._server_error}; "
                "running without /healthz and /metrics",
                actor="net",
            )
        if self.bound_port is not None:
            log.info(
                "monitoring server on http://%s:%d (/ console, /healthz, /metrics, /report)",
                self.loaded.config.monitoring.listen_host,
                self.bound_port,
            )

    def stop(self, drain_timeout: float = 2.0) -> None:
        """Give queued webhooks ``drain_timeout`` seconds, then shut the loop down."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        if self.webhooks.pending():
            drained = asyncio.run_coroutine_threadsafe(self.webhooks.drain(drain_timeout), loop)
            try:
                if not drained.result(drain_timeout + 1.0):
                    log.warning(
                        "stopping with %d webhook deliveries still queued (dropped)",
                        self.webhooks.pending(),
                    )
            except (concurrent.futures.TimeoutError, RuntimeError):
                drained.cancel()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(START_TIMEOUT_S)
        if thread.is_alive():
            log.error("network loop did not stop within %.0fs; abandoned", START_TIMEOUT_S)

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the loop; the future completes on the loop thread (never block on
        it from an actor — add a done-callback that tells the actor)."""
        loop = self._loop
        if loop is None or not self.running:
            coro.close()
            raise RuntimeError("network services are not running")
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def tell_when_done(
        self,
        coro: Coroutine[Any, Any, M],
        ref: pykka.ActorRef[Any],
        on_error: Callable[[str], M],
    ) -> concurrent.futures.Future[M]:
        """Run ``coro`` on the loop and tell its result message to ``ref`` (the actor that asked).

        An exception or a cancellation becomes ``on_error(reason)``; a dead ref (the instance
        was replaced meanwhile) is ignored: its successor asks again.
        """
        future = self.submit(coro)

        def _done(fut: concurrent.futures.Future[M]) -> None:
            if fut.cancelled():
                message = on_error("cancelled")
            elif (exc := fut.exception()) is not None:
                message = on_error(self.redactor.text(f"{type(exc).__name__}: {exc}"))
            else:
                message = fut.result()
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(message)

        future.add_done_callback(_done)
        return future

    @contextlib.contextmanager
    def watch(
        self, name: str, generation: int, report: Callable[[Message], None]
    ) -> Iterator[None]:
        """Mark a watcher busy with one message, for the watchdog."""
        with self.watchdog.busy(name, generation, report):
            yield

    @property
    def session(self) -> aiohttp.ClientSession:
        """The shared client session (use it only in coroutines running on the loop)."""
        if self._session is None:
            raise RuntimeError("network services are not running")
        return self._session

    def on_alert(self, alert: Alert) -> None:
        """Alert listener: enqueue webhook deliveries, keep the open-critical count current."""
        self.webhooks.offer(alert)
        open_critical = self.tracker.open_critical
        self.telemetry.update(open_critical_alerts=open_critical)
        self.metrics.open_critical.set(open_critical)

    # --- loop thread -------------------------------------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._setup())
        except BaseException as exc:  # reported to start(), which raises it on its thread
            self._start_error = exc
            loop.run_until_complete(self._teardown())
            loop.close()
            ready.set()
            return
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._teardown())
            loop.run_until_complete(loop.shutdown_asyncgens())
            self._loop = None
            loop.close()

    async def _setup(self) -> None:
        self._session = aiohttp.ClientSession()
        self.webhooks.start(self._session)
        self._watchdog_task = asyncio.create_task(self.watchdog.run(), name="watcher-watchdog")
        mon = self.loaded.config.monitoring
        if mon.listen_port is None:
            return
        app = make_app(
            self.telemetry,
            lambda: self.daemon_interval_seconds,
            mon.max_data_age_seconds,
            self.loaded.config.risk.max_portfolio_drawdown_halt,
            console=Console(self.loaded, self.environ, self.telemetry.clock),
            data_age=data_age_function(self.loaded.config.data),
            facts=lambda: disk_facts(self.loaded),
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, mon.listen_host, mon.listen_port).start()
        except OSError as exc:
            self._server_error = exc.strerror or str(exc)
            await runner.cleanup()
            return
        self._runner = runner
        addresses = runner.addresses
        self.bound_port = int(addresses[0][1]) if addresses else mon.listen_port

    async def _teardown(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        await asyncio.sleep(0)  # let the connector's transports finish closing
