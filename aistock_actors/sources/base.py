"""The one interface every market-data adapter implements, and what the adapters share.

A :class:`Source` yields raw pages of bars (int64 ns UTC open times, ``(n, 5)`` float64 values)
for one symbol and a half-open time range; validation, de-duplication, the closed-bar rule and
storage are :mod:`aistock_actors.sources.fetch`'s, so an adapter only speaks its provider's REST.
Transient failures are retried here (bounded attempts, ``Retry-After`` honoured) and surface as
:class:`SourceError`.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from aistock_actors.config.sections import DataConfig
from aistock_actors.errors import ConfigError, DataError

T = TypeVar("T")

TIMEFRAME_NS = {
    "1m": 60 * 10**9,
    "5m": 300 * 10**9,
    "15m": 900 * 10**9,
    "1h": 3600 * 10**9,
    "1d": 86_400 * 10**9,
}
"""Bar length of each ``data.timeframe`` in nanoseconds."""

MAX_RETRY_AFTER_SECONDS = 120.0
"""A longer ``Retry-After`` is capped (the step's timeout bounds the whole fetch anyway)."""


class SourceError(DataError):
    """A provider request failed after its retries (network, HTTP status, malformed answer)."""


class RetryableError(SourceError):
    """A failure worth another attempt; ``retry_after`` is the provider's wish in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Page:
    """Bars of one provider answer, as the provider sent them (unsorted, maybe duplicated)."""

    timestamps: NDArray[np.int64]
    values: NDArray[np.float64]

    @staticmethod
    def of(rows: list[tuple[int, float, float, float, float, float]]) -> Page:
        """Build a page from ``(ts_ns, open, high, low, close, volume)`` rows."""
        array = np.array(rows, dtype=np.float64).reshape(-1, 6)
        timestamps = np.array([row[0] for row in rows], dtype=np.int64)
        return Page(timestamps, np.ascontiguousarray(array[:, 1:]))


class Source(Protocol):
    """A provider of historical and live bars (see the module docstring)."""

    name: str

    def pages(self, symbol: str, start_ns: int, end_ns: int) -> AsyncIterator[Page]:
        """Bars of ``symbol`` with ``start_ns <= open time < end_ns``, page by page, ascending."""
        ...

    async def close(self) -> None:
        """Release the connections (called once, after the last ``pages``)."""
        ...


def store_symbol(symbol: str) -> str:
    """The bar store's name of a provider symbol: ``BTC/USDT`` -> ``BTC-USDT``."""
    return symbol.strip().upper().replace("/", "-").replace(":", "_")


def credentials(data: DataConfig, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The API key and secret named by ``data.api_key_env``/``api_secret_env`` (``""`` if unset
    in the config); a named variable that is missing or empty is a ``ConfigError`` naming it."""
    env = os.environ if environ is None else environ
    out: list[str] = []
    for key, name in (
        ("data.api_key_env", data.api_key_env),
        ("data.api_secret_env", data.api_secret_env),
    ):
        if name is None:
            out.append("")
            continue
        value = env.get(name, "")
        if not value:
            raise ConfigError(f"{key}: environment variable {name} is not set (or empty)")
        out.append(value)
    return out[0], out[1]


def parse_retry_after(value: str | None) -> float | None:
    """Seconds of a ``Retry-After`` header (delta-seconds form); None if absent or unusable."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS) if seconds == seconds else None


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome is not None else None
    if isinstance(error, RetryableError) and error.retry_after is not None:
        return error.retry_after
    return float(min(8.0, 0.25 * 2 ** (state.attempt_number - 1) * (1 + random.random() / 5)))


async def with_retries(attempts: int, call: Callable[[], Awaitable[T]]) -> T:
    """``call()`` with at most ``attempts`` tries on :class:`RetryableError`; the last error is
    raised as is (the caller's ``asyncio.timeout`` bounds the total time)."""
    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=_wait,
        retry=retry_if_exception_type(RetryableError),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover
