"""Latency of the operator commands ``--status`` and ``--kill`` (a fresh process each time).

Run from the repository root::

    .venv/bin/python bench/bench_status.py [--trials 20] [--symbols 4] [--bars 600] [--smoke]

Set-up: a temp dir with sample CSVs (``generate_universe``) and a config whose paths all live in
it; one ``supervisor.py CONFIG --run-once`` fills the state directory (bars, a model when there is
enough history, the paper ledger, risk limits, audit log, alerts). Then, ``--trials`` times each,
the wall time of a new process running ``supervisor.py CONFIG --status`` (piped: the plain view),
``--status --json`` and ``--kill`` (each ``--kill`` followed, untimed, by ``--unkill``). Python's
own start-up is part of every figure, as for an operator. Prints median / p90 / max per command
and the targets of issue #16 (``--status`` <= 0.5 s, ``--kill`` <= 0.3 s on 2 cores; PASS/MISS,
not asserted), with the figures measured before (8-9 s and 0.7 s). Nothing touches the network.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aistock_actors.core.data.sample_data import (  # noqa: E402
    generate_universe,
    write_universe_csvs,
)

TARGETS = {"--status": 0.5, "--status --json": 0.5, "--kill": 0.3}
BEFORE = {"--status": "8-9 s", "--status --json": "8-9 s", "--kill": "0.7 s"}


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--symbols", type=int, default=4)
    parser.add_argument("--bars", type=int, default=600)
    parser.add_argument("--smoke", action="store_true", help="3 trials, 3 symbols x 120 bars")
    args = parser.parse_args()
    if args.smoke:
        args.trials, args.symbols, args.bars = 3, 3, 120
    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        root = Path(tmp)
        write_universe_csvs(root / "data", generate_universe(args.symbols, args.bars, seed=7))
        config = root / "config.json"
        config.write_text(json.dumps({"state_dir": str(root / "state"),
                                      "models_dir": str(root / "models"),
                                      "data": {"csv_dir": str(root / "data")}}))
        cli = [sys.executable, str(ROOT / "supervisor.py"), str(config)]
        started = time.perf_counter()
        subprocess.run([*cli, "--run-once"], cwd=root, capture_output=True, timeout=600,
                       check=False)
        print(f"state filled by one --run-once ({args.symbols} symbols x {args.bars} bars) in "
              f"{time.perf_counter() - started:.1f} s")
        results: dict[str, list[float]] = {name: [] for name in TARGETS}
        for _ in range(args.trials):
            results["--status"].append(timed([*cli, "--status"], root))
            results["--status --json"].append(timed([*cli, "--status", "--json"], root))
            results["--kill"].append(timed([*cli, "--kill"], root))
            timed([*cli, "--unkill"], root)
    print("\n| command | trials | median s | p90 s | max s | target s | before | result |")
    print("|---|---|---|---|---|---|---|---|")
    for name, values in results.items():
        arr = np.array(values)
        median, p90 = float(np.median(arr)), float(np.percentile(arr, 90))
        verdict = "PASS" if median <= TARGETS[name] else "MISS"
        print(f"| {name} | {len(values)} | {median:.3f} | {p90:.3f} | {arr.max():.3f} | "
              f"{TARGETS[name]} | {BEFORE[name]} | {verdict} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
