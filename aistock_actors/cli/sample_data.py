"""Write a folder of sample daily OHLCV CSVs: ``python -m aistock_actors.cli.sample_data --out
DIR``.

Refuses to touch a folder that already holds CSV files unless ``--force`` is given, so it is safe
to run from a setup script; either way it prints one line saying what it did.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from aistock_actors.core.data.sample_data import generate_universe, write_universe_csvs


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _iso_date(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date (YYYY-MM-DD): {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m aistock_actors.cli.sample_data",
        description="Write <SYMBOL>.csv files of generated daily OHLCV bars.",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument("--symbols", type=_positive, default=10, help="number of symbols")
    parser.add_argument("--bars", type=_positive, default=1000, help="business days per symbol")
    parser.add_argument("--seed", type=int, default=42, help="random seed (same seed, same data)")
    parser.add_argument(
        "--start", type=_iso_date, default="2015-01-02", help="first business day (ISO date)"
    )
    parser.add_argument("--force", action="store_true", help="write even if CSVs already exist")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the process exit code."""
    args = build_parser().parse_args(argv)
    out: Path = args.out
    if out.exists() and not out.is_dir():
        print(f"error: {out} exists and is not a folder", file=sys.stderr)
        return 2
    existing = sorted(out.glob("*.csv")) if out.is_dir() else []
    if existing and not args.force:
        print(f"left {out} unchanged: it already holds {len(existing)} CSV file(s) (use --force)")
        return 0
    frames = generate_universe(args.symbols, args.bars, args.seed, start=args.start)
    paths = write_universe_csvs(out, frames)
    print(
        f"wrote {len(paths)} CSV file(s) x {args.bars} bars to {out} "
        f"(seed {args.seed}, {paths[0].stem}..{paths[-1].stem})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
