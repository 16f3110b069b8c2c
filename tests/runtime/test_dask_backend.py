"""The dask backend: a LocalCluster on 127.0.0.1 gives the same cycle as loky, hung jobs are
cancelled, a running scheduler can be used by address, and the stop path closes the cluster.

Needs the ``dask`` extra (``test.sh`` installs it); skipped without it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _support.lifecycle_support import lifecycle_config, run_cycle, step, write_planted

from aistock_actors.runtime import job_dask
from aistock_actors.runtime.jobs import JobBackendError, JobRunner, JobTimeoutError

distributed = pytest.importorskip("distributed")

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture(autouse=True)
def no_cluster_left() -> Iterator[None]:
    yield
    assert job_dask.dask_pools_started() == 0, "a dask cluster was left running"


def test_jobs_run_in_order_in_local_worker_processes_and_large_arguments_are_scattered() -> None:
    with JobRunner("dask", 2) as runner:
        assert job_dask.dask_pools_started() == 0  # the cluster starts with the first job
        assert runner.map(pow, [(2, 3), (3, 2), (10, 0)], timeout=60) == [8, 9, 1]
        assert job_dask.dask_pools_started() == 1
        assert runner.run(os.getpid, timeout=60) != os.getpid()
        big = np.ones(300_000)  # 2.4 MB: scattered once, not embedded in each task
        assert runner.map(np.sum, [(big,), (big,)], timeout=60) == [300_000.0, 300_000.0]
        with JobRunner("dask", 2) as second:  # same process, same size: the same cluster
            assert second.run(pow, 2, 2, timeout=60) == 4
            assert job_dask.dask_pools_started() == 1
        assert job_dask.dask_pools_started() == 1  # still used by the first runner
    assert job_dask.dask_pools_started() == 0  # the last runner closed it


def test_a_hung_job_is_cancelled_and_the_next_job_gets_a_fresh_cluster() -> None:
    with JobRunner("dask", 2) as runner:
        runner.run(pow, 1, 1, timeout=60)
        client = job_dask._POOLS[(None, 2)].client()
        start = time.monotonic()
        with pytest.raises(JobTimeoutError, match="sleep did not finish within 1s"):
            runner.run(time.sleep, 60, timeout=1.0)
        assert time.monotonic() - start < 10
        assert client.status in ("closing", "closed", "running")
        assert job_dask._POOLS[(None, 2)].client() is not client  # the old cluster is torn down
        assert runner.run(pow, 2, 5, timeout=60) == 32


def test_a_running_scheduler_is_used_by_address_and_left_running() -> None:
    cluster = distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
    )
    try:
        with JobRunner("dask", 2, cluster.scheduler_address) as runner:
            pid = runner.run(os.getpid, timeout=60)
            assert pid in _worker_pids(cluster)
        assert cluster.status.name == "running"  # a scheduler we did not start is not closed
    finally:
        cluster.close()


def _worker_pids(cluster: Any) -> set[int]:
    with distributed.Client(cluster, set_as_default=False) as client:
        return set(client.run(os.getpid).values())


def _cycle_figures(tmp: Path, backend: str) -> dict[str, Any]:
    write_planted(tmp)
    # closing a local cluster (client, then scheduler and nannies) takes seconds under load:
    # the stop budget must cover it, or the trainer is abandoned with its cluster "closing"
    config = lifecycle_config(tmp, backend=backend, supervision={"shutdown_timeout_seconds": 30})
    summary, _ = run_cycle(config)
    assert summary.outcome == "succeeded", summary
    manifest = json.loads((tmp / "state" / "promotion" / "manifest.json").read_text())
    entry = manifest[-1]
    model_id = entry["model_id"]
    training = {k: v for k, v in step(summary, "train").data.items() if k != "model_id"}
    training.pop("sha256")  # the artifact embeds its id and creation time
    backtest = {k: v for k, v in step(summary, "backtest").data.items() if k != "model_id"}
    stored = json.loads((tmp / "models" / model_id / "metadata.json").read_text())
    return {
        "verdict": entry["status"],
        "stages": [(s["name"], s["status"], s.get("value")) for s in entry["stages"]],
        "training": training,
        "backtest": backtest,
        "model_metrics": stored.get("metrics"),
    }


def test_a_full_cycle_on_a_local_cluster_matches_loky_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loky = _cycle_figures(tmp_path / "loky", "loky")
    clusters: list[Any] = []
    connect = job_dask.DaskPool._connect

    def spy(pool: job_dask.DaskPool) -> tuple[Any, Any]:
        client, cluster = connect(pool)
        clusters.append(cluster)
        return client, cluster

    monkeypatch.setattr(job_dask.DaskPool, "_connect", spy)
    dask = _cycle_figures(tmp_path / "dask", "dask")
    assert len(clusters) == 1  # train and backtest shared one 2-worker local cluster
    assert clusters[0].status.name == "closed"
    assert job_dask.dask_pools_started() == 0  # the supervisor's stop path closed the cluster
    assert dask["verdict"] == loky["verdict"] == "approved"
    assert dask["training"] == loky["training"]  # seeded: bit-identical model metrics
    assert dask["backtest"] == loky["backtest"]  # and backtest metrics
    assert dask["stages"] == loky["stages"]
    assert dask["model_metrics"] == loky["model_metrics"]


def test_an_unreachable_scheduler_is_a_backend_error_not_a_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(job_dask, "DASK_CONNECT_TIMEOUT_SECONDS", 2.0)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    with JobRunner("dask", 1, address) as runner:
        start = time.monotonic()
        with pytest.raises(JobBackendError, match="cannot connect"):
            runner.run(pow, 2, 2, timeout=60)
        assert time.monotonic() - start < 20


def test_dask_backend_without_the_extra_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from _support.support import write_config

    from aistock_actors.cli import app as cli
    from aistock_actors.runtime import jobs as parallel

    monkeypatch.setattr(parallel, "dask_available", lambda: False)
    config = write_config(tmp_path, parallel={"backend": "dask"})
    assert cli.main([str(config), "--run-once"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "aistock-actors[dask]" in err and "Traceback" not in err
    assert not (tmp_path / "state" / "audit").exists()  # no actor started, nothing recorded
