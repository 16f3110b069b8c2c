"""One full ``--run-once`` cycle at 10, 100 and 500 symbols: time per step and peak memory.

Run from the repository root::

    .venv/bin/python bench/bench_cycle.py [--symbols 10 100 500] [--bars 2520] [--repeats 3] \
        [--backend loky|dask|inline] [--n-jobs 2] [--profile STEP] [--keep]

Set-up per symbol count N (built once, reused by every run): ``generate_universe(N, --bars,
seed=42)`` written as ``<SYMBOL>.csv`` files (``write_universe_csvs``). Per run: a fresh state and
models folder (so every run ingests all the CSVs, trains a candidate, backtests it walk-forward,
judges it, assesses risk and paper-trades), a config with the product defaults except the paths
and ``parallel`` (``--backend``, ``--n-jobs``), and ``python supervisor.py CONFIG --run-once`` as a
subprocess, exactly as an operator runs it.

Measured:

* **wall** — spawn to exit of the CLI process (interpreter start-up and imports included);
* **CPU** — user + system CPU seconds of the CLI and every descendant it reaped (the pool's
  workers), from ``os.wait4``: less sensitive than wall time to other load on the machine;
* **steps** — ``duration_s`` of each step in the cycle summary the CLI writes to
  ``state/supervisor.json`` (``last_cycle``), and their sum (**cycle**);
* **peak RSS, CLI** — ``ru_maxrss`` from ``os.wait4`` of the CLI process. On Linux this is the
  largest RSS any ONE process of the CLI's tree reached (the CLI itself or a reaped loky worker),
  not a sum;
* **peak RSS, tree** — the largest SUM of RSS over the CLI process and all its descendants (loky
  workers or dask worker processes), sampled every 20 ms with psutil. RSS counts shared pages
  (libraries, copy-on-write, the memory-mapped job arguments in ``/dev/shm``) once per process,
  so this over-states the real footprint;
* **peak PSS, tree** — the same sum with PSS (proportional set size: a page shared by k processes
  counts 1/k in each), sampled every 100 ms: the honest footprint of the tree.

``--root DIR`` runs ``DIR/supervisor.py`` with ``DIR`` first on ``PYTHONPATH`` (e.g. an export of
an older commit, ``git archive HEAD | tar -x -C DIR``), for before/after figures.

Each N runs ``--repeats`` times; the table shows medians (and the range). Targets, printed as
PASS/MISS and never asserted: the 500-symbol cycle within 60 s (wall) on 2 cores, peak RSS within
2 GiB (tree sum); issue #18's CPU goals at 2,520 bars: <= 15 CPU-s at N = 100 and <= 60 CPU-s at
N = 500 (:data:`TARGET_CPU_S`, printed for those N only).

``--profile STEP`` (``train`` or ``backtest``) additionally runs that step's core work in THIS
process under cProfile at the largest N (the same functions the actor hands to the pool, with
``mapper`` = sequential so the fold fits appear in the profile) and prints the top functions;
``--repeats 0 --profile backtest`` profiles without timing cycles.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aistock_actors.core.data.sample_data import generate_universe, write_universe_csvs  # noqa: E402

TARGET_WALL_S = 60.0
TARGET_CPU_S = {100: 15.0, 500: 60.0}
"""Issue #18's CPU-second goals for a cycle at N x 2,520 bars (median of the runs)."""
TARGET_RSS_BYTES = 2 * 1024**3
STEPS = ("ingest", "train", "backtest", "judge", "risk", "trade")


@dataclass
class Run:
    wall: float
    steps: dict[str, float]
    statuses: dict[str, str]
    outcome: str
    verdict: str | None
    maxrss: int
    """bytes, ru_maxrss of the CLI's tree (largest single process)."""
    tree_peak: int
    """bytes, largest sampled RSS sum over the tree."""
    tree_pss: int
    """bytes, largest sampled PSS sum over the tree (shared pages split between processes)."""
    workers_seen: int
    cpu: float
    """seconds of CPU (user + system) of the CLI and its reaped descendants (``os.wait4``)."""


@dataclass
class Sampler:
    """Samples the RSS sum of a process tree every ``interval`` seconds in a thread."""

    pid: int
    interval: float = 0.02
    pss_every: int = 5
    peak: int = 0
    peak_pss: int = 0
    pids: set[int] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        tick = 0
        while not self._stop.is_set():
            total = pss = 0
            with_pss = tick % self.pss_every == 0
            tick += 1
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for proc in procs:
                try:
                    if with_pss:
                        full = proc.memory_full_info()
                        total += full.rss
                        pss += full.pss
                    else:
                        total += proc.memory_info().rss
                    self.pids.add(proc.pid)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
            self.peak = max(self.peak, total)
            self.peak_pss = max(self.peak_pss, pss)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()


