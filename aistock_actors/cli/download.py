"""``--download [--from DATE] [--to DATE] [--csv DIR]``: fill the bar store from the provider.

Fetches every ``data.symbols`` from ``data.source`` into ``state/bars/`` (under the state-dir lock,
so not beside a running daemon) with a progress bar on a terminal; a re-run downloads only the
bars after the newest stored one. ``--from`` applies to a symbol with no stored bars (default
``data.history_start``); ``--to`` ends the download before that date (default: now, closed bars
only). ``--csv DIR`` then writes ``<SYMBOL>.csv`` files in the accepted CSV format.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aistock_actors.config import LoadedConfig
from aistock_actors.errors import ConfigError
from aistock_actors.runtime import progress
from aistock_actors.runtime.clock import SYSTEM_CLOCK, Clock
from aistock_actors.store.lock import DaemonLock

DOWNLOAD_BUDGET_SECONDS = 24 * 3600.0
"""A download is bounded too: by a day (an ingest step by its timeout)."""


def check_data_source(loaded: LoadedConfig) -> None:
    """The start-up check of ``data`` (missing key variable, unknown calendar or exchange)."""
    if loaded.config.data.source == "csv":
        return
    from aistock_actors.sources.factory import check_source

    check_source(loaded.config.data)


def download(
    loaded: LoadedConfig,
    *,
    from_date: str | None,
    to_date: str | None,
    csv_dir: Path | None,
    clock: Clock = SYSTEM_CLOCK,
) -> int:
    """Run the download; print one line per symbol; 0 when every symbol completed, else 1."""
    from aistock_actors.core.data.bars import format_csv
    from aistock_actors.runtime.redaction import Redactor
    from aistock_actors.sources.base import TIMEFRAME_NS, store_symbol
    from aistock_actors.sources.calendar import calendar_name, market_calendar
    from aistock_actors.sources.factory import run_fetch
    from aistock_actors.sources.fetch import iso_date_ns
    from aistock_actors.store.bars import BarStore

    data = loaded.config.data
    if data.source == "csv":
        raise ConfigError("--download needs data.source ccxt or alpaca (it is csv)")
    start = _date_ns(from_date, "--from") if from_date else None
    end = _date_ns(to_date, "--to") if to_date else None
    check_data_source(loaded)
    with DaemonLock(loaded.state_dir, "download"):
        store = BarStore(loaded.state_dir / "bars")
        first = start if start is not None else iso_date_ns(data.history_start)
        tf = TIMEFRAME_NS[data.timeframe]
        closed = market_calendar(calendar_name(data)).closed_end(clock.now(), tf)
        last_wanted = min(closed, end or 2**62)
        expected = 0
        for symbol in data.symbols:
            stored = store.last_timestamp(store_symbol(symbol))
            expected += max(0, (last_wanted - (stored or first)) // tf)
        if progress.should_enable(sys.stderr):
            progress.enable(sys.stderr)
        try:
            with progress.task(f"download {data.source}", expected, "bars") as task:
                report = run_fetch(
                    data,
                    store,
                    clock,
                    budget_seconds=DOWNLOAD_BUDGET_SECONDS,
                    start_ns=start,
                    end_ns=end,
                    on_bars=lambda _symbol, added: task.advance(added),
                )
        finally:
            progress.disable()
        redact = Redactor.from_config(loaded.config).text  # keys never reach the terminal
        for alert in report.alerts:
            print(redact(f"{alert.level}: {alert.message}"), file=sys.stderr)
        for symbol in data.symbols:
            name = store_symbol(symbol)
            if name in report.per_symbol:
                print(f"{name}: +{report.per_symbol[name]} bar(s), {store.count(name)} stored")
            else:
                why = redact(report.failures.get(name, "?"))
                print(f"{name}: FAILED ({why})", file=sys.stderr)
        if csv_dir is not None:
            csv_dir.mkdir(parents=True, exist_ok=True)
            for symbol in data.symbols:
                name = store_symbol(symbol)
                if store.count(name):
                    (csv_dir / f"{name}.csv").write_text(format_csv(store.load(name)))
            print(f"CSV files written to {csv_dir}")
    return 0 if not report.failures else 1


def _date_ns(text: str, flag: str) -> int:
    from aistock_actors.sources.fetch import iso_date_ns

    try:
        return iso_date_ns(text)
    except ValueError:
        raise ConfigError(f"{flag} {text!r} is not an ISO date (YYYY-MM-DD)") from None
