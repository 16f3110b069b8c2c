"""One BLAS / OpenMP thread for the model's fits and predictions, with one library scan a process.

Parallelism belongs to the process pool above the fits (``runtime/jobs.py``); inside a fit or a
prediction a second thread only waits to be scheduled on a busy machine.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

# The BLAS and OpenMP libraries must be loaded before the one scan (see thread_controller).
import sklearn.ensemble
import sklearn.linear_model  # noqa: F401
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

_LIMITED = threading.local()
_CONTROLLER: list[ThreadpoolController] = []
"""The one :func:`thread_controller` of this process (built on first use)."""
_CONTROLLER_LOCK = threading.Lock()


def thread_controller() -> ThreadpoolController:
    """threadpoolctl's view of this process's BLAS / OpenMP libraries, scanned ONCE.

    A scan (``threadpool_limits`` makes one each time) walks every loaded shared library:
    ~6-10 ms, paid by every :meth:`TrainedModel.signals` call before. The libraries that matter
    (numpy's and scipy's OpenBLAS, scikit-learn's OpenMP) are loaded by this module's
    scikit-learn imports, so a scan made after them sees every pool a fit or a prediction here
    can use.
    """
    with _CONTROLLER_LOCK:
        if not _CONTROLLER:
            _CONTROLLER.append(ThreadpoolController())
        return _CONTROLLER[0]


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """One BLAS / OpenMP thread for the fits and predictions inside (a no-op inside one).

    These small fits run several times faster than with contended threads, the timing is
    predictable, and parallelism belongs to the process pool above us. Predictions too: with
    the default two threads, a small HGB / logistic prediction (~10 ms) now and then took
    0.5-1.1 s on a busy machine, waiting for the OpenMP / BLAS team's second thread to be
    scheduled (measured: 1 to 2 calls in 60, on 2 cores at load 3). Entering the limit costs
    ~0.2 ms with the process's one :func:`thread_controller` (no new library scan).
    """
    if getattr(_LIMITED, "active", False):
        yield
        return
    with thread_controller().limit(limits=1):
        _LIMITED.active = True
        try:
            yield
        finally:
            _LIMITED.active = False
