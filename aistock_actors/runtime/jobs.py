"""Where CPU-heavy work runs: a joblib/loky process pool, a dask cluster, or inline.

Training and backtesting are CPU-bound and may hang (a pathological fit, a stuck BLAS call). A
thread cannot be killed, a process can: so the Trainer and the Backtester hand their work to
:class:`JobRunner`, which submits it to a pool of worker processes and waits at most ``timeout``
seconds. On timeout the job is abandoned (see each backend) and :class:`JobTimeoutError` tells
the actor to report a ``timeout`` StepFailed instead of hanging until the supervisor abandons it.

Backends (config ``parallel.backend``):

- ``"loky"`` (default): joblib's reusable loky pool of ``parallel.n_jobs`` worker processes;
  :meth:`JobRunner.map` runs independent jobs (walk-forward folds, the training step's model
  fits) side by side, one per core.
  On timeout the pool's workers are KILLED (``kill_workers=True``) and the next job gets a fresh
  pool.
- ``"dask"``: a ``dask.distributed`` cluster. With ``parallel.scheduler_address`` (e.g.
  ``"tcp://scheduler:8786"``) jobs go to that running scheduler's workers, which must have this
  package installed (functions are sent by reference). Without an address a ``LocalCluster`` of
  ``n_jobs`` single-threaded worker processes on 127.0.0.1 (no dashboard) is created on the first
  job, shared by every runner of the process, and closed when the last runner is closed
  (:meth:`JobRunner.close`, called from the actors' ``on_stop``) or at interpreter exit. On
  timeout every future of the batch is cancelled (``Future.cancel()``); a local cluster is also
  torn down (its worker processes are killed, like loky's) and re-created by the next job. Dask
  cannot interrupt a task that is already running on a REMOTE worker: it keeps that worker thread
  busy until it returns, and its result is dropped. Dask is an optional extra
  (``pip install 'aistock-actors[dask]'``), imported only when this backend is used.
- ``"inline"``: every job runs in the calling (actor) thread, one after another. Nothing can be
  killed, so a hang is only ended by the supervisor's step timeout (which abandons and restarts
  the actor). Tests use it to inject faults with monkeypatching, which a separate worker process
  would not see.

**Large arguments are sent once.** A job argument of at least :data:`SHARE_MIN_BYTES` (numpy
arrays, pandas objects, and tuples / lists / dicts of them) is not pickled into each job: with
loky it is written once per batch with ``joblib.dump`` to a temp folder (``/dev/shm`` when
usable) and memory-mapped read-only by the workers (zero-copy, the pages are shared); with dask
it is scattered once to the cluster. The same object passed to several jobs of a batch is sent
once. So the walk-forward folds share one feature panel instead of each carrying its own copy.

Functions handed to a pooled runner must be importable module-level functions (they are pickled
by reference); their other arguments and their results are pickled. Job functions must not write
into array arguments (with loky they are read-only memory maps).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from joblib.externals.loky import get_reusable_executor

from aistock_actors.errors import ConfigError
from aistock_actors.runtime.clock import SYSTEM_CLOCK
from aistock_actors.runtime.memory import trim_heap
from aistock_actors.runtime.worker_guard import die_with_parent

log = logging.getLogger(__name__)

R = TypeVar("R")
Backend = Literal["loky", "inline", "dask"]
BACKENDS: tuple[Backend, ...] = ("loky", "inline", "dask")

WORKER_IDLE_SECONDS = 300
"""Idle loky workers exit after this long (they are re-spawned on demand)."""
SHARE_MIN_BYTES = 1 << 20
"""Job arguments at least this big are sent once per batch (memory map / scatter)."""
DASK_INSTALL_HINT = "pip install 'aistock-actors[dask]'"
DASK_CONNECT_TIMEOUT_SECONDS = 30.0
"""How long connecting to ``parallel.scheduler_address`` (or starting a local cluster) may take."""
DASK_CLOSE_TIMEOUT_SECONDS = 10.0


class JobTimeoutError(TimeoutError):
    """A pooled job did not finish within its timeout; it was abandoned (see the backends)."""


class JobBackendError(RuntimeError):
    """The job backend itself failed (dask scheduler unreachable, local cluster did not start)."""


def dask_available() -> bool:
    """Whether ``dask.distributed`` is installed (checked without importing it)."""
    return importlib.util.find_spec("distributed") is not None


def require_backend(backend: str) -> None:
    """Raise :class:`ConfigError` if ``backend`` is unknown or its optional extra is missing."""
    if backend not in BACKENDS:
        expected = ", ".join(repr(b) for b in BACKENDS)
        raise ConfigError(f"unknown parallel backend {backend!r}; expected one of {expected}")
    if backend == "dask" and not dask_available():
        raise ConfigError(
            "parallel.backend is 'dask' but dask.distributed is not installed: "
            f"{DASK_INSTALL_HINT} (or set parallel.backend to 'loky')"
        )


class JobRunner:
    """Runs functions in the configured backend with a deadline (see the module docstring)."""

    def __init__(
        self, backend: Backend = "loky", n_jobs: int = 2, scheduler_address: str | None = None
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(
                f"unknown parallel backend {backend!r}; expected 'loky', 'dask' or 'inline'"
            )
        if n_jobs < 1:
            raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
        self.backend: Backend = backend
        self.n_jobs = n_jobs
        self.scheduler_address = scheduler_address
        # A missing dask extra does not stop the actor that owns this runner from starting (that
        # would be a restart storm): every job fails with the install hint instead. A start-up
        # check can refuse it earlier with a ConfigError: lifecycle.check_parallel().
        self._missing: str | None = None
        self._dask: _DaskPool | None = None
        if backend == "dask":
            try:
                require_backend(backend)
            except ConfigError as exc:
                self._missing = str(exc)
            else:
                self._dask = _acquire_dask_pool(scheduler_address, n_jobs)

    def run(self, fn: Callable[..., R], *args: Any, timeout: float) -> R:
        """Run ``fn(*args)``; :class:`JobTimeoutError` if it takes longer than ``timeout``."""
        return self.map(fn, [args], timeout=timeout)[0]

    def map(
        self, fn: Callable[..., R], jobs: Sequence[tuple[Any, ...]], *, timeout: float
    ) -> list[R]:
        """Run ``fn(*job)`` for every job (in parallel when pooled); results in job order.

        ``timeout`` bounds the whole batch. The first job that raises re-raises here (the other
        jobs are cancelled or left to finish in the pool). Jobs are started in the order given,
        so put the longest first.
        """
        if self.backend == "inline":
            return [fn(*job) for job in jobs]
        if self.backend == "dask":
            if self._missing is not None:
                raise JobBackendError(self._missing)
            if self._dask is None:
                raise JobBackendError("this job runner was closed")
            return self._dask.map(fn, jobs, timeout)
        return _pooled(fn, jobs, self.n_jobs, timeout)

    def close(self) -> None:
        """Release the backend (idempotent): the last runner using a local dask cluster closes
        it. The loky pool is process-wide and reused; its idle workers exit by themselves."""
        pool, self._dask = self._dask, None
        if pool is not None:
            _release_dask_pool(pool)

    def __enter__(self) -> JobRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_mapper(runner: JobRunner, timeout: float) -> Callable[..., list[Any]]:
    """A mapper bound to ``timeout`` seconds, for the pure pipeline's ``mapper`` argument."""

    def mapper(fn: Callable[..., R], jobs: Sequence[tuple[Any, ...]]) -> list[R]:
        return runner.map(fn, jobs, timeout=timeout)

    return mapper


