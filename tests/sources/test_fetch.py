"""Fetching bars from providers into the bar store, against a fake Binance/Alpaca on 127.0.0.1.

The real ccxt and aiohttp clients talk to a real socket; only the provider is fake. Time is a
FakeClock shared by the code and the fake provider (which serves the bar still forming).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _support.fake_markets import FakeMarket
from _support.localhttp import closed_port

from aistock_actors.config.sections import DataConfig
from aistock_actors.errors import ConfigError
from aistock_actors.runtime.clock import FakeClock
from aistock_actors.sources import check_source, credentials
from aistock_actors.sources.factory import run_fetch
from aistock_actors.sources.fetch import FetchReport
from aistock_actors.store.bars import BarStore

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 1, 2, 10, 30, 20, tzinfo=dt.UTC)  # 34 closed 1h bars, the 35th forming
HOUR_NS = 3600 * 10**9
ENV = {"AK": "key-id-0123456789", "AS": "secret-abcdefghij"}
SYMBOL = {"ccxt": ("BTC/USDT", "BTC-USDT"), "alpaca": ("AAPL", "AAPL")}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def market(clock: FakeClock) -> Iterator[FakeMarket]:
    server = FakeMarket(lambda: int(clock.time() * 1000), START, "1h", page_max=10).start()
    yield server
    server.stop()


def config(source: str, base_url: str, **overrides: object) -> DataConfig:
    fields: dict[str, object] = {
        "source": source,
        "symbols": (SYMBOL[source][0],),
        "timeframe": "1h",
        "history_start": "2026-01-01",
        "base_url": base_url,
        "max_attempts": 3,
        "request_timeout_seconds": 2.0,
    }
    if source == "alpaca":
        fields |= {"api_key_env": "AK", "api_secret_env": "AS"}
    fields.update(overrides)
    return DataConfig(**fields)  # type: ignore[arg-type]


def fetch(data: DataConfig, store: BarStore, clock: FakeClock, budget: float = 30.0) -> FetchReport:
    return run_fetch(data, store, clock, budget_seconds=budget, environ=ENV)


PROVIDERS = pytest.mark.parametrize("source", ["ccxt", "alpaca"])


@PROVIDERS
def test_first_run_backfills_over_pages_then_only_new_closed_bars(
    source: str, market: FakeMarket, clock: FakeClock, tmp_path: Path
) -> None:
    store = BarStore(tmp_path / "bars")
    name = SYMBOL[source][1]
    report = fetch(config(source, market.url()), store, clock)
    assert report.per_symbol == {name: 34} and not report.failures and not report.alerts
    assert report.pages >= 4  # 34 bars, 10 per page
    ts, _ = store.arrays(name)
    assert ts[0] == int(START.timestamp()) * 10**9
    assert np.all(np.diff(ts) == HOUR_NS)
    assert ts[-1] + HOUR_NS <= int(clock.time() * 1e9)  # the forming 10:00 bar is not stored

    clock.advance(2 * 3600)
    requests_before = len(market.requests)
    report = fetch(config(source, market.url()), store, clock)
    assert report.per_symbol == {name: 2}
    assert store.count(name) == 36
    new_requests = market.requests[requests_before:]
    bar_requests = [r for r in new_requests if "klines" in r[0] or "bars" in r[0]]
    assert len(bar_requests) == 1  # only the few bars after the cursor (plus the overlap)


@PROVIDERS
def test_duplicates_across_pages_are_stored_once(
    source: str, market: FakeMarket, clock: FakeClock, tmp_path: Path
) -> None:
    market.overlap = 2  # each page repeats two bars of the previous one
    store = BarStore(tmp_path / "bars")
    report = fetch(config(source, market.url()), store, clock)
    assert report.per_symbol == {SYMBOL[source][1]: 34}
    assert not report.alerts


@PROVIDERS
def test_429_with_retry_after_and_5xx_are_retried(
    source: str, market: FakeMarket, clock: FakeClock, tmp_path: Path
) -> None:
    market.faults = [("429", 0.3), ("500",)]
    store = BarStore(tmp_path / "bars")
    report = fetch(config(source, market.url()), store, clock)
    assert report.per_symbol == {SYMBOL[source][1]: 34} and not report.failures
    assert not market.faults  # both faults were served, then retried
    assert market.times[1] - market.times[0] >= 0.3  # the retry waited the Retry-After


def backfilled(source: str, market: FakeMarket, clock: FakeClock, tmp_path: Path) -> BarStore:
    store = BarStore(tmp_path / "bars")
    assert fetch(config(source, market.url()), store, clock).per_symbol
    clock.advance(3 * 3600)
    return store


@PROVIDERS
@pytest.mark.parametrize(
    "fault,why",
    [
        ([("500",)] * 3, "HTTP 500|ExchangeNotAvailable"),
        ([("sleep", 3.0)] * 3, "timed out|RequestTimeout"),
        ([("garbage",)], "malformed"),
    ],
    ids=["5xx", "timeout", "malformed-json"],
)
def test_a_failing_fetch_alerts_and_keeps_the_stored_bars(
    source: str,
    fault: list[tuple[object, ...]],
    why: str,
    market: FakeMarket,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    store = backfilled(source, market, clock, tmp_path)
    name = SYMBOL[source][1]
    before = store.arrays(name)[0].copy()
    market.faults = list(fault)
    report = fetch(config(source, market.url(), request_timeout_seconds=1.0), store, clock)
    assert name in report.failures and report.bars_added == 0
    [alert] = report.alerts
    assert alert.code == "data_fetch_failed" and alert.level == "error"
    assert SYMBOL[source][0] in alert.message
    assert re.search(why, alert.message), alert.message
    assert np.array_equal(store.arrays(name)[0], before)
    report = fetch(config(source, market.url()), store, clock)  # next cycle: recovered
    assert report.per_symbol == {name: 3}


@PROVIDERS
def test_connection_refused_fails_the_symbol(source: str, clock: FakeClock, tmp_path: Path) -> None:
    store = BarStore(tmp_path / "bars")
    url = f"http://127.0.0.1:{closed_port()}"
    report = fetch(config(source, url, max_attempts=2), store, clock)
    assert list(report.failures) == [SYMBOL[source][1]]
    assert report.alerts[0].code == "data_fetch_failed"
    assert store.count(SYMBOL[source][1]) == 0


@PROVIDERS
def test_a_bar_with_high_below_low_is_rejected_and_the_bars_before_it_stored(
    source: str, market: FakeMarket, clock: FakeClock, tmp_path: Path
) -> None:
    symbol, name = SYMBOL[source]
    bad_ms = int(START.timestamp() * 1000) + 20 * 3_600_000
    market.overrides[(symbol.replace("/", ""), bad_ms)] = (100.0, 99.0, 101.0, 100.0, 5.0)
    market.overrides[(symbol, bad_ms)] = (100.0, 99.0, 101.0, 100.0, 5.0)
    store = BarStore(tmp_path / "bars")
    report = fetch(config(source, market.url()), store, clock)
    assert store.count(name) == 20  # the bars before the bad one
    [alert] = report.alerts
    assert alert.code == "bar_rejected"
    assert symbol in alert.message and "2026-01-01T20:00:00+00:00" in alert.message
    assert "inconsistent OHLC" in alert.message
    assert name in report.failures


@PROVIDERS
def test_a_gap_is_alerted_and_the_bars_around_it_stored(
    source: str, market: FakeMarket, clock: FakeClock, tmp_path: Path
) -> None:
    symbol, name = SYMBOL[source]
    for hour in (5, 6):
        t = int(START.timestamp() * 1000) + hour * 3_600_000
        market.missing |= {(symbol.replace("/", ""), t), (symbol, t)}
    store = BarStore(tmp_path / "bars")
    report = fetch(config(source, market.url(), calendar="24/7"), store, clock)
    assert report.per_symbol == {name: 32}
    [alert] = report.alerts
    assert alert.code == "data_gap" and alert.level == "warning"
    assert "2 bar(s) missing" in alert.message and symbol in alert.message


def test_no_bars_on_a_holiday_is_no_gap_on_the_exchange_calendar(
    market: FakeMarket, clock: FakeClock, tmp_path: Path
) -> None:
    """2026-01-01 is a NYSE holiday: hours missing then are what XNYS expects."""
    for hour in range(3, 20):
        market.missing.add(("AAPL", int(START.timestamp() * 1000) + hour * 3_600_000))
    store = BarStore(tmp_path / "bars")
    report = fetch(config("alpaca", market.url(), calendar="XNYS"), store, clock)
    assert report.per_symbol == {"AAPL": 34 - 17} and not report.alerts


@PROVIDERS
def test_a_revised_past_bar_is_alerted_and_the_stored_bar_kept(
    source: str, market: FakeMarket, clock: FakeClock, tmp_path: Path
) -> None:
    symbol, name = SYMBOL[source]
    store = backfilled(source, market, clock, tmp_path)
    ts, values = store.arrays(name)
    last_ms = int(ts[-1]) // 10**6
    kept = values[-1].copy()
    market.overrides[(symbol.replace("/", ""), last_ms)] = (90.0, 95.0, 85.0, 91.0, 7.0)
    market.overrides[(symbol, last_ms)] = (90.0, 95.0, 85.0, 91.0, 7.0)
    report = fetch(config(source, market.url()), store, clock)
    assert report.per_symbol == {name: 3}
    [alert] = report.alerts
    assert alert.code == "history_revised" and "revised 1 stored bar" in alert.message
    _, new_values = store.arrays(name)
    assert np.array_equal(new_values[len(ts) - 1], kept)


def test_a_missing_key_variable_is_one_error_naming_it() -> None:
    data = config("alpaca", "http://127.0.0.1:1")
    with pytest.raises(ConfigError, match=r"data\.api_secret_env: environment variable AS is not"):
        credentials(data, {"AK": "x" * 10})
    with pytest.raises(ConfigError, match="AK"):
        check_source(data, {})
    check_source(data, ENV)


def test_unknown_calendar_and_exchange_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"data\.calendar: unknown calendar 'NOPE'"):
        check_source(config("ccxt", "http://x", calendar="NOPE"), ENV)
    with pytest.raises(ConfigError, match=r"data\.exchange: unknown ccxt exchange 'nope'"):
        check_source(config("ccxt", "http://x", exchange="nope"), ENV)


def test_the_step_budget_bounds_the_fetch_and_keeps_what_was_taken(
    market: FakeMarket, clock: FakeClock, tmp_path: Path
) -> None:
    market.delay = 0.5  # a slow provider: 4 pages of BTC alone take longer than the budget
    store = BarStore(tmp_path / "bars")
    data = config("ccxt", market.url(), symbols=("BTC/USDT", "ETH/USDT"))
    report = fetch(data, store, clock, budget=1.6)
    assert set(report.failures) == {"BTC-USDT", "ETH-USDT"}
    assert "timed out" in report.failures["BTC-USDT"]
    assert "budget was spent" in report.failures["ETH-USDT"]
    assert [a.code for a in report.alerts] == ["data_fetch_failed", "data_fetch_failed"]
    kept = store.count("BTC-USDT")
    assert 0 < kept < 34  # the pages taken before the deadline were stored
    market.delay = 0.0
    assert fetch(data, store, clock).per_symbol == {"BTC-USDT": 34 - kept, "ETH-USDT": 34}
