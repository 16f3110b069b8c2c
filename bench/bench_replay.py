"""Market replay: the demo replay's wall time, the no-training cycle at 20 and 500 symbols, and
the peak RSS of the replay every 250 steps.

Run from the repository root::

    .venv/bin/python bench/bench_replay.py [--symbols 20 500] [--demo-symbols 20] \
        [--demo-bars 1500] [--no-demo] [--strategy NAME] [--keep] [--smoke]

Both parts run ``python supervisor.py CONFIG --replay`` as a subprocess, exactly as
``./demo.sh`` and an operator do, and read what they measure from the files it leaves:

* **demo replay** — ``./demo.sh``'s data (``generate_universe(20, 1500, seed=7)``) and
  ``configs/demo.json`` (product defaults: a candidate every 21 bars; paths moved to a temporary
  folder). Wall and CPU (``os.wait4``: the CLI and every pool worker it reaped), the steps, and
  the wall time split between the cycles that trained a candidate and the others (from the
  audit log: each cycle's end time, and the cycles with a ``model_trained`` record). The RSS
  summed over the process tree is sampled every 0.2 s with psutil; its peak is reported for
  every 250 steps (``state/replay.json`` says which step the replay is at).
* **no-training cycle at N symbols** (in this process, the same code as ``--replay``: its plan,
  its supervisor, its loop; only the interpreter start is not counted) —
  ``generate_universe(N, 560, seed=42)`` and the demo
  config with ``training.retrain_every_bars`` above the replay's length: the first step trains
  once, every later one does not. The promotion gate is opened IN THIS BENCH ONLY (three stages,
  ``min_sharpe`` -10 and the like), so that a model is active and every later step paper-trades
  it, which is the cycle a replay runs 20 times out of 21. Each cycle's wall time (and each of
  its steps' from the cycle summary); median and p90 of the non-training ones. ``--strategy
  NAME`` makes ``NAME`` (e.g. ``autocorrelation``, the demo's promoted rule) the only candidate,
  so the active model is that strategy and the trade step runs it (issue #13).

Targets, printed as PASS/MISS and never asserted: the demo replay within 3 minutes on 2 cores;
a no-training cycle within 25 ms (median) at 20 symbols and 150 ms at 500.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aistock_actors.config import strip_json_comments  # noqa: E402
from aistock_actors.core.data.sample_data import generate_universe, write_universe_csvs  # noqa: E402

TARGET_DEMO_S = 180.0
TARGET_CYCLE_MS = {20: 25.0, 500: 150.0}
RSS_WINDOW = 250
OPEN_GATE = {  # this bench only: a model must be active for the trade step to do its work
    "min_sharpe": -10.0, "max_drawdown": 1.0, "min_win_rate": 0.0, "alt_min_sharpe": -10.0,
    "min_accuracy_ratio": 0.0, "min_return_over_drawdown": 0.0, "min_trades": 0,
    "max_transition_drawdown": 1.0, "min_deflated_sharpe": 0.0, "max_plausible_sharpe": 1e9,
    "max_plausible_win_rate": 1.0,
}


@dataclass
class Run:
    """One ``--replay`` subprocess."""

    wall: float = 0.0
    cpu: float = 0.0
    code: int = 0
    rss_by_window: dict[int, int] = field(default_factory=dict)
    """Peak RSS (bytes, tree sum) per 250-step window (0: steps 1-250, ...)."""


def demo_config(tmp: Path, **sections: Any) -> Path:
    """``configs/demo.json`` with its paths under ``tmp`` and ``sections`` merged in."""
    raw = json.loads(strip_json_comments((ROOT / "configs" / "demo.json").read_text()))
    raw.update(state_dir=str(tmp / "state"), models_dir=str(tmp / "models"))
    raw["data"] = {**raw.get("data", {}), "csv_dir": str(tmp / "data")}
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    path = tmp / "config.json"
    path.write_text(json.dumps(raw))
    return path


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        tree = [proc, *proc.children(recursive=True)]
    except psutil.Error:  # the replay just ended
        return 0
    for p in tree:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total


def _steps_done(tmp: Path) -> int:
    try:
        return int(json.loads((tmp / "state" / "replay.json").read_text())["steps_done"])
    except (OSError, ValueError, KeyError):
        return 0


def replay(tmp: Path, config: Path) -> Run:
    """Run ``--replay`` to its end; wall, CPU (``os.wait4``), tree RSS per 250 steps."""
    run = Run()
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(ROOT / "supervisor.py"), str(config), "--replay"],
                            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watched = psutil.Process(proc.pid)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            window = max(_steps_done(tmp) - 1, 0) // RSS_WINDOW
            rss = _tree_rss(watched)
            run.rss_by_window[window] = max(run.rss_by_window.get(window, 0), rss)
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    run.wall = time.monotonic() - started
    done.set()
    sampler.join()
    run.cpu = usage.ru_utime + usage.ru_stime
    run.code = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if run.code != 0:
        print(f"  replay exited {run.code}: {err.strip()[-800:]}")
    return run


def step_times(tmp: Path) -> tuple[list[float], list[float]]:
    """Wall seconds of each replay step after the first, split into (trained, did not), from
    the audit log's cycle-end records and the cycles that trained a candidate."""
    ends: list[tuple[str, float]] = []
    trained: set[str] = set()
    for line in (tmp / "state" / "audit" / "log.jsonl").read_text().splitlines():
        record = json.loads(line)
        cycle = record.get("details", {}).get("cycle_id")
        if record["action"] in ("cycle_succeeded", "autopilot_failed", "cycle_degraded"):
            when = datetime.fromisoformat(record["ts"].replace("Z", "+00:00")).timestamp()
            ends.append((str(cycle), when))
        elif record["action"] == "model_trained":
            trained.add(f"c{str(record['details']['model_id']).split('-c', 1)[1]}")
    training, other = [], []
    for (_, before), (cycle, after) in itertools.pairwise(ends):
        (training if cycle in trained else other).append(after - before)
    return training, other


