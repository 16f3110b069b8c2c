"""Build the configured source and run one fetch from synchronous code (an actor, the CLI).

``check_source`` is the start-up check: an unknown exchange or calendar, or a named environment
variable that is not set, is one ``ConfigError`` naming it, before any actor starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import replace

from aistock_actors.config.sections import DataConfig
from aistock_actors.errors import ConfigError
from aistock_actors.runtime.clock import Clock
from aistock_actors.sources.base import Source, credentials
from aistock_actors.sources.calendar import MarketCalendar, calendar_name, market_calendar
from aistock_actors.sources.fetch import FetchReport, fetch_into_store
from aistock_actors.store.bars import BarStore


def build_source(data: DataConfig, environ: Mapping[str, str] | None = None) -> Source:
    """The adapter of ``data.source`` (``ccxt`` or ``alpaca``) with its keys from the env."""
    key, secret = credentials(data, environ)
    return _make(data, key, secret)


def _make(data: DataConfig, key: str, secret: str) -> Source:
    if data.source == "ccxt":
        from aistock_actors.sources.ccxt_source import CcxtSource

        return CcxtSource(data, key, secret)
    if data.source == "alpaca":
        from aistock_actors.sources.alpaca import AlpacaSource

        return AlpacaSource(data, key, secret)
    raise ConfigError(f"data.source {data.source!r} is not a provider (csv is read by ingest)")


def check_source(data: DataConfig, environ: Mapping[str, str] | None = None) -> None:
    """Refuse at start-up what would fail every fetch (see the module docstring)."""
    if data.source == "csv":
        return
    credentials(data, environ)
    market_calendar(calendar_name(data))
    if data.source == "ccxt":
        import ccxt

        if data.exchange not in ccxt.exchanges:
            raise ConfigError(f"data.exchange: unknown ccxt exchange {data.exchange!r}")


def run_fetch(
    data: DataConfig,
    store: BarStore,
    clock: Clock,
    *,
    budget_seconds: float,
    calendar: MarketCalendar | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
    on_bars: Callable[[str, int], None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> FetchReport:
    """One fetch of every symbol into ``store`` on a private event loop (closed bars as of
    ``clock.now()``), bounded by ``budget_seconds``."""
    cal = calendar or market_calendar(calendar_name(data))
    now = clock.now()

    key, secret = credentials(data, environ)

    async def run() -> FetchReport:
        source = _make(data, key, secret)
        try:
            return await fetch_into_store(
                source,
                store,
                data,
                cal,
                now,
                budget_seconds=budget_seconds,
                start_ns=start_ns,
                end_ns=end_ns,
                on_bars=on_bars,
            )
        finally:
            await source.close()

    return scrub(asyncio.run(run()), [s for s in (key, secret) if s])


def scrub(report: FetchReport, secrets: list[str]) -> FetchReport:
    """The report with every secret masked: a provider may echo a key in its error messages,
    and failure reasons reach the cycle summary as well as the (already redacted) alerts."""

    def mask(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    report.failures = {name: mask(why) for name, why in report.failures.items()}
    report.alerts = [replace(a, message=mask(a.message)) for a in report.alerts]
    return report
