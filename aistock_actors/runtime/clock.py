"""The one clock: market time and wall time, handed to the runtime, every actor and every store.

Nothing else in the package reads the system clock (a test greps for it). A daemon runs on
:class:`SystemClock`; a replay drives the market time of a :class:`SystemClock` one bar at a
time (:meth:`SystemClock.set_market_time`) while wall time keeps running; tests hand in a
:class:`FakeClock` and move it themselves.

- **Wall time** (:meth:`Clock.now`, :meth:`Clock.time`) stamps what happened when: audit records,
  alerts, heartbeats, file names.
- **Monotonic time** (:meth:`Clock.monotonic`) measures durations and deadlines; it never jumps.
- **Market time** (:meth:`Clock.market_now`) is the newest bar time the system may see: the wall
  time in a live daemon, the replay cursor in a replay. Bars after it do not exist yet.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Protocol, runtime_checkable

__all__ = [
    "SYSTEM_CLOCK",
    "Clock",
    "FakeClock",
    "SystemClock",
    "epoch_ns",
    "from_epoch_ns",
    "iso_utc",
    "market_iso",
    "utc",
]


def utc(value: dt.datetime) -> dt.datetime:
    """``value`` as an aware UTC datetime (a naive value is taken to be UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def epoch_ns(value: dt.datetime) -> int:
    """``value`` in int64 nanoseconds since the epoch (UTC), exactly (bar timestamps' unit)."""
    delta = utc(value) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def from_epoch_ns(ns: int) -> dt.datetime:
    """The aware UTC datetime of int64 nanoseconds since the epoch (to the microsecond)."""
    return _EPOCH + dt.timedelta(microseconds=ns // 1000)


def market_iso(clock: Clock) -> str | None:
    """The market time a replay drives (ISO-8601 UTC with a ``Z``), or None on a live clock:
    the ``as_of`` of audit records and alerts."""
    return iso_utc(clock.market_now()) if clock.is_simulated() else None


def iso_utc(value: dt.datetime, timespec: str = "seconds") -> str:
    """ISO-8601 UTC with a ``Z`` (``2026-01-02T03:04:05Z``)."""
    return utc(value).isoformat(timespec=timespec).replace("+00:00", "Z")


@runtime_checkable
class Clock(Protocol):
    """What the system asks of time; see the module docstring."""

    def now(self) -> dt.datetime:
        """Wall time, timezone-aware UTC."""
        ...

    def time(self) -> float:
        """Wall time in seconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (durations and deadlines only)."""
        ...

    def market_now(self) -> dt.datetime:
        """The newest market time the system may see (wall time unless a replay drives it)."""
        ...

    def is_simulated(self) -> bool:
        """True while a replay drives the market time."""
        ...


class SystemClock:
    """The operating system's clocks, with an optional market time driven by a replay."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._market: dt.datetime | None = None

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def market_now(self) -> dt.datetime:
        with self._lock:
            market = self._market
        return market if market is not None else self.now()

    def is_simulated(self) -> bool:
        with self._lock:
            return self._market is not None

    def set_market_time(self, value: dt.datetime | None) -> None:
        """Drive the market time (a replay); ``None`` returns to the wall clock."""
        with self._lock:
            self._market = None if value is None else utc(value)


SYSTEM_CLOCK = SystemClock()
"""The process's clock for code with no clock handed in (operator commands, scripts)."""


class FakeClock:
    """A clock that moves only when told: for tests and deterministic tools."""

    def __init__(self, start: dt.datetime | None = None, monotonic: float = 1000.0) -> None:
        self._lock = threading.Lock()
        self._wall = utc(start or dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        self._mono = monotonic
        self._market: dt.datetime | None = None

    def now(self) -> dt.datetime:
        with self._lock:
            return self._wall

    def time(self) -> float:
        with self._lock:
            return self._wall.timestamp()

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def market_now(self) -> dt.datetime:
        with self._lock:
            return self._market if self._market is not None else self._wall

    def is_simulated(self) -> bool:
        with self._lock:
            return self._market is not None

    def advance(self, seconds: float) -> None:
        """Move wall and monotonic time forward together."""
        with self._lock:
            self._wall += dt.timedelta(seconds=seconds)
            self._mono += seconds

    def set_market_time(self, value: dt.datetime | None) -> None:
        """Drive the market time; ``None`` follows the wall time again."""
        with self._lock:
            self._market = None if value is None else utc(value)