def demo(symbols: int, bars: int, keep: bool) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-replay-demo-"))
    try:
        write_universe_csvs(tmp / "data", generate_universe(symbols, bars, seed=7))
        config = demo_config(tmp)
        print(f"demo replay: {symbols} symbols x {bars} bars, configs/demo.json (a candidate "
              "every 21 bars)")
        run = replay(tmp, config)
        state = json.loads((tmp / "state" / "replay.json").read_text())
        training, other = step_times(tmp)
        median_ms = statistics.median(other) * 1000 if other else float("nan")
        print(f"  wall {run.wall:.1f} s, CPU {run.cpu:.1f} s, {state['steps_done']} steps: "
              f"{len(training)} trained ({sum(training):.1f} s), {len(other)} did not "
              f"({sum(other):.1f} s, median {median_ms:.1f} ms)")
        summary = state.get("summary") or {}
        print(f"  {summary.get('candidates', 0)} candidates, "
              f"{len(summary.get('promotions', []))} promotion(s)")
        windows = " | ".join(
            f"{w * RSS_WINDOW + 1}-{(w + 1) * RSS_WINDOW}: {rss / 2**20:.0f} MiB"
            for w, rss in sorted(run.rss_by_window.items()))
        print(f"  peak RSS (process tree) per {RSS_WINDOW} steps: {windows}")
        verdict = "PASS" if run.wall <= TARGET_DEMO_S and run.code == 0 else "MISS"
        print(f"target: demo replay wall {run.wall:.1f} s <= {TARGET_DEMO_S:.0f} s -> {verdict}")
    finally:
        if keep:
            print(f"  kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def no_training_cycle(symbols: int, bars: int, keep: bool, strategy: str | None = None) -> None:
    """In this process, the same code as ``--replay`` (plan, supervisor, the replay loop), so
    each cycle's summary gives the time of every step too."""
    from aistock_actors.cli.runs import _start_supervisor
    from aistock_actors.config import load_config
    from aistock_actors.runtime import replay as replay_runtime
    from aistock_actors.runtime.clock import SystemClock, iso_utc
    from aistock_actors.runtime.logs import setup_logging
    from aistock_actors.store.atomic import sync_to_disk

    setup_logging("ERROR", "text")  # as --replay: a cycle per bar would flood the terminal
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-replay-{symbols}-"))
    try:
        write_universe_csvs(tmp / "data", generate_universe(symbols, bars, seed=42))
        training: dict[str, Any] = {"retrain_every_bars": 100_000}
        if strategy is not None:  # the only candidate: the active model is this strategy
            training["candidates"] = [strategy]
        config = demo_config(tmp, training=training, promotion=OPEN_GATE,
                             headless={"promotion_validation_stages": 3})
        loaded = load_config(config)
        clock = SystemClock()
        window = replay_runtime.plan(loaded, None, None)
        state = replay_runtime.prepare(loaded, window, start_given=False,
                                       wall_now=iso_utc(clock.now()))
        sync_to_disk(False)
        supervisor = _start_supervisor(loaded, threading.Event(), clock)
        steps: dict[str, list[float]] = {}
        walls: list[float] = []
        run_once = supervisor.run_once

        def timed() -> Any:
            began = time.monotonic()
            summary = run_once()
            walls.append(time.monotonic() - began)
            for step in summary.steps if summary is not None else []:
                steps.setdefault(step.name, []).append(step.duration_s)
            return summary

        supervisor.run_once = timed  # type: ignore[method-assign]
        try:
            replay_runtime.Replay(loaded, window, state, supervisor, clock).run(threading.Event())
        finally:
            supervisor.stop()
            sync_to_disk(True)
        active = (tmp / "state" / "paper" / "ledger.json").exists() and json.loads(
            (tmp / "state" / "paper" / "ledger.json").read_text()).get("model_id")
        other = walls[1:]  # the first step trains
        median = statistics.median(other) * 1000
        p90 = sorted(other)[int(0.9 * (len(other) - 1))] * 1000
        target = TARGET_CYCLE_MS.get(symbols)
        verdict = "no target" if target is None else (
            f"target {target:g} ms: {'PASS' if median <= target else 'MISS'}")
        print(f"no-training cycle, N={symbols}: median {median:.1f} ms, p90 {p90:.1f} ms over "
              f"{len(other)} steps (first step, which trains: {walls[0]:.1f} s; active model: "
              f"{active or 'none'}) -> {verdict}")
        parts = ", ".join(f"{name} {statistics.median(values[1:]) * 1000:.1f}"
                          for name, values in steps.items())
        print(f"  median per step (ms): {parts}")
    finally:
        if keep:
            print(f"  kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, nargs="+", default=[20, 500])
    parser.add_argument("--cycle-bars", type=int, default=560)
    parser.add_argument("--demo-symbols", type=int, default=20)
    parser.add_argument("--demo-bars", type=int, default=1500)
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--strategy", default=None,
                        help="the no-training cycles' only candidate (e.g. autocorrelation)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: the code path only")
    args = parser.parse_args()
    if args.smoke:
        args.symbols, args.cycle_bars, args.demo_symbols, args.demo_bars = [4], 520, 4, 520
    print(f"{os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    if not args.no_demo:
        demo(args.demo_symbols, args.demo_bars, args.keep)
    for n in args.symbols:
        no_training_cycle(n, args.cycle_bars, args.keep, args.strategy)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
