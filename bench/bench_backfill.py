"""Backfill throughput from a provider: N symbols x D days of 1h bars from a local fake server.

The real adapters (ccxt's binance over aiohttp with its rate limiter on; Alpaca over aiohttp)
page the range from a fake Binance/Alpaca on 127.0.0.1 (tests/_support/fake_markets.py, which
serves the providers' documented REST formats) into a fresh BarStore. Prints bars/s and the split
of the time between the provider's paging (request, answer, the client's parsing and, for ccxt,
its rate limiter) and our validation + storage, then the reference: the same pages fetched by
the same client with nothing validated or stored. The fake server runs in this process (its own
thread), so its JSON encoding is part of the paging time, as a real provider's latency would be.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the fake provider lives with the tests

from _support.fake_markets import FakeMarket  # noqa: E402

from aistock_actors.config.sections import DataConfig  # noqa: E402
from aistock_actors.runtime.clock import FakeClock  # noqa: E402
from aistock_actors.sources.base import TIMEFRAME_NS  # noqa: E402
from aistock_actors.sources.factory import build_source, run_fetch  # noqa: E402
from aistock_actors.store.bars import BarStore  # noqa: E402

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
ENV = {"BENCH_KEY": "bench-key-0123456789", "BENCH_SECRET": "bench-secret-0123456789"}


def config(source: str, symbols: list[str], url: str) -> DataConfig:
    keys = {"api_key_env": "BENCH_KEY", "api_secret_env": "BENCH_SECRET"}
    extra = keys if source == "alpaca" else {}
    return DataConfig(
        source=source,  # type: ignore[arg-type]
        symbols=tuple(symbols),
        timeframe="1h",
        history_start=START.date().isoformat(),
        base_url=url,
        calendar="24/7",
        page_limit=1000 if source == "ccxt" else 10_000,
        **extra,  # type: ignore[arg-type]
    )


async def raw_paging(data: DataConfig, now: dt.datetime) -> int:
    """The reference: the same pages through the same client, nothing checked or stored."""
    source = build_source(data, ENV)
    start = int(START.timestamp()) * 10**9
    end = int(now.timestamp()) * 10**9 - TIMEFRAME_NS[data.timeframe] + 1
    bars = 0
    try:
        for symbol in data.symbols:
            async for page in source.pages(symbol, start, end):
                bars += len(page.timestamps)
    finally:
        await source.close()
    return bars


def run(source: str, n_symbols: int, days: int) -> None:
    now = START + dt.timedelta(days=days, minutes=30)
    clock = FakeClock(now)
    market = FakeMarket(lambda: int(clock.time() * 1000), START, "1h",
                        page_max=1000 if source == "ccxt" else 10_000)
    pairs = [(f"S{i:02d}", "USDT") for i in range(n_symbols)]
    market.pairs = pairs
    symbols = [f"{b}/{q}" for b, q in pairs] if source == "ccxt" else [b for b, _ in pairs]
    market.start()
    try:
        data = config(source, symbols, market.url())
        asyncio.run(build_source(data, ENV).close())  # warm-up: the client's imports and set-up
        with tempfile.TemporaryDirectory() as tmp:
            store = BarStore(Path(tmp) / "bars")
            started = time.perf_counter()
            report = run_fetch(data, store, clock, budget_seconds=3600, environ=ENV)
            wall = time.perf_counter() - started
            stored = store.total_bars()
        assert not report.failures, report.failures
        started = time.perf_counter()
        raw_bars = asyncio.run(raw_paging(data, now))
        raw_wall = time.perf_counter() - started
    finally:
        market.stop()
    other = max(0.0, wall - report.fetch_seconds - report.store_seconds)  # client, event loop
    print(f"{source:<7} {n_symbols:>7} {days:>5} {stored:>9,} {report.pages:>6} {wall:>8.2f} "
          f"{stored / wall:>10,.0f} {report.fetch_seconds:>9.2f} {report.store_seconds:>9.2f} "
          f"{other:>7.2f}")
    share = report.store_seconds / wall
    print(f"  [{source}] paging {report.fetch_seconds / wall:.0%} of the time, validation + "
          f"storage {share:.0%} ({stored / max(report.store_seconds, 1e-9):,.0f} bars/s)")
    print(f"  [{source}] reference (same client, nothing stored): {raw_bars:,} bars in "
          f"{raw_wall:.2f} s; ours / reference wall time = {wall / raw_wall:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--sources", nargs="+", default=["ccxt", "alpaca"],
                        choices=["ccxt", "alpaca"])
    parser.add_argument("--smoke", action="store_true", help="2 symbols x 10 days")
    args = parser.parse_args()
    symbols, days = (2, 10) if args.smoke else (args.symbols, args.days)
    print(f"{symbols} symbols x {days} days of 1h bars from a fake provider on 127.0.0.1")
    print(f"{'source':<7} {'symbols':>7} {'days':>5} {'bars':>9} {'pages':>6} {'wall s':>8} "
          f"{'bars/s':>10} {'paging s':>9} {'store s':>9} {'setup s':>7}")
    for source in args.sources:
        run(source, symbols, days)


if __name__ == "__main__":
    main()
