"""One HTTP request with bounded, jittered retries — the only way this package talks HTTP.

Every outgoing call (remote kill switch, health report, webhook) goes through
:func:`request_with_retry`, on the network loop, with the loop's single ``ClientSession``.

Bounds: at most ``max_attempts`` attempts; no new attempt once ``max_seconds`` would be passed
(tenacity's ``stop_before_delay``); each attempt under ``attempt_timeout``; and a hard
``asyncio.timeout`` around the whole call. Backoff is tenacity's full-jitter exponential
(``wait_random_exponential``). Only the transient branch is retried: connection errors,
timeouts, HTTP 408/429/5xx. Any other answer is a :class:`PermanentHTTPError` and ends the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

import aiohttp
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from aistock_actors.config import MonitoringConfig
from aistock_actors.errors import (
    PermanentHTTPError,
    TransientHTTPError,
    TransientNetworkError,
)
from aistock_actors.runtime.clock import SYSTEM_CLOCK

T = TypeVar("T")

MAX_BODY_BYTES = 64 * 1024
"""Answers are read up to this size: a kill switch or a webhook has nothing long to say."""

TRANSIENT_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one call tries; see the module docstring."""

    max_attempts: int
    max_seconds: float
    attempt_timeout: float
    backoff_base: float
    backoff_max: float

    @classmethod
    def from_config(cls, mon: MonitoringConfig) -> RetryPolicy:
        """The webhook / health-report policy of the ``monitoring`` section."""
        return cls(
            max_attempts=mon.retry_max_attempts,
            max_seconds=mon.retry_max_seconds,
            attempt_timeout=mon.http_timeout_seconds,
            backoff_base=mon.retry_backoff_base_seconds,
            backoff_max=mon.retry_backoff_max_seconds,
        )

    def within(self, budget: float, attempt_timeout: float | None = None) -> RetryPolicy:
        """This policy squeezed so one whole call ends within ``budget`` seconds.

        Half the budget for starting retries, at most half for the last attempt.
        """
        half = max(budget / 2.0, 0.01)
        timeout = self.attempt_timeout if attempt_timeout is None else attempt_timeout
        return replace(
            self,
            max_seconds=min(self.max_seconds, half),
            attempt_timeout=min(timeout, half),
            backoff_max=min(self.backoff_max, half),
        )

    @property
    def hard_limit(self) -> float:
        """Seconds after which the call is cancelled whatever tenacity thinks."""
        return self.max_seconds + self.attempt_timeout + 0.5


@dataclass(frozen=True)
class HTTPResult(Generic[T]):
    """What one call (all attempts) came to."""

    ok: bool
    attempts: int
    elapsed: float
    value: T | None = None
    status: int | None = None
    error: str = ""


def expect_2xx(status: int, _body: bytes) -> None:
    """The default answer check: 2xx is success, 408/429/5xx transient, the rest permanent."""
    if 200 <= status < 300:
        return
    raise_for_status(status)


def raise_for_status(status: int) -> None:
    """Raise the transient or permanent error an unexpected HTTP status stands for."""
    if status in TRANSIENT_STATUSES:
        raise TransientHTTPError(f"HTTP {status}", status)
    raise PermanentHTTPError(f"HTTP {status}", status)


async def _attempt(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    json_body: Any,
    headers: Mapping[str, str] | None,
    timeout: float,
    parse: Callable[[int, bytes], T],
) -> tuple[int, T]:
    try:
        async with session.request(
            method,
            url,
            json=json_body,
            headers=dict(headers or {}),
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as response:
            body = await response.content.read(MAX_BODY_BYTES)
            return response.status, parse(response.status, body)
    except (TransientNetworkError, PermanentHTTPError):
        raise
    except TimeoutError as exc:  # aiohttp's timeouts subclass TimeoutError
        raise TransientNetworkError(f"timed out after {timeout:g}s") from exc
    except aiohttp.ClientError as exc:
        raise TransientNetworkError(f"{type(exc).__name__}: {exc}") from exc


async def request_with_retry(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    policy: RetryPolicy,
    parse: Callable[[int, bytes], T],
    json_body: Any = None,
    headers: Mapping[str, str] | None = None,
    redact: Callable[[str], str] = lambda text: text,
) -> HTTPResult[T]:
    """Make the call, retrying the transient failures within ``policy``; never raises
    (except ``CancelledError``). ``error`` is masked with ``redact``: exception texts of HTTP
    libraries quote the URL, and a webhook URL is a secret."""
    started = SYSTEM_CLOCK.monotonic()
    attempts = 0
    last_status: int | None = None
    value: T | None = None
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_attempts) | stop_before_delay(policy.max_seconds),
        wait=wait_random_exponential(multiplier=policy.backoff_base, max=policy.backoff_max),
        retry=retry_if_exception_type(TransientNetworkError),
        reraise=True,
    )
    try:
        async with asyncio.timeout(policy.hard_limit):
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    last_status, value = await _attempt(
                        session,
                        method,
                        url,
                        json_body=json_body,
                        headers=headers,
                        timeout=policy.attempt_timeout,
                        parse=parse,
                    )
    except (TransientNetworkError, PermanentHTTPError) as exc:
        return HTTPResult(
            ok=False,
            attempts=attempts,
            elapsed=SYSTEM_CLOCK.monotonic() - started,
            status=getattr(exc, "status", None),
            error=redact(str(exc)),
        )
    except TimeoutError:
        return HTTPResult(
            ok=False,
            attempts=attempts,
            elapsed=SYSTEM_CLOCK.monotonic() - started,
            error=f"gave up after {policy.hard_limit:g}s",
        )
    return HTTPResult(
        ok=True,
        attempts=attempts,
        elapsed=SYSTEM_CLOCK.monotonic() - started,
        value=value,
        status=last_status,
    )
