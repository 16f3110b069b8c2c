"""``one_thread``: one BLAS / OpenMP thread inside, the libraries scanned once per process."""

from __future__ import annotations

import threading

from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

from aistock_actors.core.model import threads


def _threads() -> set[int]:
    return {int(pool["num_threads"]) for pool in threadpool_info()}


def test_one_thread_limits_every_pool_inside_and_restores_them_after() -> None:
    before = _threads()
    with threads.one_thread():
        assert _threads() == {1}
        with threads.one_thread():  # nested: a no-op, still one thread
            assert _threads() == {1}
        assert _threads() == {1}
    assert _threads() == before


def test_the_library_scan_is_made_once_per_process() -> None:
    first = threads.thread_controller()
    seen: list[object] = []
    worker = threading.Thread(target=lambda: seen.append(threads.thread_controller()))
    worker.start()
    worker.join(10)
    assert seen == [first]
    assert threads.thread_controller() is first
    # the one scan found the pools a fit uses (BLAS for the logistic, OpenMP for the trees)
    apis = {pool["internal_api"] for pool in first.info()}
    assert {"openmp"} <= apis and apis & {"openblas", "mkl", "blis"}
