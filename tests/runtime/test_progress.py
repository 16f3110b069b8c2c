"""Progress: shown for ``--run-once`` on a terminal, silent in pipes, CI and daemon mode."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from _support.lifecycle_support import lifecycle_config, planted_frames
from _support.operator_support import run_in_pty

from aistock_actors.core.data.sample_data import write_universe_csvs
from aistock_actors.runtime import progress

REPO = Path(__file__).resolve().parents[2]
SUPERVISOR = str(REPO / "supervisor.py")
BAR = "━"


@pytest.fixture(autouse=True)
def _progress_off() -> Iterator[None]:
    yield
    progress.disable()


@pytest.fixture()
def lifecycle_dir(tmp_path: Path) -> Path:
    write_universe_csvs(tmp_path / "data", planted_frames(n_symbols=4, n_bars=560))
    lifecycle_config(tmp_path)  # inline jobs: the progress calls are the same, no pool to spawn
    return tmp_path


def test_disabled_by_default_every_call_is_a_no_op() -> None:
    assert not progress.enabled()
    with progress.task("train") as shown:
        assert shown is progress.NULL_TASK
        shown.advance()
        shown.note("ignored")
    assert list(progress.track([1, 2, 3], "ingest", "files")) == [1, 2, 3]
    mapper = progress.tracked_mapper(lambda fn, jobs: [fn(*job) for job in jobs], "backtest")
    assert mapper(pow, [(2, 3), (3, 2)]) == [8, 9]


def test_enabled_only_on_a_terminal_and_never_for_the_daemon() -> None:
    assert not progress.should_enable(io.StringIO())
    closed = io.StringIO()
    closed.close()
    assert not progress.should_enable(closed)
    controller, terminal = pty.openpty()
    try:
        with os.fdopen(terminal, "w", closefd=False) as tty:
            assert progress.should_enable(tty)
            assert not progress.should_enable(tty, daemon=True)
    finally:
        os.close(terminal)
        os.close(controller)


def test_tasks_from_many_threads_while_enabled() -> None:
    progress.enable(io.StringIO())
    progress.enable(io.StringIO())  # idempotent
    assert progress.enabled()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for _ in progress.track(list(range(50)), f"job{n}", "items"):
                pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    progress.disable()
    assert not progress.enabled()
    with progress.task("after") as shown:
        assert shown is progress.NULL_TASK


def test_run_once_on_a_terminal_shows_ingest_train_and_backtest(lifecycle_dir: Path) -> None:
    code, out = run_in_pty([sys.executable, SUPERVISOR, "config.json", "--run-once"],
                           cwd=lifecycle_dir)
    assert code == 0, out
    assert BAR in out and "\x1b[" in out
    for text in ("ingest", "/4 files", "train", "on 4 symbols", "backtest", "jobs running"):
        assert text in out, text
    assert "SUCCEEDED" in out.split(BAR)[-1]  # the summary comes after the bars


def test_run_once_in_a_pipe_prints_no_progress(lifecycle_dir: Path) -> None:
    done = subprocess.run([sys.executable, SUPERVISOR, "config.json", "--run-once"],
                          cwd=lifecycle_dir, capture_output=True, text=True, timeout=300,
                          check=False, env={**os.environ, "CI": "true"})
    assert done.returncode == 0, done.stderr
    assert "SUCCEEDED" in done.stdout
    for output in (done.stdout, done.stderr):
        assert BAR not in output and "\x1b[" not in output and "/4 files" not in output
