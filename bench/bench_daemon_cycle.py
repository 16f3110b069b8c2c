"""A running daemon's training cycle: CPU-seconds per cycle once the autopilot is up (issue #18).

Run from the repository root::

    .venv/bin/python bench/bench_daemon_cycle.py [--symbols 100 500] [--bars 2520] \
        [--cycles 3] [--backend loky] [--n-jobs 2]

``bench_cycle.py`` times a cold ``--run-once`` process: interpreter start-up, every import, the
first ingest of every CSV from an empty state. A daemon pays those once. This bench measures what
it pays EVERY cycle: per symbol count N, ``generate_universe(N, --bars + --cycles, seed=42)`` is
written WITHOUT its last ``--cycles`` bars; the production wiring
(``runtime/child_specs.default_specs``, product defaults except the paths, ``parallel`` and
``training.retrain_every_bars`` = 1, so that every cycle trains: by default a daemon trains every
21st bar and its other cycles skip training, backtest and judge) runs
in this process. A first cycle ingests the CSVs and trains (not counted: the daemon's start).
Then, ``--cycles`` times: one new bar is appended to every CSV (as a live feed does), and one
cycle ingests it, trains a candidate on all symbols, backtests it walk-forward, judges it,
assesses risk and paper-trades.

The pool's idle workers are made to exit between cycles (``WORKER_IDLE_SECONDS`` set to 1 s,
then a 2 s pause), as they do between a real daemon's hourly cycles (300 s), so every counted
cycle starts its workers again (forked from the warm fork server).

Measured per counted cycle: **CPU** = user + system seconds of this process (all its threads)
plus every descendant (the fork server, the loky workers alive, and the workers the fork server
reaped), from psutil, before and after the cycle; **wall**; the steps' ``duration_s``. The
figure is compared (printed, never asserted) with the goals of ``bench_cycle.TARGET_CPU_S``
(<= 15 CPU-s at 100 x 2,520, <= 60 at 500 x 2,520): the median of the counted cycles.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aistock_actors.config import load_config  # noqa: E402
from aistock_actors.core.data.sample_data import (  # noqa: E402
    append_universe_bar,
    generate_universe,
    write_universe_csvs,
)
from aistock_actors.runtime import job_loky  # noqa: E402
from aistock_actors.runtime.child_specs import default_specs  # noqa: E402
from aistock_actors.runtime.supervisor import Supervisor  # noqa: E402

TARGET_CPU_S = {100: 15.0, 500: 60.0}
"""The same goals as ``bench_cycle.TARGET_CPU_S`` (issue #18)."""


def tree_cpu() -> float:
    """CPU seconds of this process and of every descendant, dead ones their parent reaped
    included (the fork server reaps its workers: their time is in its ``children_*``)."""
    me = psutil.Process()
    times = me.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in me.children(recursive=True):
        try:
            t = child.cpu_times()
        except psutil.Error:  # exited between the listing and the read
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def write_config(work: Path, data: Path, backend: str, n_jobs: int) -> Path:
    path = work / "config.json"
    path.write_text(json.dumps({
        "mode": "headless",
        "state_dir": str(work / "state"),
        "models_dir": str(work / "models"),
        "data": {"csv_dir": str(data)},
        "parallel": {"backend": backend, "n_jobs": n_jobs},
        "training": {"retrain_every_bars": 1},  # every counted cycle is a training cycle
    }))
    return path


def run(
    n: int, bars: int, cycles: int, backend: str, n_jobs: int, work: Path
) -> list[dict[str, Any]]:
    frames = generate_universe(n, bars + cycles, seed=42)
    data = work / "data"
    write_universe_csvs(data, {s: f.iloc[:bars] for s, f in frames.items()})
    sup = Supervisor(load_config(write_config(work, data, backend, n_jobs)), default_specs())
    sup.start()
    rows: list[dict[str, Any]] = []
    try:
        first = sup.run_once()  # the daemon's start: the first full ingest and a first candidate
        if first is None:
            raise SystemExit(f"N={n}: the first cycle was refused (halted: {sup.halt})")
        for i in range(cycles):
            time.sleep(2.0)  # idle workers exit (WORKER_IDLE_SECONDS = 1), as between cycles
            append_universe_bar(data, frames, bars + i)
            cpu0, wall0 = tree_cpu(), time.perf_counter()
            summary = sup.run_once()
            wall, cpu = time.perf_counter() - wall0, tree_cpu() - cpu0
            if summary is None:
                raise SystemExit(f"N={n}: cycle {i + 1} refused (halted: {sup.halt})")
            steps = {s.name: s.duration_s for s in summary.steps}
            judge = next((s for s in summary.steps if s.name == "judge"), None)
            rows.append({"cpu": cpu, "wall": wall, "steps": steps, "outcome": summary.outcome,
                         "verdict": judge.data.get("status") if judge and judge.data else None})
            print(f"  N={n} cycle {i + 1}: CPU {cpu:.1f} s, wall {wall:.1f} s, "
                  f"outcome {summary.outcome} | "
                  + " ".join(f"{k}={v:.2f}" for k, v in steps.items()), flush=True)
    finally:
        sup.stop()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--bars", type=int, default=2520)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--backend", choices=["loky", "inline"], default="loky")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, a few seconds (overrides the size flags): "
                        "the bench still runs (tests/bench/test_bench_commands.py)")
    args = parser.parse_args()
    if args.smoke:
        args.symbols, args.bars, args.cycles = [4], 620, 1
    logging.basicConfig(level=logging.CRITICAL + 1)
    job_loky.WORKER_IDLE_SECONDS = 1  # a daemon's workers are gone by its next hourly cycle
    print(f"# bench_daemon_cycle — {os.cpu_count()} cores, load average at start "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}; backend={args.backend} "
          f"n_jobs={args.n_jobs} bars={args.bars} cycles={args.cycles}\n")
    results: dict[int, list[dict[str, Any]]] = {}
    for n in args.symbols:
        with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp:
            results[n] = run(n, args.bars, args.cycles, args.backend, args.n_jobs, Path(tmp))
    print("\n| N | cycles | CPU s (median, range) | wall s (median) | train s | backtest s |"
          " outcomes |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    for n, rows in results.items():
        cpus = [r["cpu"] for r in rows]
        print(f"| {n} | {len(rows)} | {statistics.median(cpus):.1f} ({min(cpus):.1f}-"
              f"{max(cpus):.1f}) | {statistics.median(r['wall'] for r in rows):.1f} | "
              f"{statistics.median(r['steps'].get('train', 0.0) for r in rows):.2f} | "
              f"{statistics.median(r['steps'].get('backtest', 0.0) for r in rows):.2f} | "
              f"{sorted({r['outcome'] for r in rows})} |")
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    for n, rows in results.items():
        goal = TARGET_CPU_S.get(n)
        if goal is not None and args.bars == 2520:
            cpu = statistics.median(r["cpu"] for r in rows)
            print(f"CPU goal of a daemon's cycle at N={n} (issue #18): {cpu:.1f} CPU-s <= "
                  f"{goal:.0f} -> {'PASS' if cpu <= goal else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
