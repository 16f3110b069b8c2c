"""A long-lived paper account's trade step stays flat (#18): ledger size and trade-step time.

    .venv/bin/python bench/bench_ledger.py [--cycles 150] [--symbols 5] [--past-fills 20000]
        [--window 15] [--curve-bars 20000] [--curve-only] [--workdir DIR]

Runs trading cycles (ingest, risk, trade: the production specs of ``tests/_support``'s paper
rig, a real trained model, one new bar per cycle) on three accounts, one after the other in one
process: ``fresh`` (no past fills), ``history`` (``--past-fills`` earlier fills in an old-format
ledger, every fill inline, which the trader migrates at its start) and ``unbounded`` (the same
history with the window turned off in this process: ``split_history`` and ``forget_applied``
patched to keep everything, as the code before #18 did). At checkpoints (every tenth of the run)
it prints the account's fills, the sizes of ``ledger.json``, ``journal.jsonl`` and
``fills/``, and the median trade-step time of the ``--window`` cycles before; then the ratios
``history`` / ``fresh`` at the last checkpoint against the target (trade step within 2x) and
the ``history`` ledger's size at the last checkpoint / the first (flat: within 2x).

Then the equity curve (``--curve-bars``, 0 to skip): ``PaperStore.save_ledger`` once per bar, one
equity point more each time (what a trade step saves), syncing off as in a replay, ``bounded``
(the window) and ``unbounded`` (``split_curve`` patched to keep every point, as before #18): at
checkpoints the ledger's and ``equity/``'s sizes and the median save time of the last 50 saves;
then the ``bounded`` ledger's size and save time at the last checkpoint / the one at
``RECENT_POINTS + CURVE_BATCH`` bars (flat: within 1.25x and 2x).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from _support.paper_support import (  # noqa: E402
    activate_model,
    head,
    round_trips,
    trading_specs,
    trained_model,
    universe,
)
from _support.support import write_config  # noqa: E402

import aistock_actors.core.trading.cycle as cycle_module  # noqa: E402
import aistock_actors.store.ledger as ledger_module  # noqa: E402
from aistock_actors.config import load_config  # noqa: E402
from aistock_actors.core.data.sample_data import write_universe_csvs  # noqa: E402
from aistock_actors.core.trading.curve import CURVE_BATCH, RECENT_POINTS  # noqa: E402
from aistock_actors.core.trading.history import fill_count  # noqa: E402
from aistock_actors.core.trading.ledger import LedgerState  # noqa: E402
from aistock_actors.runtime.supervisor import Supervisor  # noqa: E402
from aistock_actors.store.atomic import sync_to_disk  # noqa: E402
from aistock_actors.store.ledger import PaperStore  # noqa: E402

TRADE_RATIO_TARGET = 2.0
LEDGER_GROWTH_TARGET = 2.0
CURVE_SIZE_TARGET = 1.25
CURVE_SAVE_TARGET = 2.0
START_BARS = 150
SAVES_MEDIAN = 50


@dataclass
class Row:
    cycle: int
    fills: int
    ledger: int
    journal: int
    archive: int
    trade_ms: float


def give_history(state_dir: Path, n: int) -> None:
    """Rewrite the account as the old format held it: ``n`` earlier fills inline."""
    store = PaperStore(state_dir, None, 0.0)
    ledger = store.load_ledger()
    old = msgspec.structs.replace(ledger, fills=[*round_trips(n), *ledger.fills],
                                  applied_order_ids=[f"past-{k}" for k in range(n)])
    store.ledger_path.write_bytes(msgspec.json.format(msgspec.json.encode(old), indent=2))
    store.ledger_path.with_name("ledger.json.bak").unlink(missing_ok=True)
    costs = store.load_costs()
    store.save_costs(msgspec.structs.replace(costs, fills_recorded=costs.fills_recorded + n))


def size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.iterdir())
    return path.stat().st_size if path.exists() else 0


def run_account(work: Path, mode: str, args: argparse.Namespace, marks: list[int]) -> list[Row]:
    frames = universe(args.symbols, START_BARS + args.cycles + 1, seed=3)
    write_universe_csvs(work / "data", head(frames, START_BARS))
    activate_model(work / "models", trained_model(head(frames, START_BARS)))
    loaded = load_config(write_config(work))
    paper = work / "state" / "paper"
    sup = Supervisor(loaded, trading_specs())
    sup.start()
    try:
        sup.run_once()  # the first cycle marks the newest bar and plans
    finally:
        sup.stop()
    if mode != "fresh":
        give_history(work / "state", args.past_fills)
    rows: list[Row] = []
    trade: list[float] = []
    sup = Supervisor(loaded, trading_specs())
    sup.start()  # the trader's start migrates an old-format ledger (history)
    try:
        for cycle in range(1, args.cycles + 1):
            write_universe_csvs(work / "data", head(frames, START_BARS + cycle))
            summary = sup.run_once()
            if summary is None:
                raise SystemExit(f"{mode} cycle {cycle}: refused (halted: {sup.halt})")
            trade.extend(s.duration_s for s in summary.steps if s.name == "trade")
            if cycle in marks:
                ledger = msgspec.json.decode((paper / "ledger.json").read_bytes(),
                                             type=LedgerState)
                rows.append(Row(cycle, fill_count(ledger), size(paper / "ledger.json"),
                                size(paper / "journal.jsonl"), size(paper / "fills"),
                                statistics.median(trade[-args.window:]) * 1000))
    finally:
        sup.stop()
    return rows


@dataclass
class CurveRow:
    bars: int
    ledger: int
    archive: int
    save_ms: float


def curve_saves(work: Path, bars: int, marks: list[int], *, keep_all: bool) -> list[CurveRow]:
    """One ledger save per bar, one equity point more each (``keep_all``: no window)."""
    import datetime as dt

    real = ledger_module.split_curve
    if keep_all:
        ledger_module.split_curve = lambda state, **_: (state, [])  # type: ignore[assignment,misc]
    store = PaperStore(work / "state", None, 100_000.0)
    state = store.open_ledger()
    day0, times, rows = dt.date(1950, 1, 1), [], []
    sync_to_disk(False)
    try:
        for bar in range(1, bars + 1):
            stamp = (day0 + dt.timedelta(days=bar)).isoformat()
            point = (stamp, 100_000.0 + (bar * 7919 % 2003) - 1000.0)
            state = msgspec.structs.replace(state, equity_curve=[*state.equity_curve, point],
                                            as_of=stamp, updated_at=stamp)
            start = time.perf_counter()
            state = store.save_ledger(state)
            times.append(time.perf_counter() - start)
            if bar in marks:
                rows.append(CurveRow(bar, size(store.ledger_path), size(store.equity.root),
                                     statistics.median(times[-SAVES_MEDIAN:]) * 1000))
    finally:
        sync_to_disk(True)
        ledger_module.split_curve = real  # type: ignore[assignment]
    return rows


def report_curve(work: Path, bars: int) -> None:
    """The equity-curve part: print its table and verdicts."""
    first = min(RECENT_POINTS + CURVE_BATCH, bars)
    step = max(1, bars // 8)
    marks = sorted({first, *range(step, bars + 1, step), bars})
    wall0 = time.monotonic()
    results = {mode: curve_saves(work / f"curve-{mode}", bars, marks, keep_all=mode != "bounded")
               for mode in ("bounded", "unbounded")}
    print(f"\nequity curve: {bars:,} saves, one point more each (wall "
          f"{time.monotonic() - wall0:.1f} s)")
    print("| curve | bars | ledger kB | equity/ kB | save ms (median of 50) |")
    print("|---|---:|---:|---:|---:|")
    for mode, rows in results.items():
        for r in rows:
            print(f"| {mode} | {r.bars:,} | {r.ledger / 1024:.1f} | {r.archive / 1024:.1f} | "
                  f"{r.save_ms:.2f} |")
    at = {r.bars: r for r in results["bounded"]}
    start, end, before = at[first], results["bounded"][-1], results["unbounded"][-1]
    grew, slowed = end.ledger / start.ledger, end.save_ms / start.save_ms
    verdict = "PASS" if grew <= CURVE_SIZE_TARGET and slowed <= CURVE_SAVE_TARGET else "MISS"
    print(f"ledger.json at bar {end.bars:,} / bar {first:,} = {grew:.2f}x (target <= "
          f"{CURVE_SIZE_TARGET:g}x), save {slowed:.2f}x (target <= {CURVE_SAVE_TARGET:g}x) -> "
          f"{verdict}; unbounded: {before.ledger / 1024:.0f} kB, {before.save_ms:.1f} ms "
          f"({before.save_ms / end.save_ms:.1f}x the bounded save)")


def unbounded() -> None:
    """Turn the window off in this process: every fill and applied id stays in the ledger."""
    ledger_module.split_history = lambda state, keep_closing=0, **_: (state, [])  # type: ignore[assignment,misc]
    cycle_module.forget_applied = lambda state: state  # type: ignore[assignment]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=150)
    parser.add_argument("--symbols", type=int, default=5)
    parser.add_argument("--past-fills", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=15)
    parser.add_argument("--curve-bars", type=int, default=20_000)
    parser.add_argument("--curve-only", action="store_true", help="only the equity-curve part")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true",
                        help="6 cycles, 4 symbols, 2,000 past fills, 2,600 curve bars "
                        "(overrides the size flags): the bench still runs "
                        "(tests/bench/test_bench_commands.py)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.cycles, args.symbols, args.past_fills, args.window = 6, 4, 2_000, 2
        args.curve_bars = RECENT_POINTS + CURVE_BATCH + 100
    logging.basicConfig(level=logging.CRITICAL + 1)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ledger-"))
    if args.curve_only:
        report_curve(work, args.curve_bars)
        return 0
    print(f"{args.cycles} trading cycles on {args.symbols} symbols, {args.past_fills:,} past "
          f"fills, in {work}")
    step = max(1, args.cycles // 10)
    marks = sorted({min(step, args.cycles), *range(step, args.cycles + 1, step), args.cycles})
    load_start = os.getloadavg()
    wall0, cpu0 = time.monotonic(), time.process_time()
    results: dict[str, list[Row]] = {}
    for mode in ("fresh", "history", "unbounded"):
        if mode == "unbounded":
            unbounded()
        results[mode] = run_account(work / mode, mode, args, marks)
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    print("| account | cycle | fills | ledger kB | journal kB | fills/ kB | trade ms (median) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for mode, rows in results.items():
        for r in rows:
            print(f"| {mode} | {r.cycle} | {r.fills:,} | {r.ledger / 1024:.1f} | "
                  f"{r.journal / 1024:.1f} | {r.archive / 1024:.1f} | {r.trade_ms:.1f} |")
    print(f"wall {wall:.1f} s, CPU {cpu:.1f} s, load {load_start[0]:.2f} -> "
          f"{os.getloadavg()[0]:.2f}")
    fresh, history, before = results["fresh"][-1], results["history"][-1], results["unbounded"][-1]
    ratio = history.trade_ms / fresh.trade_ms
    verdict = "PASS" if ratio <= TRADE_RATIO_TARGET else "MISS"
    print(f"trade step with {args.past_fills:,} past fills / without = {ratio:.2f}x "
          f"(target <= {TRADE_RATIO_TARGET:g}x) -> {verdict}; unbounded: "
          f"{before.trade_ms / fresh.trade_ms:.2f}x")
    first = results["history"][0]
    growth = history.ledger / first.ledger
    verdict = "PASS" if growth <= LEDGER_GROWTH_TARGET else "MISS"
    print(f"ledger.json cycle {history.cycle} / cycle {first.cycle} = {growth:.2f}x "
          f"(target <= {LEDGER_GROWTH_TARGET:g}x) -> {verdict}; unbounded: "
          f"{before.ledger / 1024:.0f} kB")
    if args.curve_bars > 0:
        report_curve(work, args.curve_bars)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
