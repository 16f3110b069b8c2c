"""The market calendar: gaps vs closed days, bar closes, ``data_stale`` in market time, and the
``on_bar_close`` schedule read from a FakeClock."""

from __future__ import annotations

import datetime as dt

import pytest

from aistock_actors.config.sections import Config, DaemonConfig, DataConfig
from aistock_actors.core.supervision.health import health_issues
from aistock_actors.runtime.clock import FakeClock
from aistock_actors.runtime.schedule import bar_close_schedule
from aistock_actors.runtime.telemetry import TelemetrySnapshot
from aistock_actors.sources.base import TIMEFRAME_NS
from aistock_actors.sources.calendar import MarketCalendar, calendar_name, data_age_function

UTC = dt.UTC
HOUR, DAY, MINUTE = TIMEFRAME_NS["1h"], TIMEFRAME_NS["1d"], TIMEFRAME_NS["1m"]


def ns(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=UTC).timestamp()) * 10**9


@pytest.fixture(scope="module")
def xnys() -> MarketCalendar:
    return MarketCalendar("XNYS")


def test_default_calendar_per_source() -> None:
    assert calendar_name(DataConfig(source="ccxt", symbols=("BTC/USDT",))) == "24/7"
    assert calendar_name(DataConfig(source="alpaca", symbols=("A",), api_key_env="K",
                                    api_secret_env="S")) == "XNYS"
    assert calendar_name(DataConfig(calendar="XLON")) == "XLON"


def test_missing_bars_skip_weekends_and_holidays(xnys: MarketCalendar) -> None:
    friday, monday = ns(2026, 1, 9), ns(2026, 1, 12)
    assert xnys.missing_bars(friday, monday, DAY) == 0
    assert MarketCalendar("24/7").missing_bars(friday, monday, DAY) == 2
    # 2025-12-31 (Wed) -> 2026-01-02 (Fri): New Year's Day is a holiday, nothing is missing.
    assert xnys.missing_bars(ns(2025, 12, 31), ns(2026, 1, 2), DAY) == 0
    # Tuesday -> Thursday: Wednesday's bar is missing.
    assert xnys.missing_bars(ns(2026, 1, 13), ns(2026, 1, 15), DAY) == 1
    # Intraday: Friday's 15:30 UTC bar, then Monday's opening 14:30 bar: Friday 16:30-21:00
    # is 270 trading minutes, four whole hours missing; the weekend counts for nothing.
    assert xnys.missing_bars(ns(2026, 1, 9, 15, 30), ns(2026, 1, 12, 14, 30), HOUR) == 4
    assert xnys.missing_bars(ns(2026, 1, 12, 14, 30), ns(2026, 1, 12, 17, 30), HOUR) == 2


def test_next_bar_close(xnys: MarketCalendar) -> None:
    always = MarketCalendar("24/7")
    now = dt.datetime(2026, 1, 9, 21, 0, 30, tzinfo=UTC)  # a Friday, after the NYSE close
    assert always.next_bar_close(now, MINUTE) == dt.datetime(2026, 1, 9, 21, 1, tzinfo=UTC)
    assert always.next_bar_close(now, HOUR) == dt.datetime(2026, 1, 9, 22, tzinfo=UTC)
    monday_close = xnys.next_bar_close(now, DAY)
    assert monday_close == dt.datetime(2026, 1, 12, 21, tzinfo=UTC)
    first_minute_bar = xnys.next_bar_close(now, MINUTE)
    assert first_minute_bar == dt.datetime(2026, 1, 12, 14, 31, tzinfo=UTC)


def test_data_stale_is_judged_in_market_time(xnys: MarketCalendar) -> None:
    friday_close = dt.datetime(2026, 1, 9, 21, 0, tzinfo=UTC).timestamp()
    monday_early = dt.datetime(2026, 1, 12, 14, 0, tzinfo=UTC).timestamp()  # before the open
    snap = TelemetrySnapshot(started_at=friday_close - 60, last_bar_added_at=friday_close)
    assert xnys.open_seconds(friday_close, monday_early) == 0.0
    assert not health_issues(snap, monday_early, 3600.0, data_age=xnys.open_seconds)
    wall = health_issues(snap, monday_early, 3600.0)
    assert wall and wall[0].startswith("data_stale")  # the wall clock would have cried wolf
    monday_noon = dt.datetime(2026, 1, 12, 17, 0, tzinfo=UTC).timestamp()
    [issue] = health_issues(snap, monday_noon, 3600.0, data_age=xnys.open_seconds)
    assert issue == "data_stale: no new bar for 9000s of market time (limit 3600s)"


def test_the_csv_default_keeps_wall_clock_staleness() -> None:
    assert data_age_function(DataConfig()) is None
    age = data_age_function(DataConfig(source="ccxt", symbols=("BTC/USDT",)))
    assert age is not None and age(0.0, 7200.0) == 7200.0


def test_bar_close_schedule_reads_the_injected_clock() -> None:
    config = Config(
        data=DataConfig(source="ccxt", symbols=("BTC/USDT",), timeframe="1m"),
        daemon=DaemonConfig(schedule="on_bar_close", bar_close_delay_seconds=5),
    )
    clock = FakeClock(dt.datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC))
    until_next = bar_close_schedule(config, clock)
    assert until_next() == pytest.approx(55.0)  # 00:01:00 + 5 s
    clock.advance(52)  # 00:01:02: that bar closed, its cycle is 3 s away
    assert until_next() == pytest.approx(3.0)
    clock.advance(3)  # 00:01:05: due now -> the next one is 00:02:05
    assert until_next() == pytest.approx(60.0)



def test_a_daily_bar_is_closed_when_its_session_closes(xnys: MarketCalendar) -> None:
    """Alpaca stamps a daily bar at its session's date (04:00/05:00 UTC): it is ingested right
    after the 16:00 New York close, not held back until the next midnight."""
    friday_bar = ns(2026, 1, 9, 5)
    during = xnys.closed_end(dt.datetime(2026, 1, 9, 18, 0, tzinfo=UTC), DAY)
    after = xnys.closed_end(dt.datetime(2026, 1, 9, 21, 20, tzinfo=UTC), DAY)
    monday = xnys.closed_end(dt.datetime(2026, 1, 12, 15, 0, tzinfo=UTC), DAY)
    assert ns(2026, 1, 8, 5) < during <= friday_bar  # Thursday's bar closed, Friday's forming
    assert friday_bar < after <= ns(2026, 1, 10)
    assert after <= monday <= ns(2026, 1, 12, 5)  # Monday's bar still forming
    always = MarketCalendar("24/7").closed_end(dt.datetime(2026, 1, 9, 21, 20, tzinfo=UTC), DAY)
    assert always == ns(2026, 1, 8, 21, 20) + 1  # 24/7: a day after the bar's open