def deadline_mapper(runner: JobRunner, timeout: float) -> Callable[..., list[Any]]:
    """A mapper whose batches TOGETHER may take ``timeout`` seconds, counted from now.

    For a step that runs several dependent batches (training: the primary's fits, then the
    meta-labeler's): each batch gets what is left of the step's budget, and a batch that would
    start with none left raises :class:`JobTimeoutError` at once.
    """
    deadline = SYSTEM_CLOCK.monotonic() + timeout

    def mapper(fn: Callable[..., R], jobs: Sequence[tuple[Any, ...]]) -> list[R]:
        left = deadline - SYSTEM_CLOCK.monotonic()
        if left <= 0:
            raise JobTimeoutError(f"{_name(fn)} not started: the {timeout:g}s budget is spent")
        return runner.map(fn, jobs, timeout=left)

    return mapper


# --- large arguments ----------------------------------------------------------------------


def estimated_nbytes(value: Any, depth: int = 0) -> int:
    """Bytes of the arrays inside ``value`` (numpy, pandas, and containers of them), roughly."""
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):  # numpy arrays, pandas Index / Series
        return nbytes
    memory_usage = getattr(value, "memory_usage", None)
    if callable(memory_usage):  # pandas DataFrame (index included)
        return int(memory_usage(index=True, deep=False).sum())
    if depth >= 3:
        return 0
    if isinstance(value, (tuple, list)):
        return sum(estimated_nbytes(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return sum(estimated_nbytes(item, depth + 1) for item in value.values())
    return 0


def _large_args(jobs: Sequence[tuple[Any, ...]]) -> dict[int, Any]:
    """``{id: arg}`` of every distinct job argument of at least :data:`SHARE_MIN_BYTES`."""
    large: dict[int, Any] = {}
    sizes: dict[int, int] = {}
    for job in jobs:
        for arg in job:
            key = id(arg)
            if key not in sizes:
                sizes[key] = estimated_nbytes(arg)
                if sizes[key] >= SHARE_MIN_BYTES:
                    large[key] = arg
    return large


class _MappedArg:
    """Placeholder for a large argument written with ``joblib.dump``; loaded memory-mapped."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (_MappedArg, (self.path,))


def _call_job(fn: Callable[..., R], job: tuple[Any, ...]) -> R:
    """Worker side of a loky job: load the memory-mapped arguments, call ``fn``, then hand the
    job's freed heap back to the OS (an idle worker would otherwise keep its peak)."""
    import joblib

    args = [joblib.load(a.path, mmap_mode="r") if isinstance(a, _MappedArg) else a for a in job]
    try:
        return fn(*args)
    finally:
        del args
        release_memory()


def release_memory() -> None:
    """Return freed heap memory to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    glibc keeps the memory of freed small and medium blocks (pandas and scikit-learn free many
    while building a feature panel or fitting), so a process's RSS stays at its peak long after
    the data is gone. Called before a batch of jobs fans out and after each pooled job.
    """
    trim_heap()


def _shm_dir() -> str | None:
    """``/dev/shm`` if it is a writable folder (RAM-backed: nothing goes to disk), else None."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


_SPILL_PREFIX = "aistock-jobs-"


def _new_spill_dir(parent: str | None) -> Path:
    """A fresh ``aistock-jobs-<pid>-*`` folder; first removes those of processes that died
    without cleaning up (SIGKILL, OOM): in ``/dev/shm`` they would hold RAM until reboot."""
    root = Path(parent if parent is not None else tempfile.gettempdir())
    for stale in root.glob(f"{_SPILL_PREFIX}*-*"):
        pid = stale.name.removeprefix(_SPILL_PREFIX).split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{_SPILL_PREFIX}{os.getpid()}-", dir=parent))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


class _SpillFolder:
    """A per-batch temp folder holding the large arguments of one loky batch."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.count = 0

    def dump(self, value: Any) -> _MappedArg:
        import joblib

        if self.path is None:
            self.path = _new_spill_dir(_shm_dir())
        self.count += 1
        target = self.path / f"arg-{self.count}.pkl"
        try:
            joblib.dump(value, target)
        except OSError as exc:
            if self.path.parent == Path(tempfile.gettempdir()):
                raise
            # A small /dev/shm (containers default to 64 MB) fills up: use the temp dir instead.
            log.info("cannot write a job argument to %s (%s); using the temp dir", self.path, exc)
            self.close()
            self.path = _new_spill_dir(None)
            target = self.path / f"arg-{self.count}.pkl"
            joblib.dump(value, target)
        return _MappedArg(str(target))

    def close(self) -> None:
        path, self.path = self.path, None
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)


# --- loky ---------------------------------------------------------------------------------


def _pooled(
    fn: Callable[..., R], jobs: Sequence[tuple[Any, ...]], n_jobs: int, timeout: float
) -> list[R]:
    deadline = SYSTEM_CLOCK.monotonic() + timeout
    large = _large_args(jobs)
    spill = _SpillFolder()
    try:
        mapped = {key: spill.dump(value) for key, value in large.items()}
        shipped = [tuple(mapped.get(id(arg), arg) for arg in job) for job in jobs]
        executor = get_reusable_executor(
            max_workers=n_jobs,
            timeout=WORKER_IDLE_SECONDS,
            initializer=die_with_parent,  # #17: no worker outlives a SIGKILLed daemon
            initargs=(os.getpid(),),
        )
        release_memory()  # the caller's garbage (e.g. building the feature panel) goes first
        futures = [executor.submit(_call_job, fn, job) for job in shipped]
        try:
            return [
                f.result(timeout=max(0.0, deadline - SYSTEM_CLOCK.monotonic())) for f in futures
            ]
        except concurrent.futures.TimeoutError:
            for future in futures:
                future.cancel()
            log.error(
                "pooled job %s exceeded %.1fs; killing the pool's workers", _name(fn), timeout
            )
            executor.shutdown(wait=False, kill_workers=True)
            raise JobTimeoutError(f"{_name(fn)} did not finish within {timeout:g}s") from None
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    finally:
        spill.close()  # a worker still running keeps its mapping; the file name goes now


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__name__", repr(fn))


# --- dask ---------------------------------------------------------------------------------


class _DaskPool:
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

    def map(self, fn: Callable[..., R], jobs: Sequence[tuple[Any, ...]], timeout: float) -> list[R]:
        deadline = SYSTEM_CLOCK.monotonic() + timeout
        client = self.client()
        large = _large_args(jobs)
        release_memory()
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
            raise JobBackendError(f"dask: cannot submit {_name(fn)}: {exc!r}") from exc
        try:
            return [
                f.result(timeout=max(0.0, deadline - SYSTEM_CLOCK.monotonic())) for f in futures
            ]
        except TimeoutError:
            for future in futures:
                future.cancel()
            log.error("dask job %s exceeded %.1fs; its futures were cancelled", _name(fn), timeout)
            if self._cluster is not None:
                self.reset(client)
            raise JobTimeoutError(f"{_name(fn)} did not finish within {timeout:g}s") from None
        except BaseException as exc:
            for future in futures:
                future.cancel()
            if _is_dask_failure(exc):  # a worker died or the cluster went away under the job
                raise JobBackendError(f"dask job {_name(fn)} lost: {exc!r}") from exc
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


_POOLS: dict[tuple[str | None, int], _DaskPool] = {}
_POOLS_LOCK = threading.Lock()


def _acquire_dask_pool(address: str | None, n_jobs: int) -> _DaskPool:
    key = (address, 0 if address is not None else n_jobs)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = _DaskPool(address, n_jobs)
        pool.users += 1
        return pool


def _release_dask_pool(pool: _DaskPool) -> None:
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
