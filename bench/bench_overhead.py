"""Supervisor overhead: one cycle through the actors vs the same work called directly.

Run from the repository root::

    .venv/bin/python bench/bench_overhead.py [--symbols 100] [--bars 2520] [--repeats 5]

Data: ``generate_universe(--symbols, --bars, seed=42)`` written as CSVs once. Each run starts
from an empty state and models folder and does one whole cycle, in two ways, alternately (A, B,
A, B, ...) so both see the same machine load:

* **actors** — ``Supervisor(load_config(cfg), default_specs())``: ``start()`` (8 actor threads,
  the network loop), ``run_once()``, ``stop()``; exactly what ``supervisor.py --run-once`` does
  after its imports.
* **direct** — the same work in the calling thread, no supervisor, no pykka, no messages:
  ingest = ``store.ingest.ingest_directory``; train = ``lifecycle.load_frames`` +
  ``pipeline.train_candidate`` in this thread with its fits in the same loky pool (as the
  Trainer does: ``deadline_mapper``, training set handed over to the backtest) +
  ``ModelStore.put``; backtest =
  ``ModelStore.load`` + ``pipeline.walk_forward_backtest`` with the same pool mapper; judge, risk
  and trade = the PromotionJudge's, RiskGovernor's and PaperTrader's own step methods called in
  this thread (``load_state`` + ``handle``), because those steps ARE their glue around
  ``core/`` (sub-second; rewriting them here would measure a different program).

Both use the process-wide loky pool with the same ``parallel.n_jobs``; one untimed warm-up of
each comes first so both see warm workers. Measured per run: wall time (``perf_counter``) and CPU
time of this process + the pool's workers (``psutil``). Overhead = median(actors) /
median(direct) - 1. Target (printed, not asserted): within 5 %. Last, the fixed cost of the
actor path alone: ``Supervisor(...)``, ``start()`` and ``stop()`` with no cycle in between.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aistock_actors.actors.backtester import _completed  # noqa: E402
from aistock_actors.actors.base import ActorContext, SupervisedActor  # noqa: E402
from aistock_actors.actors.paper_trader import PaperTrader  # noqa: E402
from aistock_actors.actors.promotion_judge import PromotionJudge  # noqa: E402
from aistock_actors.actors.risk_governor import RiskGovernor  # noqa: E402
from aistock_actors.config import LoadedConfig, load_config  # noqa: E402
from aistock_actors.core.data.sample_data import generate_universe, write_universe_csvs  # noqa: E402
from aistock_actors.core.model import pipeline  # noqa: E402
from aistock_actors.messages import Message, Reply  # noqa: E402
from aistock_actors.messages.model import BacktestModel, ModelTrained  # noqa: E402
from aistock_actors.messages.promotion import JudgeCandidate  # noqa: E402
from aistock_actors.messages.risk import AssessRisk  # noqa: E402
from aistock_actors.messages.trading import TradePaper  # noqa: E402
from aistock_actors.runtime.child_specs import default_specs  # noqa: E402
from aistock_actors.runtime.handover import HandOver  # noqa: E402
from aistock_actors.runtime.jobs import deadline_mapper, make_mapper  # noqa: E402
from aistock_actors.runtime.supervisor import Supervisor  # noqa: E402
from aistock_actors.services import pipeline_params as lifecycle  # noqa: E402
from aistock_actors.services.strategy_backtest import scored_from_report  # noqa: E402
from aistock_actors.store.alerts import AlertSink  # noqa: E402
from aistock_actors.store.audit import AuditLog  # noqa: E402
from aistock_actors.store.bars import BarStore  # noqa: E402
from aistock_actors.store.ingest import ingest_directory  # noqa: E402
from aistock_actors.store.models import ModelStore  # noqa: E402

TARGET = 0.05


@dataclass
class Sample:
    wall: float
    cpu: float
    steps: dict[str, float]
    outcome: str


def write_config(work: Path, data: Path, n_jobs: int) -> Path:
    config: dict[str, Any] = {
        "mode": "headless",
        "state_dir": str(work / "state"),
        "models_dir": str(work / "models"),
        "data": {"csv_dir": str(data)},
        "parallel": {"backend": "loky", "n_jobs": n_jobs},
    }
    path = work / "config.json"
    path.write_text(json.dumps(config))
    return path


def fresh(work: Path) -> None:
    for name in ("state", "models"):
        shutil.rmtree(work / name, ignore_errors=True)
    for head in work.glob("audit-head-*.json"):  # a new state/ starts a new anchored chain
        head.unlink()


def tree_cpu() -> float:
    """CPU seconds of this process and its live children (the loky workers)."""
    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue
    return total


def timed(fn: Callable[[], tuple[dict[str, float], str]]) -> Sample:
    cpu0 = tree_cpu()
    t0 = time.perf_counter()
    steps, outcome = fn()
    wall = time.perf_counter() - t0
    return Sample(wall=wall, cpu=tree_cpu() - cpu0, steps=steps, outcome=outcome)


def via_actors(config: Path) -> tuple[dict[str, float], str]:
    sup = Supervisor(load_config(config), default_specs())
    sup.start()
    try:
        summary = sup.run_once()
    finally:
        sup.stop()
    assert summary is not None
    return {s.name: s.duration_s for s in summary.steps}, summary.outcome


class _Inbox:
    """Stands in for the supervisor's inbox of an actor used in-thread (replies are returned)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def __call__(self, message: Message) -> None:
        self.messages.append(message)


