"""The market's calendar (``data.calendar``): which bars should exist and when the next one closes.

``24/7`` (crypto) is plain arithmetic; any other name is an ``exchange_calendars`` calendar
(``XNYS``, ``XLON``, ...), loaded lazily. Used to tell a gap of missing bars from a weekend or a
holiday, and by the ``on_bar_close`` daemon schedule.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd

from aistock_actors.config.sections import DataConfig
from aistock_actors.errors import ConfigError

ALWAYS_OPEN = "24/7"
_MINUTE_NS = 60 * 10**9
_DAY_NS = 86_400 * 10**9


def calendar_name(data: DataConfig) -> str:
    """``data.calendar``, or the source's default: ``24/7`` for ccxt, ``XNYS`` otherwise."""
    if data.calendar:
        return data.calendar
    return ALWAYS_OPEN if data.source == "ccxt" else "XNYS"


def data_age_function(data: DataConfig) -> Callable[[float, float], float] | None:
    """How ``data_stale`` measures the age of the newest bar: open-market seconds when a
    calendar is in force (a provider source, or ``data.calendar`` set), so weekends and
    holidays raise nothing; None (wall-clock seconds, as before) for a CSV folder without one."""
    if data.source == "csv" and data.calendar is None:
        return None
    return market_calendar(calendar_name(data)).open_seconds


@functools.lru_cache(maxsize=8)
def market_calendar(name: str) -> MarketCalendar:
    """The calendar ``name``, built once per process (an exchange calendar takes ~1 s)."""
    return MarketCalendar(name)


class MarketCalendar:
    """Trading time of one market; see the module docstring."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._cal: Any = None
        if name != ALWAYS_OPEN:
            import exchange_calendars as xcals

            try:
                with _quiet():
                    self._cal = xcals.get_calendar(name, start="2000-01-01")
            except xcals.errors.InvalidCalendarName as exc:
                raise ConfigError(
                    f"data.calendar: unknown calendar {name!r} (an exchange_calendars name such "
                    "as XNYS, or 24/7)"
                ) from exc
            except Exception as exc:  # the library's own failure: say which and why
                raise ConfigError(
                    f"data.calendar: cannot load calendar {name!r}: {type(exc).__name__}: {exc}"
                ) from exc

    @property
    def always_open(self) -> bool:
        return self._cal is None

    def missing_bars(self, a_ns: int, b_ns: int, tf_ns: int) -> int:
        """How many bars of length ``tf_ns`` should open strictly between bars ``a`` and ``b``."""
        if b_ns - a_ns <= tf_ns:
            return 0
        if self._cal is None:
            return int((b_ns - a_ns) // tf_ns - 1)
        if tf_ns >= _DAY_NS:
            first = pd.Timestamp(a_ns, unit="ns").normalize() + pd.Timedelta(days=1)
            last = pd.Timestamp(b_ns, unit="ns").normalize() - pd.Timedelta(days=1)
            if last < first:
                return 0
            with _quiet():
                sessions = self._cal.sessions_in_range(
                    first.tz_localize(None), last.tz_localize(None)
                )
            return len(sessions)
        start = pd.Timestamp(a_ns + tf_ns, unit="ns", tz="UTC")
        end = pd.Timestamp(b_ns - _MINUTE_NS, unit="ns", tz="UTC")
        with _quiet():
            minutes = len(self._cal.minutes_in_range(start, end)) if end >= start else 0
        return int(minutes // (tf_ns // _MINUTE_NS))

    def closed_end(self, now: dt.datetime, tf_ns: int) -> int:
        """Exclusive bound (ns) of the open times of the bars closed at ``now``.

        A bar opened at ``t`` is closed once ``t + timeframe`` has passed; on an exchange
        calendar a daily bar (stamped at its session's date, whatever the hour) is closed once
        its session has closed, so it is not held back until the next midnight.
        """
        now_ns = _ns(now)
        end = now_ns - tf_ns + 1
        if self._cal is None or tf_ns < _DAY_NS:
            return end
        with _quiet():
            close = self._cal.previous_close(pd.Timestamp(now_ns, unit="ns", tz="UTC"))
        session_date = pd.Timestamp(int(close.value), unit="ns", tz="UTC").tz_convert(
            self._cal.tz
        ).normalize()
        next_day = int(session_date.tz_localize(None).value) + _DAY_NS  # midnight UTC after it
        return max(end, next_day)

    def open_seconds(self, start: float, end: float) -> float:
        """Seconds the market is open between two Unix times (the market's age of data)."""
        if end <= start:
            return 0.0
        if self._cal is None:
            return end - start
        first = pd.Timestamp(start, unit="s", tz="UTC").ceil("min")
        last = pd.Timestamp(end, unit="s", tz="UTC").floor("min")
        if last <= first:
            return 0.0
        with _quiet():
            minutes = len(self._cal.minutes_in_range(first, last - pd.Timedelta(minutes=1)))
        return float(minutes * 60)

    def next_bar_close(self, now: dt.datetime, tf_ns: int) -> dt.datetime:
        """The first bar close strictly after ``now`` (bars aligned to the epoch in UTC)."""
        now_ns = _ns(now)
        candidate = (now_ns // tf_ns + 1) * tf_ns
        if self._cal is None:
            return _dt(candidate)
        with _quiet():
            if tf_ns >= _DAY_NS:
                close = self._cal.next_close(pd.Timestamp(now_ns, unit="ns", tz="UTC"))
                return _dt(int(close.value))
            for _ in range(10_000):  # bounded: at most a few weeks of closed minutes are skipped
                last_minute = pd.Timestamp(candidate - _MINUTE_NS, unit="ns", tz="UTC")
                if self._cal.is_trading_minute(last_minute):
                    return _dt(candidate)
                opens = self._cal.next_open(last_minute)
                candidate = (int(opens.value) // tf_ns + 1) * tf_ns
        raise ConfigError(f"data.calendar {self.name}: no bar closes in the coming weeks")


def _ns(moment: dt.datetime) -> int:
    return int(pd.Timestamp(moment).tz_convert("UTC").value)


def _dt(ns: int) -> dt.datetime:
    return pd.Timestamp(ns, unit="ns", tz="UTC").to_pydatetime()


_QUIET_LOCK = threading.RLock()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """exchange_calendars still uses pandas APIs that newer pandas deprecates: not our warning.

    ``catch_warnings`` swaps the process's filters, so two threads inside it at once (the
    ingestor and the health reporter each loading a calendar) could restore each other's
    filters mid-call: the lock serialises every calendar call.
    """
    with _QUIET_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield
