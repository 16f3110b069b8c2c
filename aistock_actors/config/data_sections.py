"""The market-data sections of the config: where bars come from (``data``) and when the daemon
runs (``daemon``)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from aistock_actors.config.base import ISO_DATE, ConfigSection, EnvName, Seconds


class DaemonConfig(ConfigSection, frozen=True, kw_only=True):
    """Schedule of ``--daemon`` mode."""

    interval_minutes: Annotated[float, msgspec.Meta(gt=0.0, le=7 * 24 * 60.0)] = 60.0
    """Minutes between the starts of two cycles (``--interval-minutes`` overrides)."""
    schedule: Literal["interval", "on_bar_close"] = "interval"
    """``interval``: every ``interval_minutes``; ``on_bar_close``: one cycle shortly after each
    bar of ``data.timeframe`` closes on ``data.calendar`` (``--interval-minutes`` still wins)."""
    bar_close_delay_seconds: Annotated[float, msgspec.Meta(ge=0.0, le=3600.0)] = 5.0
    """With ``on_bar_close``: seconds after a bar's close the cycle starts (the provider's lag)."""


DataSource = Literal["csv", "ccxt", "alpaca"]


Timeframe = Literal["1m", "5m", "15m", "1h", "1d"]


class DataConfig(ConfigSection, frozen=True, kw_only=True):
    """Where market data comes from: a CSV folder (default) or a provider (``sources/``)."""

    csv_dir: str = "data"
    """A folder of ``<SYMBOL>.csv`` files (relative to the working directory)."""
    future_tolerance_seconds: Seconds = 86400.0
    """A bar stamped later than the clock's (market) time plus this is refused (#17)."""
    max_relative_jump: Annotated[float, msgspec.Meta(gt=0.0, le=1000.0)] = 3.0
    """A new bar whose open or close is more than ``1 + this`` times (or less than its inverse)
    the previous close is refused as a data error (#17)."""
    source: DataSource = "csv"
    """``csv``: the folder above; ``ccxt``: a crypto exchange (public bars, no key); ``alpaca``:
    US equities from Alpaca's market-data API (keys from the environment)."""
    symbols: tuple[str, ...] = ()
    """Provider symbols to fetch (``BTC/USDT``, ``AAPL``); stored as ``BTC-USDT``, ``AAPL``."""
    timeframe: Timeframe = "1d"
    """Bar length fetched from the provider."""
    history_start: str = "2022-01-01"
    """ISO date the first run backfills from."""
    exchange: str = "binance"
    """With ``ccxt``: the exchange id (any of ``ccxt.exchanges``)."""
    base_url: str | None = None
    """Override the provider's endpoint (a gateway, a testnet, tests); null: the provider's own."""
    api_key_env: EnvName | None = None
    """Environment variable holding the API key (required by ``alpaca``, optional for ``ccxt``)."""
    api_secret_env: EnvName | None = None
    """Environment variable holding the API secret."""
    calendar: str | None = None
    """An ``exchange_calendars`` name (``XNYS``, ``XLON``...) or ``24/7``; null: ``24/7`` for
    ``ccxt``, ``XNYS`` otherwise."""
    feed: Literal["iex", "sip"] = "iex"
    """With ``alpaca``: the bar feed (``iex`` is free; ``sip`` needs a subscription)."""
    page_limit: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1000
    """Bars asked per request (the provider may return fewer)."""
    request_timeout_seconds: Seconds = 10.0
    """Timeout of one provider request."""
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=20)] = 4
    """Attempts per provider request (429 waits ``Retry-After``); all inside the ingest timeout."""

    def __post_init__(self) -> None:
        if self.source != "csv" and not self.symbols:
            raise ValueError(f"data.source {self.source!r} needs data.symbols (a non-empty list)")
        if not ISO_DATE.fullmatch(self.history_start):
            raise ValueError(f"data.history_start {self.history_start!r} is not an ISO date")
        if self.source == "alpaca" and not (self.api_key_env and self.api_secret_env):
            raise ValueError("data.source 'alpaca' needs data.api_key_env and data.api_secret_env")
