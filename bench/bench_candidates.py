"""A training cycle's core work with the candidate set vs today's single recipe (issue #14).

Run from the repository root::

    .venv/bin/python bench/bench_candidates.py [--symbols 100] [--bars 2520] [--n-jobs 2] \
        [--root DIR] [--smoke]

Data: ``generate_universe(--symbols, --bars, seed=7)``. Both paths use the config's default
costs, splits and sizing and the same loky job runner (``runtime/jobs.py``, ``--n-jobs``):

* **single recipe** — today's cycle: train the ML candidate on all the data
  (``train_candidate``) and walk-forward backtest its recipe (``walk_forward_backtest``);
* **candidate set** — ``run_candidate_set(default_candidates())``: the ML model at horizons 1, 5
  and 20 and the built-in rules (``AutocorrelationStrategy``, ``TimeSeriesMomentum``,
  ``SmaCross``), each walk-forward tested as one job of the same runner (the final fit of the
  selected candidate on all the data is not included).

Prints wall time of each path, their ratio, each candidate's out-of-sample net Sharpe, the best
candidate and its deflated Sharpe ratio over the set's trials. The goal (candidate set <= 60 s on
2 cores at 100 x 2,520) is printed as PASS/MISS, never asserted, with the load average before
and after (wall time on a shared machine depends on it).

``--root DIR`` imports the package from ``DIR`` instead (e.g. ``git archive`` of an older commit)
for "before" figures with the same script.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _code_root() -> Path:
    """``--root``'s value (read before the package is imported), else this checkout."""
    if "--root" in sys.argv[:-1]:
        return Path(sys.argv[sys.argv.index("--root") + 1]).resolve()
    return ROOT


sys.path.insert(0, str(_code_root()))

import os  # noqa: E402

import pandas as pd  # noqa: E402

from aistock_actors.core.backtest.simulator import CostModel  # noqa: E402
from aistock_actors.core.data.sample_data import generate_universe  # noqa: E402
from aistock_actors.core.model import pipeline  # noqa: E402
from aistock_actors.core.model.models import ModelParams  # noqa: E402
from aistock_actors.core.strategy.candidates import default_candidates, run_candidate_set  # noqa: E402
from aistock_actors.core.strategy.rules import SmaCross  # noqa: E402
from aistock_actors.core.strategy.walkforward import StrategyReport, walk_forward_strategy  # noqa: E402
from aistock_actors.runtime.handover import HandOver  # noqa: E402
from aistock_actors.runtime.jobs import JobRunner, make_mapper  # noqa: E402

SPEC = pipeline.SimulationSpec(
    n_splits=4, embargo=5, fill="next_open",
    costs=CostModel(commission_rate=0.0005, half_spread_bps=2.0, impact_bps=200.0),
    initial_cash=100_000.0,
)
SIZING = pipeline.Sizing(max_position_fraction=0.2, max_gross_exposure=1.0)
GOAL_SECONDS = 60.0
BUDGET_SECONDS = 3_600.0


def rule_job(frames: dict[str, pd.DataFrame], strategy: object) -> StrategyReport:
    """One rule strategy's walk-forward test (a pool job)."""
    return walk_forward_strategy(frames, strategy, spec=SPEC, sizing=SIZING)  # type: ignore[arg-type]


def single_recipe(frames: dict[str, pd.DataFrame], runner: JobRunner) -> float:
    """Today's cycle: train + walk-forward backtest of the one ML recipe; its OOS Sharpe."""
    mapper = make_mapper(runner, BUDGET_SECONDS)
    params = ModelParams()
    hand_over = HandOver()  # as the supervisor gives it to the Trainer and the Backtester
    pipeline.train_candidate(frames, params, 0, "bench", datetime(2026, 1, 1, tzinfo=UTC),
                             mapper=mapper, hand_over=hand_over)
    report = pipeline.walk_forward_backtest(frames, model_id="bench", params=params, seed=0,
                                            spec=SPEC, sizing=SIZING, mapper=mapper,
                                            hand_over=hand_over)
    return report.candidate.metrics.sharpe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--bars", type=int, default=2_520)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--root", type=Path, default=ROOT, help="import the package from DIR")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does it still run")
    args = parser.parse_args()
    symbols, bars = (6, 600) if args.smoke else (args.symbols, args.bars)
    frames = generate_universe(symbols, bars, seed=7)
    runner = JobRunner("loky", args.n_jobs)
    print(f"{symbols} symbols x {bars} bars, loky n_jobs={args.n_jobs}")
    print(f"code {args.root}; load average {os.getloadavg()[0]:.2f}")
    try:
        # Warm-up at a tiny size (pool workers started, imports done), not timed.
        single_recipe(generate_universe(4, 500, seed=1), runner)
        runner.map(rule_job, [(generate_universe(4, 500, seed=1), SmaCross())] * 2,
                   timeout=BUDGET_SECONDS)
        started = time.perf_counter()
        ml_sharpe = single_recipe(frames, runner)
        single = time.perf_counter() - started
        started = time.perf_counter()
        result = run_candidate_set(frames, default_candidates(), spec=SPEC, sizing=SIZING,
                                   mapper=make_mapper(runner, BUDGET_SECONDS))
        candidate_set = time.perf_counter() - started
    finally:
        runner.close()
    print(f"today's recipe (ml, horizon 5): OOS net Sharpe {ml_sharpe:.2f}")
    print("| candidate | OOS net Sharpe |")
    print("|---|---|")
    for report in result.reports:
        print(f"| {report.name} | {report.metrics.sharpe:.2f} |")
    for name, error in result.errors.items():
        print(f"| {name} | failed: {error} |")
    if result.best is not None:
        print(f"best: {result.best.name} (Sharpe {result.best.metrics.sharpe:.2f}, deflated "
              f"Sharpe {result.deflated_sharpe:.3f} over {result.trials} trials)")
    print(f"single recipe: {single:.1f} s; candidate set: {candidate_set:.1f} s; "
          f"ratio x{candidate_set / single:.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    verdict = "PASS" if candidate_set <= GOAL_SECONDS else "MISS"
    print(f"goal: candidate set <= {GOAL_SECONDS:.0f} s -> {verdict}")


if __name__ == "__main__":
    main()
