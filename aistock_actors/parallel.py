"""Where CPU-heavy work runs: a joblib/loky process pool that can be abandoned, or inline.

Training and backtesting are CPU-bound and may hang (a pathological fit, a stuck BLAS call). A
thread cannot be killed, a process can: so the Trainer and the Backtester hand their work to
:class:`JobRunner`, which submits it to loky's reusable process pool and waits at most
``timeout`` seconds. On timeout the pool's workers are KILLED (``kill_workers=True``), the next
job gets a fresh pool, and :class:`JobTimeoutError` tells the actor to report a ``timeout``
StepFailed instead of hanging until the supervisor abandons it.

Backends (config ``parallel.backend``):

- ``"loky"`` (default): ``parallel.n_jobs`` worker processes; :meth:`JobRunner.map` runs
  independent jobs (walk-forward folds) side by side, one per core.
- ``"inline"``: every job runs in the calling (actor) thread, one after another. Nothing can be
  killed, so a hang is only ended by the supervisor's step timeout (which abandons and restarts
  the actor). Tests use it to inject faults with monkeypatching, which a separate worker process
  would not see.

Functions handed to a loky runner must be importable module-level functions (they are pickled
by reference); their arguments and results are pickled too.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

from joblib.externals.loky import get_reusable_executor

log = logging.getLogger(__name__)

R = TypeVar("R")
Backend = Literal["loky", "inline"]

WORKER_IDLE_SECONDS = 300
"""Idle loky workers exit after this long (they are re-spawned on demand)."""


class JobTimeoutError(TimeoutError):
    """A pooled job did not finish within its timeout; the pool's workers were killed."""


class JobRunner:
    """Runs functions in the configured backend with a deadline (see the module docstring)."""

    def __init__(self, backend: Backend = "loky", n_jobs: int = 2) -> None:
        if backend not in ("loky", "inline"):
            raise ValueError(f"unknown parallel backend {backend!r}; expected 'loky' or 'inline'")
        if n_jobs < 1:
            raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
        self.backend: Backend = backend
        self.n_jobs = n_jobs

    def run(self, fn: Callable[..., R], *args: Any, timeout: float) -> R:
        """Run ``fn(*args)``; :class:`JobTimeoutError` if it takes longer than ``timeout``."""
        return self.map(fn, [args], timeout=timeout)[0]

    def map(
        self, fn: Callable[..., R], jobs: Sequence[tuple[Any, ...]], *, timeout: float
    ) -> list[R]:
        """Run ``fn(*job)`` for every job (in parallel with loky); results in job order.

        ``timeout`` bounds the whole batch. The first job that raises re-raises here (the other
        jobs are cancelled or left to finish in the pool).
        """
        if self.backend == "inline":
            return [fn(*job) for job in jobs]
        return _pooled(fn, jobs, self.n_jobs, timeout)


def _pooled(
    fn: Callable[..., R], jobs: Sequence[tuple[Any, ...]], n_jobs: int, timeout: float
) -> list[R]:
    executor = get_reusable_executor(max_workers=n_jobs, timeout=WORKER_IDLE_SECONDS)
    futures = [executor.submit(fn, *job) for job in jobs]
    deadline = time.monotonic() + timeout
    try:
        return [f.result(timeout=max(0.0, deadline - time.monotonic())) for f in futures]
    except concurrent.futures.TimeoutError:
        for future in futures:
            future.cancel()
        log.error("pooled job %s exceeded %.1fs; killing the pool's workers", fn.__name__, timeout)
        executor.shutdown(wait=False, kill_workers=True)
        raise JobTimeoutError(f"{fn.__name__} did not finish within {timeout:g}s") from None
    except BaseException:
        for future in futures:
            future.cancel()
        raise


def make_mapper(runner: JobRunner, timeout: float) -> Callable[..., list[Any]]:
    """A mapper bound to ``timeout`` seconds, for the pure pipeline's ``mapper`` argument."""

    def mapper(fn: Callable[..., R], jobs: Sequence[tuple[Any, ...]]) -> list[R]:
        return runner.map(fn, jobs, timeout=timeout)

    return mapper