def _in_thread(cls: type[SupervisedActor], loaded: LoadedConfig, audit: AuditLog,
               alerts: AlertSink) -> SupervisedActor:
    ctx = ActorContext(name=cls.child_name, generation=1, report=_Inbox(),
                       halt_flag=threading.Event(), config=loaded, audit=audit, alerts=alerts)
    actor = cls(ctx)  # constructing a pykka actor starts no thread
    actor.load_state()
    return actor


def direct(config: Path) -> tuple[dict[str, float], str]:
    loaded = load_config(config)
    cfg = loaded.config
    state = loaded.state_dir
    state.mkdir(parents=True, exist_ok=True)
    audit = AuditLog(state / "audit" / "log.jsonl")
    alerts = AlertSink(state / "alerts")
    runner = lifecycle.job_runner(cfg)
    steps: dict[str, float] = {}
    cycle = "c-direct"

    t = time.perf_counter()
    bars = BarStore(state / "bars")
    ingest_directory(loaded.csv_dir, bars)
    steps["ingest"] = time.perf_counter() - t

    t = time.perf_counter()
    models = ModelStore(loaded.models_dir, alerts)
    hand_over = HandOver()  # the supervisor's one, as the Trainer and Backtester share it
    params = lifecycle.model_params(cfg)
    frames = lifecycle.load_frames(loaded, bars)
    start, end = pipeline.window_bounds(frames)
    model = pipeline.train_candidate(
        frames, params, cfg.training.seed, f"m-{cycle}", datetime.now(UTC),
        mapper=deadline_mapper(runner, lifecycle.job_budget(cfg, "train")), hand_over=hand_over)
    record = models.put(model, {"data_start": start, "data_end": end, "symbols": sorted(frames),
                                "seed": cfg.training.seed})
    trained = ModelTrained(request_id="train", model_id=record.model_id, sha256=record.sha256,
                           train_accuracy=model.train_accuracy, test_accuracy=model.test_accuracy,
                           threshold=model.confidence_threshold,
                           samples=int(model.metrics.get("n_samples", 0.0)), symbols=len(frames),
                           data_start=start, data_end=end)
    del frames
    steps["train"] = time.perf_counter() - t

    t = time.perf_counter()
    candidate = models.load(trained.model_id)
    frames = lifecycle.load_frames(loaded, bars)
    report = pipeline.walk_forward_backtest(
        frames, model_id=candidate.model_id, params=candidate.params, seed=cfg.training.seed,
        spec=lifecycle.simulation_spec(cfg), sizing=lifecycle.sizing(cfg), incumbent=None,
        mapper=make_mapper(runner, lifecycle.job_budget(cfg, "backtest")), hand_over=hand_over)
    backtest = _completed(BacktestModel(request_id="backtest", candidate=trained),
                          scored_from_report(report, None), 1)
    del frames
    steps["backtest"] = time.perf_counter() - t

    replies: dict[str, Reply] = {}
    for name, cls, request in (
        ("judge", PromotionJudge,
         JudgeCandidate(request_id="judge", trained=trained, backtest=backtest)),
        ("risk", RiskGovernor, AssessRisk(request_id="risk", cycle_id=cycle)),
        ("trade", PaperTrader, TradePaper(request_id="trade", cycle_id=cycle)),
    ):
        t = time.perf_counter()
        actor = _in_thread(cls, loaded, audit, alerts)
        replies[name] = actor.handle(request)
        steps[name] = time.perf_counter() - t
    runner.close()
    failed = [n for n, r in replies.items() if type(r).__name__ == "StepFailed"]
    return steps, "failed" if failed else "succeeded"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--bars", type=int, default=2520)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, a few seconds (overrides the size flags): "
                        "the bench still runs (tests/bench/test_bench_commands.py)")
    args = parser.parse_args()
    if args.smoke:
        args.symbols, args.bars, args.repeats = 3, 600, 1

    print(f"# bench_overhead — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
          f"{platform.python_version()}; load average at start "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    root = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    try:
        data = root / "data"
        write_universe_csvs(data, generate_universe(args.symbols, args.bars, seed=42))
        works = {"actors": root / "actors", "direct": root / "direct"}
        configs = {}
        for name, work in works.items():
            work.mkdir()
            configs[name] = write_config(work, data, args.n_jobs)
        paths: dict[str, Callable[[Path], tuple[dict[str, float], str]]] = {
            "actors": via_actors, "direct": direct}
        print(f"{args.symbols} symbols x {args.bars} bars, n_jobs={args.n_jobs}; warm-up ...")
        for name, fn in paths.items():
            fresh(works[name])
            fn(configs[name])
        samples: dict[str, list[Sample]] = {"actors": [], "direct": []}
        loads: list[float] = []
        for i in range(args.repeats):
            order = ("actors", "direct") if i % 2 == 0 else ("direct", "actors")
            for name in order:
                fresh(works[name])
                sample = timed(lambda name=name: paths[name](configs[name]))
                samples[name].append(sample)
                loads.append(os.getloadavg()[0])
                steps = " ".join(f"{k}={v:.2f}" for k, v in sample.steps.items())
                print(f"  run {i + 1} {name:<6} wall {sample.wall:7.2f}s cpu {sample.cpu:7.2f}s "
                      f"{sample.outcome} | {steps}")
        report(samples, loads)
        fixed = []
        for _ in range(args.repeats):
            fresh(works["actors"])
            t0 = time.perf_counter()
            sup = Supervisor(load_config(configs["actors"]), default_specs())
            sup.start()
            sup.stop()
            fixed.append(time.perf_counter() - t0)
        share = statistics.median(fixed) / statistics.median(s.wall for s in samples["direct"])
        print(f"fixed cost of the actor path (Supervisor() + start() + stop(), no cycle): median "
              f"{statistics.median(fixed):.3f}s ({min(fixed):.3f}-{max(fixed):.3f}s) = "
              f"{share:.1%} of the direct cycle")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def report(samples: dict[str, list[Sample]], loads: list[float]) -> None:
    med = {name: (statistics.median(s.wall for s in rows), statistics.median(s.cpu for s in rows))
           for name, rows in samples.items()}
    print("\n| path | median wall s | range | median CPU s (process + pool workers) |")
    print("|---|---:|---:|---:|")
    for name, rows in samples.items():
        walls = [s.wall for s in rows]
        print(f"| {name} | {med[name][0]:.2f} | {min(walls):.2f}-{max(walls):.2f} | "
              f"{med[name][1]:.2f} |")
    steps = sorted({k for rows in samples.values() for s in rows for k in s.steps})
    print("\n| step | actors (median s) | direct (median s) |")
    print("|---|---:|---:|")
    for step in steps:
        a = statistics.median(s.steps.get(step, 0.0) for s in samples["actors"])
        d = statistics.median(s.steps.get(step, 0.0) for s in samples["direct"])
        print(f"| {step} | {a:.3f} | {d:.3f} |")
    wall = med["actors"][0] / med["direct"][0] - 1
    cpu = med["actors"][1] / med["direct"][1] - 1
    pairs = [a.wall / d.wall - 1 for a, d in zip(samples["actors"], samples["direct"], strict=True)]
    print(f"\nload average (1 min) during the runs {min(loads):.2f}-{max(loads):.2f}")
    print(f"overhead, wall: {wall:+.1%} (per pair: {', '.join(f'{p:+.1%}' for p in pairs)}); "
          f"CPU: {cpu:+.1%}")
    print(f"target: within {TARGET:.0%} -> wall {'PASS' if wall <= TARGET else 'MISS'}, "
          f"CPU {'PASS' if cpu <= TARGET else 'MISS'}")


if __name__ == "__main__":
    sys.exit(main())