def write_config(work: Path, data: Path, backend: str, n_jobs: int) -> Path:
    config: dict[str, Any] = {
        "mode": "headless",
        "state_dir": str(work / "state"),
        "models_dir": str(work / "models"),
        "data": {"csv_dir": str(data)},
        "parallel": {"backend": backend, "n_jobs": n_jobs},
    }
    path = work / "config.json"
    path.write_text(json.dumps(config))
    return path


def run_cycle(
    work: Path, data: Path, backend: str, n_jobs: int, timeout: float, root: Path = ROOT
) -> Run:
    for name in ("state", "models"):
        shutil.rmtree(work / name, ignore_errors=True)
    for head in work.glob("audit-head-*.json"):  # a new state/ starts a new anchored chain
        head.unlink()
    config = write_config(work, data, backend, n_jobs)
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if root != ROOT:  # another checkout of the code (e.g. `git archive HEAD`): import it first
        env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(":")
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(root / "supervisor.py"), str(config), "--run-once",
         "--log-level", "WARNING"],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    sampler = Sampler(proc.pid)
    thread = sampler.start()
    out_chunks: list[bytes] = []
    reader = threading.Thread(
        target=lambda: out_chunks.append(proc.stdout.read() if proc.stdout else b""), daemon=True
    )
    reader.start()
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.01)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    sampler.stop()
    thread.join(5)
    reader.join(5)
    state = json.loads((work / "state" / "supervisor.json").read_text())
    cycle = state["last_cycle"]
    steps = {s["name"]: float(s["duration_s"]) for s in cycle["steps"]}
    statuses = {s["name"]: s["status"] for s in cycle["steps"]}
    judge = next((s for s in cycle["steps"] if s["name"] == "judge"), None)
    verdict = judge["data"].get("status") if judge and judge["status"] == "ok" else None
    if cycle["outcome"] != "succeeded":
        print(b"".join(out_chunks).decode(errors="replace")[-3000:], file=sys.stderr)
    return Run(
        wall=wall,
        steps=steps,
        statuses=statuses,
        outcome=cycle["outcome"],
        verdict=verdict,
        maxrss=usage.ru_maxrss * 1024,
        tree_peak=sampler.peak,
        tree_pss=sampler.peak_pss,
        workers_seen=len(sampler.pids) - 1,
        cpu=usage.ru_utime + usage.ru_stime,
    )


def median(values: list[float]) -> float:
    return statistics.median(values)


def fmt_range(values: list[float], digits: int = 1) -> str:
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def gib(n: float) -> str:
    return f"{n / 1024**3:.2f} GiB" if n >= 1024**3 else f"{n / 1024**2:.0f} MiB"


