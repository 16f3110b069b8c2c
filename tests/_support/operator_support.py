"""A state directory as an operator finds it after a few days, built by running real cycles.

Two full lifecycle cycles (one rejected verdict, one promotion), then trading cycles on the real
ingest / risk / trade actors, one new bar pair at a time: equity points, fills with predicted and
realised costs, risk-limit changes, a rejected CSV (error alert) and a kill-switch trip (critical
alert, then ``--unkill``). Built once per test session (about 10 s) and copied per test.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from _support.lifecycle_support import lifecycle_config, planted_frames, run_cycle
from _support.paper_support import trading_specs
from _support.support import pump_until
from aistock_actors.config import load_config
from aistock_actors.core.data.sample_data import write_universe_csvs
from aistock_actors.runtime.supervisor import Supervisor
from aistock_actors.services import operator_actions as operator

FIRST_BARS = 560
TRADING_CYCLES = 16
BARS_PER_CYCLE = 2
RISK = {"performance_window": 5, "min_observations": 3}

_built: dict[str, Path] = {}


def _config(root: Path, **promotion: Any) -> Path:
    return lifecycle_config(root, risk=RISK, promotion=promotion)


def _grow(root: Path, frames: dict[str, Any], n: int) -> None:
    write_universe_csvs(root / "data", {s: f.iloc[:n] for s, f in frames.items()})


def _trading_cycles(root: Path, frames: dict[str, Any]) -> None:
    sup = Supervisor(load_config(root / "config.json"), trading_specs())
    sup.start()
    try:
        pump_until(sup, lambda: all(c.ref is not None for c in sup.children.values()))
        for i in range(TRADING_CYCLES):
            _grow(root, frames, FIRST_BARS + BARS_PER_CYCLE * (i + 1))
            bad = root / "data" / "BROKEN.csv"
            if i == TRADING_CYCLES // 2:  # a malformed file: an error alert naming the row
                bad.write_text("timestamp,open,high,low,close,volume\n2017-01-02,1,2,0.5,x,10\n")
            summary = sup.run_once()
            bad.unlink(missing_ok=True)
            assert summary is not None and summary.outcome == "succeeded", summary
    finally:
        sup.stop()


def _kill_and_unkill(root: Path) -> None:
    """A kill-switch trip as the daemon records it (critical alert, audit), then ``--unkill``."""
    loaded = load_config(root / "config.json")
    operator.kill(loaded)
    sup = Supervisor(loaded, trading_specs())
    sup.start()  # sees state/KILL_SWITCH at once: halt, audit, critical alert
    sup.stop()
    assert (root / "state" / "HALTED").exists()
    operator.unkill(loaded)


def build(root: Path) -> Path:
    """Fill ``root`` (data/, state/, models/, config.json) by running real cycles."""
    frames = planted_frames(n_bars=FIRST_BARS + BARS_PER_CYCLE * TRADING_CYCLES)
    _grow(root, frames, FIRST_BARS)
    run_cycle(_config(root, min_trades=1_000_000))  # the gate rejects it: a rejected verdict
    _grow(root, frames, FIRST_BARS + 1)  # a new bar: the next cycle trains a candidate again
    config = _config(root)
    summary, _ = run_cycle(config)
    assert summary.outcome == "succeeded", summary
    _trading_cycles(root, frames)
    _kill_and_unkill(root)
    return config


def operator_state(cache_root: Path, dest: Path) -> Path:
    """A private copy of the session's built state in ``dest``; returns its config path.

    The config holds absolute paths, so the copy's config is rewritten to point at ``dest``.
    """
    key = str(cache_root)
    if key not in _built:
        source = cache_root / "operator-state"
        source.mkdir(parents=True, exist_ok=True)
        build(source)
        _built[key] = source
    source = _built[key]
    shutil.copytree(source, dest, dirs_exist_ok=True)
    config_path = dest / "config.json"
    config = json.loads(config_path.read_text())
    for key_path in (("state_dir",), ("models_dir",), ("data", "csv_dir")):
        holder = config
        for part in key_path[:-1]:
            holder = holder[part]
        holder[key_path[-1]] = holder[key_path[-1]].replace(str(source), str(dest))
    config_path.write_text(json.dumps(config))
    return config_path


def run_in_pty(argv: list[str], cwd: Path, timeout: float = 120.0,
               columns: int = 140) -> tuple[int, str]:
    """Run ``argv`` with stdin, stdout and stderr on a pseudo-terminal; ``(exit code, output)``."""
    import os
    import pty
    import select
    import subprocess
    import time

    controller, terminal = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "50", "TERM": "xterm-256color"}
    for name in ("NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "FORCE_COLOR"):
        env.pop(name, None)
    proc = subprocess.Popen(argv, cwd=cwd, stdin=terminal, stdout=terminal, stderr=terminal,
                            env=env, close_fds=True)
    os.close(terminal)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{argv} did not finish within {timeout}s")
            ready, _, _ = select.select([controller], [], [], remaining)
            if not ready:
                continue
            try:
                data = os.read(controller, 65536)
            except OSError:  # EIO: every writer closed the terminal (the process exited)
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(controller)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, b"".join(chunks).decode("utf-8", errors="replace")
