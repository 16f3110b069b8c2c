"""The dask backend: one ``dask.distributed`` client per scheduler (or local cluster) per process.

With ``parallel.scheduler_address`` jobs go to that running scheduler's workers (which must have
this package installed: functions are sent by reference). Without one, a ``LocalCluster`` of
``n_jobs`` single-threaded worker processes on 127.0.0.1 (no dashboard) is created on the first
job, shared by every runner of the process, and closed when the last runner is closed or at
interpreter exit. On timeout or cancellation every future of the batch is cancelled; a local
cluster is also torn down (its workers killed) and re-created by the next job. Dask is an
optional extra, imported only here and only when this backend is used.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from aistock_actors.errors import JobBackendError
from aistock_actors.runtime.job_support import (
    Cancelled,
    collect,
    job_name,
    large_args,
    release_memory,
)

log = logging.getLogger("aistock_actors.runtime.jobs")

R = TypeVar("R")

DASK_CONNECT_TIMEOUT_SECONDS = 30.0
"""How long connecting to ``parallel.scheduler_address`` (or starting a local cluster) may take."""
DASK_CLOSE_TIMEOUT_SECONDS = 10.0


class DaskPool:
    """One dask client per (scheduler address | local cluster size) per process, shared by the
    runners that use it; the client (and a local cluster) is created on the first job."""

    def __init__(self, address: str | None, n_workers: int) -> None:
        self.address = address
        self.n_workers = n_workers
        self.users = 0
        self._lock = threading.Lock()
        self._client: Any = None
        self._cluster: Any = None
        self._closing: list[threading.Thread] = []

    @property
    def started(self) -> bool:
        """Whether a client is connected (or a local cluster running) now."""
        return self._client is not None

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client, self._cluster = self._connect()
            return self._client

    def _connect(self) -> tuple[Any, Any]:
        try:
            import distributed
        except ImportError as exc:  # pragma: no cover - require_backend() checked it
            raise JobBackendError(f"dask.distributed cannot be imported: {exc}") from exc
        # Untyped constructors: keep them Any so strict mypy stays quiet.
        Client: Any = distributed.Client
        LocalCluster: Any = distributed.LocalCluster
        try:
            if self.address is not None:
                client = Client(
                    self.address, timeout=DASK_CONNECT_TIMEOUT_SECONDS, set_as_default=False
                )
                log.info("dask: connected to scheduler %s", self.address)
                return client, None
            cluster = LocalCluster(
                n_workers=self.n_workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                # No dashboard; the scheduler's health/metrics HTTP endpoint would otherwise try
                # port 8787 (and warn when it is taken): a random port on 127.0.0.1 instead.
                scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                silence_logs=logging.ERROR,
            )
            client = Client(cluster, timeout=DASK_CONNECT_TIMEOUT_SECONDS, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            where = self.address or "a local cluster"
            raise JobBackendError(f"dask: cannot connect to {where}: {exc}") from exc
        log.info(
            "dask: local cluster of %d worker(s) at %s",
            self.n_workers,
            cluster.scheduler_address,
        )
        return client, cluster

    def map(
        self,
        fn: Callable[..., R],
        jobs: Sequence[tuple[Any, ...]],
        timeout: float,
        cancelled: Cancelled,
    ) -> list[R]:
        """Run ``fn(*job)`` for every job on the cluster; results in job order."""
        client = self.client()
        large = large_args(jobs)
        release_memory()
        scattered: dict[int, Any] = {}
        try:
            scattered = {
                key: client.scatter([value], hash=False, timeout=timeout)[0]
                for key, value in large.items()
            }
            futures = [
                client.submit(fn, *(scattered.get(id(arg), arg) for arg in job), pure=False)
                for job in jobs
            ]
        except (OSError, TimeoutError) as exc:  # the scheduler went away (CommClosedError)
            raise JobBackendError(f"dask: cannot submit {job_name(fn)}: {exc!r}") from exc
        try:
            # Abandoning cancels the futures; a LOCAL cluster is also torn down (its workers
            # killed). A task already running on a remote worker keeps that worker busy.
            return collect(
                futures,
                name=job_name(fn),
                timeout=timeout,
                cancelled=cancelled,
                abandon=lambda: self.reset(client) if self._cluster is not None else None,
            )
        except BaseException as exc:
            if _is_dask_failure(exc):  # a worker died or the cluster went away under the job
                raise JobBackendError(f"dask job {job_name(fn)} lost: {exc!r}") from exc
            raise
        finally:
            del scattered  # the scheduler forgets the data once no future refers to it

    def reset(self, client: Any) -> None:
        """Tear down a LOCAL cluster whose worker runs an abandoned task (the next job starts a
        fresh one); closing kills the worker processes. Runs in a background thread so the
        actor replies ``timeout`` at once; :meth:`close` waits for it."""
        with self._lock:
            if self._client is not client:
                return
            old = (self._client, self._cluster)
            self._client = self._cluster = None
            closer = threading.Thread(
                target=_close_quietly, args=old, name="dask-reset", daemon=True
            )
            self._closing.append(closer)
        closer.start()

    def close(self) -> None:
        with self._lock:
            old = (self._client, self._cluster)
            self._client = self._cluster = None
            closing, self._closing = self._closing, []
        _close_quietly(*old)
        for closer in closing:
            closer.join(DASK_CLOSE_TIMEOUT_SECONDS * 2)


def _is_dask_failure(exc: BaseException) -> bool:
    """A failure of the cluster rather than of the job's own code."""
    from distributed import KilledWorker

    lost = (KilledWorker, asyncio.CancelledError, concurrent.futures.CancelledError)
    return isinstance(exc, lost)


def _close_quietly(client: Any, cluster: Any) -> None:
    for part in (client, cluster):
        if part is None:
            continue
        try:
            part.close(timeout=DASK_CLOSE_TIMEOUT_SECONDS)
        except Exception as exc:  # closing must never fail a stop path
            log.warning("dask: closing %s failed: %r", type(part).__name__, exc)


_POOLS: dict[tuple[str | None, int], DaskPool] = {}
_POOLS_LOCK = threading.Lock()


def acquire_dask_pool(address: str | None, n_jobs: int) -> DaskPool:
    key = (address, 0 if address is not None else n_jobs)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = DaskPool(address, n_jobs)
        pool.users += 1
        return pool


def release_dask_pool(pool: DaskPool) -> None:
    with _POOLS_LOCK:
        pool.users -= 1
        if pool.users > 0:
            return
        for key, value in list(_POOLS.items()):
            if value is pool:
                del _POOLS[key]
    pool.close()


def dask_pools_started() -> int:
    """How many dask clients (local clusters or remote connections) this process holds open."""
    with _POOLS_LOCK:
        return sum(1 for pool in _POOLS.values() if pool.started)


@atexit.register
def _close_all_dask_pools() -> None:
    """Safety net: a runner that was never closed (an abandoned actor) still frees its cluster."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()
