"""The daemon's ``on_bar_close`` schedule: one cycle shortly after each bar closes.

``daemon.schedule: "on_bar_close"`` times the next cycle at the next close of a
``data.timeframe`` bar on ``data.calendar`` plus ``daemon.bar_close_delay_seconds``, read from
the injected Clock, so a FakeClock drives it in tests and weekends and holidays are skipped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from aistock_actors.config import Config
from aistock_actors.runtime.clock import Clock


def bar_close_schedule(config: Config, clock: Clock) -> Callable[[], float]:
    """A function giving the seconds from now until the next cycle is due."""
    from aistock_actors.sources.base import TIMEFRAME_NS
    from aistock_actors.sources.calendar import calendar_name, market_calendar

    calendar = market_calendar(calendar_name(config.data))
    tf_ns = TIMEFRAME_NS[config.data.timeframe]
    delay = config.daemon.bar_close_delay_seconds

    def seconds_until_next() -> float:
        now = clock.now()
        close = calendar.next_bar_close(now - dt.timedelta(seconds=delay), tf_ns)
        return max(0.0, (close - now).total_seconds() + delay)

    return seconds_until_next
