"""The single ML recipe's metrics and fitting CPU on the demo data, for before/after comparisons.

Run from the repository root::

    .venv/bin/python bench/bench_model_metrics.py [--symbols 20] [--bars 1500] [--seed 7] \
        [--root DIR] [--smoke]

Data ``generate_universe(--symbols, --bars, seed=--seed)``; the config's default recipe, costs,
splits and sizing. In this process, serially: ``train_candidate`` (the candidate on all the data)
then ``walk_forward_backtest`` (its recipe refitted fold by fold). Prints the CPU seconds of each
(``time.process_time``: this process only, one BLAS / OpenMP thread per fit as in production),
the candidate's train / out-of-fold accuracy, threshold, meta-labeler precision and coverage, and
the walk-forward's OOS net Sharpe, return, trades, signals and fold thresholds.

``--root DIR`` imports the package from ``DIR`` instead (e.g. ``git archive`` of an older commit)
to print the "before" figures with the same script.
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

import aistock_actors  # noqa: E402
from aistock_actors.config import Config  # noqa: E402
from aistock_actors.core.data.sample_data import generate_universe  # noqa: E402
from aistock_actors.core.model import pipeline  # noqa: E402
from aistock_actors.services import pipeline_params  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--bars", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--root", type=Path, default=ROOT, help="import the package from DIR")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does it still run")
    args = parser.parse_args()
    symbols, bars = (4, 600) if args.smoke else (args.symbols, args.bars)
    print(f"code {Path(aistock_actors.__file__).parents[1]}; "
          f"{symbols} x {bars} bars, seed {args.seed}")
    frames = generate_universe(symbols, bars, seed=args.seed)
    config = Config()
    params = pipeline_params.model_params(config)
    started = time.process_time()
    model = pipeline.train_candidate(frames, params, 0, "bench", datetime(2026, 1, 1, tzinfo=UTC))
    trained = time.process_time()
    report = pipeline.walk_forward_backtest(
        frames, model_id="bench", params=params, seed=0,
        spec=pipeline_params.simulation_spec(config), sizing=pipeline_params.sizing(config),
    )
    tested = time.process_time()
    m = model.metrics
    oos = report.candidate.metrics
    print(f"CPU s: train {trained - started:.2f}, walk-forward {tested - trained:.2f}")
    print(f"candidate: train accuracy {m['train_accuracy']:.4f}, OOF test accuracy "
          f"{m['test_accuracy']:.4f}, threshold {model.confidence_threshold:.2f}, meta precision "
          f"{m['meta_precision']:.4f}, meta coverage {m['meta_coverage']:.4f}")
    print(f"walk-forward: OOS net Sharpe {oos.sharpe:.4f}, total return {oos.total_return:.4f}, "
          f"trades {oos.trade_count}, signals {report.signals}, fold thresholds "
          f"{[round(t, 2) for t in report.fold_thresholds]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
