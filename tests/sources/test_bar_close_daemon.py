"""``daemon.schedule: on_bar_close`` on a 24/7 calendar with 1-minute bars, end to end.

A fake Binance serves planted-pattern bars one minute apart; the test's FakeClock closes a bar
every time it is moved a minute. The real supervisor and actors run ``run_daemon`` with the bar
close schedule: one cycle per closed bar, each ingesting that bar and trading on it.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from _support.fake_markets import FakeMarket
from _support.lifecycle_support import active_id, lifecycle_config, planted_frames, step
from _support.waiting import wait_until

from aistock_actors.config import load_config
from aistock_actors.core.data.bars import frame_arrays
from aistock_actors.runtime.child_specs import default_specs
from aistock_actors.runtime.clock import FakeClock
from aistock_actors.runtime.supervisor import Supervisor

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
N_BARS = 560
SYMBOLS = [f"P0{i}" for i in range(8)]  # enough planted symbols to show the edge over the base rate


@pytest.fixture
def market_and_clock() -> Iterator[tuple[FakeMarket, FakeClock]]:
    # Bars 0..N_BARS-3 are closed at start (the last one 3 s ago); bar N_BARS-2 is forming.
    clock = FakeClock(T0 + dt.timedelta(minutes=N_BARS - 2, seconds=3))
    market = FakeMarket(lambda: int(clock.time() * 1000), T0, "1m")
    market.pairs = [(s, "USDT") for s in SYMBOLS]
    for name, frame in planted_frames(n_symbols=len(SYMBOLS), n_bars=N_BARS).items():
        market.series[f"{name}USDT"] = frame_arrays(frame)[1]
    market.start()
    yield market, clock
    market.stop()


@pytest.mark.slow
def test_one_cycle_per_closed_bar_that_trades_on_it(
    market_and_clock: tuple[FakeMarket, FakeClock], tmp_path: Path
) -> None:
    market, clock = market_and_clock
    config = lifecycle_config(
        tmp_path,
        data={
            "source": "ccxt",
            "symbols": [f"{s}/USDT" for s in SYMBOLS],
            "timeframe": "1m",
            "history_start": T0.date().isoformat(),
            "base_url": market.url(),
            "calendar": "24/7",
        },
        daemon={"schedule": "on_bar_close", "bar_close_delay_seconds": 2},
        # The planted AR(1) pattern annualised over 525,600 one-minute bars a year is a Sharpe of
        # ~200: the plausibility stage would rightly hold it as leak_suspected. This test is about
        # the schedule, so it lets the planted pattern through instead of approving it by hand.
        promotion={"max_plausible_sharpe": 1000.0, "max_plausible_win_rate": 1.0},
        # A few hundred one-minute bars are far below the default one-year floor of history
        # (525,600 of these bars); the schedule, not the floor, is under test here.
        training={"min_history_years": 0.0},
    )
    sup = Supervisor(load_config(config), default_specs(), clock=clock)
    sup.start()
    daemon = threading.Thread(target=sup.run_daemon, args=(3600.0,), kwargs={"on_bar_close": True})
    daemon.start()
    try:
        wait_until(lambda: sup.state.cycles_total == 1, 240, "the first cycle")
        first = sup.last_summary
        assert first is not None and first.outcome == "succeeded", first
        assert step(first, "ingest").data["bars_added"] == len(SYMBOLS) * (N_BARS - 2)
        assert active_id(tmp_path) is not None  # the planted pattern was promoted
        # /healthz's "two intervals without a cycle" follows the schedule, not interval_minutes
        assert sup.net.daemon_interval_seconds == pytest.approx(60.0)
        for n in (1, 2):
            # No bar closed yet: no cycle, however long we wait in real time.
            clock.advance(30)
            with pytest.raises(AssertionError, match="timed out"):
                wait_until(
                    lambda n=n: sup.cycle is not None or sup.state.cycles_total > n, 1.0, "none"
                )
            clock.advance(30)  # the bar closed 3 s ago (delay 2 s): its cycle starts
            wait_until(lambda n=n: sup.state.cycles_total == n + 1, 240, f"cycle {n + 1}")
            summary = sup.last_summary
            assert summary is not None and summary.outcome == "succeeded", summary
            assert step(summary, "ingest").data["bars_added"] == len(SYMBOLS)
            trade = step(summary, "trade").data
            newest = T0 + dt.timedelta(minutes=N_BARS - 3 + n)
            assert trade["as_of"].startswith(newest.isoformat()[:16]), trade
            assert trade["status"] in ("traded", "no orders: holding"), trade
            assert trade["model_id"]
    finally:
        sup.stop_event.set()
        daemon.join(60)
        sup.stop()
