"""A long-lived autopilot's cost stays flat: RSS and the judge step from cycle 100 to 1,000.

    .venv/bin/python bench/bench_history.py [--cycles 1000] [--symbols 5] [--bars 600]
        [--window 20] [--workdir DIR]

Runs ``--cycles`` cycles of the production wiring (``runtime/child_specs.default_specs``; the
reliability tests' small lifecycle: inline backend, horizon 1, at most 400 bars trained on) back
to back in one process, as a daemon with a zero interval would, on ``--symbols`` planted-pattern
series of ``--bars`` bars to begin with: before every cycle one new bar is appended to every CSV
(as a live feed does) and ``training.retrain_every_bars`` is 1, so every cycle trains, judges
(one more promotion verdict: the history the issue measured growing without bound) and trades
(one more equity point, fills). At
checkpoints (cycle 100, then every 10 % of the run) it prints the process's RSS, the median
judge-step time of the ``--window`` cycles before the checkpoint, the manifest's entries and
bytes, the archive files and the alert files; then the ratios cycle 1,000 / cycle 100 against
the target (flat: judge time within 2x, RSS growth under 10 %), with CPU-seconds, wall and the
load average (``os.getloadavg``) at start and end.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from _support.fault_harness import SMALL_LIFECYCLE, proc_status  # noqa: E402
from _support.lifecycle_support import planted_frames  # noqa: E402
from _support.support import write_config  # noqa: E402

from aistock_actors.config import load_config  # noqa: E402
from aistock_actors.core.data.sample_data import (  # noqa: E402
    append_universe_bar,
    write_universe_csvs,
)
from aistock_actors.runtime.child_specs import default_specs  # noqa: E402
from aistock_actors.runtime.supervisor import Supervisor  # noqa: E402

JUDGE_RATIO_TARGET = 2.0
RSS_GROWTH_TARGET = 0.10


def checkpoints(cycles: int) -> list[int]:
    """Cycle 100 (or a tenth of a short run) and then every tenth of the run."""
    first = min(100, max(2, cycles // 10))
    step = max(1, cycles // 10)
    marks = sorted({first, *range(step, cycles + 1, step), cycles})
    return [m for m in marks if m >= first]


def files(folder: Path, pattern: str) -> int:
    return sum(1 for _ in folder.rglob(pattern)) if folder.is_dir() else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--symbols", type=int, default=5)
    parser.add_argument("--bars", type=int, default=600)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true",
                        help="12 cycles on 3 x 300 bars (overrides the size flags): the bench "
                        "still runs (tests/bench/test_bench_commands.py)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.cycles, args.symbols, args.bars, args.window = 12, 3, 300, 3
    logging.basicConfig(level=logging.CRITICAL + 1)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="history-"))
    work.mkdir(parents=True, exist_ok=True)
    frames = planted_frames(n_symbols=args.symbols, n_bars=args.bars + args.cycles)
    write_universe_csvs(work / "data", {s: f.iloc[: args.bars] for s, f in frames.items()})
    every_cycle = {**SMALL_LIFECYCLE["training"], "retrain_every_bars": 1}
    config = write_config(work, **{**SMALL_LIFECYCLE, "training": every_cycle})
    print(f"{args.cycles} cycles on {args.symbols} x {args.bars} bars in {work}")
    load_start = os.getloadavg()
    wall0, cpu0 = time.monotonic(), time.process_time()
    sup = Supervisor(load_config(config), default_specs())
    sup.start()
    judge: list[float] = []
    rows: list[tuple[int, float, float, int, int, int, int]] = []
    marks = checkpoints(args.cycles)
    promotion = work / "state" / "promotion"
    try:
        for cycle in range(1, args.cycles + 1):
            append_universe_bar(work / "data", frames, args.bars + cycle - 1)
            summary = sup.run_once()
            if summary is None:
                print(f"cycle {cycle}: refused (halted: {sup.halt})")
                return 1
            judge.extend(s.duration_s for s in summary.steps if s.name == "judge")
            if cycle in marks:
                manifest = promotion / "manifest.json"
                rows.append((
                    cycle,
                    proc_status()["VmRSS"] / 1024,
                    statistics.median(judge[-args.window:]) * 1000,
                    manifest.read_text().count('"id":') if manifest.exists() else 0,
                    manifest.stat().st_size if manifest.exists() else 0,
                    files(promotion / "archive", "manifest-*.json"),
                    files(work / "state" / "alerts", "*.json"),
                ))
    finally:
        sup.stop()
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    print("| cycle | RSS MiB | judge ms (median) | manifest entries | manifest kB | archives |"
          " alert files |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for cycle, rss, ms, entries, size, archives, alerts in rows:
        print(f"| {cycle} | {rss:.1f} | {ms:.1f} | {entries} | {size / 1024:.1f} | {archives} |"
              f" {alerts} |")
    first, last = rows[0], rows[-1]
    judge_ratio = last[2] / first[2] if first[2] > 0 else float("inf")
    rss_growth = (last[1] - first[1]) / first[1]
    print(f"wall {wall:.1f} s, CPU {cpu:.1f} s, load {load_start[0]:.2f} -> "
          f"{os.getloadavg()[0]:.2f}")
    verdict = "PASS" if judge_ratio <= JUDGE_RATIO_TARGET else "MISS"
    print(f"judge time cycle {last[0]} / cycle {first[0]} = {judge_ratio:.2f}x "
          f"(target <= {JUDGE_RATIO_TARGET:g}x) -> {verdict}")
    verdict = "PASS" if rss_growth <= RSS_GROWTH_TARGET else "MISS"
    print(f"RSS growth cycle {first[0]} -> {last[0]} = {rss_growth * 100:+.1f} % "
          f"(target <= {RSS_GROWTH_TARGET * 100:g} %) -> {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