def profile_step(step: str, data_dir: Path, top: int) -> None:
    """cProfile the core work of ``step`` in this process on the bars in ``data_dir``."""
    from aistock_actors.config import Config, LoadedConfig
    from aistock_actors.core.model import pipeline
    from aistock_actors.services import pipeline_params as lifecycle
    from aistock_actors.store.bars import BarStore
    from aistock_actors.store.ingest import ingest_directory

    with tempfile.TemporaryDirectory(prefix="bench-cycle-prof-") as tmp:
        loaded = LoadedConfig(config=Config(), path=Path(tmp) / "c.json", base_dir=Path(tmp))
        store = BarStore(Path(tmp) / "bars")
        t0 = time.perf_counter()
        ingest_directory(data_dir, store)
        print(f"(profile set-up: ingest {time.perf_counter() - t0:.2f}s)")
        cfg = loaded.config
        params = lifecycle.model_params(cfg)
        profiler = cProfile.Profile()
        t0 = time.perf_counter()
        profiler.enable()
        frames = lifecycle.load_frames(loaded, store)
        if step == "train":
            pipeline.train_candidate(frames, params, 0, "m-prof", datetime.now(UTC))
        else:
            pipeline.walk_forward_backtest(
                frames,
                model_id="m-prof",
                params=params,
                seed=0,
                spec=lifecycle.simulation_spec(cfg),
                sizing=lifecycle.sizing(cfg),
            )
        profiler.disable()
        print(f"\n## cProfile of the {step} step's core work (one process): "
              f"{time.perf_counter() - t0:.2f}s under the profiler")
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).sort_stats("cumulative").print_stats(top)
        print(buffer.getvalue())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, nargs="+", default=[10, 100, 500])
    parser.add_argument("--bars", type=int, default=2520)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backend", choices=["loky", "dask", "inline"], default="loky")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=900.0, help="per run, seconds")
    parser.add_argument("--profile", choices=["train", "backtest"], default=None)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="run the CLI of another checkout (before/after comparisons)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, a few seconds (overrides the size flags): "
                        "the bench still runs (tests/bench/test_bench_commands.py)")
    args = parser.parse_args()
    if args.smoke:
        args.symbols, args.bars, args.repeats, args.timeout = [4], 300, 1, 120.0

    print(f"# bench_cycle — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
          f"{platform.python_version()}; load average at start "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"backend={args.backend} n_jobs={args.n_jobs} bars={args.bars} "
          f"repeats={args.repeats} code={args.root.resolve()}\n")
    root = Path(tempfile.mkdtemp(prefix="bench-cycle-"))
    results: dict[int, list[Run]] = {}
    loads: dict[int, list[float]] = {}
    try:
        for n in args.symbols:
            data = root / f"data-{n}"
            t0 = time.perf_counter()
            write_universe_csvs(data, generate_universe(n, args.bars, seed=42))
            print(f"N={n}: generated {n} x {args.bars} bars in {time.perf_counter() - t0:.1f}s")
            work = root / f"work-{n}"
            work.mkdir()
            results[n] = []
            loads[n] = []
            for i in range(args.repeats):
                run = run_cycle(work, data, args.backend, args.n_jobs, args.timeout,
                                args.root.resolve())
                loads[n].append(os.getloadavg()[0])
                results[n].append(run)
                steps = " ".join(f"{k}={v:.2f}" for k, v in run.steps.items())
                print(f"  run {i + 1}: wall {run.wall:.2f}s cpu {run.cpu:.1f}s "
                      f"outcome={run.outcome} "
                      f"verdict={run.verdict} maxrss={gib(run.maxrss)} "
                      f"tree={gib(run.tree_peak)} pss={gib(run.tree_pss)} "
                      f"procs={run.workers_seen} | {steps}")
                bad = {k: v for k, v in run.statuses.items() if v not in ("ok", "skipped")}
                if bad:
                    print(f"    step statuses: {bad}")
        if args.repeats > 0:
            report(results, loads)
        if args.profile:
            profile_step(args.profile, root / f"data-{max(args.symbols)}", args.top)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def report(results: dict[int, list[Run]], loads: dict[int, list[float]]) -> None:
    print("\n## Median of the runs (range in brackets)\n")
    header = ("| N | wall s | CPU s | cycle s | " + " | ".join(STEPS)
              + " | peak RSS CLI | peak RSS tree | peak PSS tree |")
    print(header)
    print("|---:" * (len(STEPS) + 7) + "|")
    for n, runs in results.items():
        walls = [r.wall for r in runs]
        cycles = [sum(r.steps.values()) for r in runs]
        cells = [f"{median([r.steps.get(s, 0.0) for r in runs]):.2f}" for s in STEPS]
        cpus = [r.cpu for r in runs]
        print(f"| {n} | {median(walls):.1f} ({fmt_range(walls)}) | {median(cpus):.1f} "
              f"({fmt_range(cpus)}) | "
              f"{median(cycles):.1f} | "
              + " | ".join(cells)
              + f" | {gib(median([r.maxrss for r in runs]))} | "
              f"{gib(median([r.tree_peak for r in runs]))} | "
              f"{gib(median([r.tree_pss for r in runs]))} |")
    print()
    for n, runs in results.items():
        verdicts = sorted({str(r.verdict) for r in runs})
        print(f"N={n}: outcomes {sorted({r.outcome for r in runs})}, verdicts {verdicts}, "
              f"load average (1 min) after the runs {fmt_range(loads[n], 2)}")
    for n, runs in results.items():
        goal = TARGET_CPU_S.get(n)
        if goal is not None:
            cpu = median([r.cpu for r in runs])
            print(f"CPU goal at N={n} (issue #18): {cpu:.1f} CPU-s <= {goal:.0f} -> "
                  f"{'PASS' if cpu <= goal else 'MISS'}")
    biggest = max(results)
    runs = results[biggest]
    wall = median([r.wall for r in runs])
    rss = median([r.tree_peak for r in runs])
    pss = median([r.tree_pss for r in runs])
    print(f"\nTargets at N={biggest}:")
    print(f"  cycle wall time {wall:.1f}s <= {TARGET_WALL_S:.0f}s -> "
          f"{'PASS' if wall <= TARGET_WALL_S else 'MISS'}")
    print(f"  peak RSS (tree sum) {gib(rss)} <= 2 GiB -> "
          f"{'PASS' if rss <= TARGET_RSS_BYTES else 'MISS'}")
    print(f"  peak PSS (tree sum) {gib(pss)} <= 2 GiB -> "
          f"{'PASS' if pss <= TARGET_RSS_BYTES else 'MISS'}")


if __name__ == "__main__":
    sys.exit(main())
