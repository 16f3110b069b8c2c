"""The ``alpaca`` adapter: US-equity bars from Alpaca's market-data API over aiohttp.

``GET {base_url}/v2/stocks/bars?symbols=..&timeframe=..&start=..&end=..&limit=..&feed=..`` with
the ``APCA-API-KEY-ID``/``APCA-API-SECRET-KEY`` headers; the answer is ``{"bars": {SYMBOL:
[{"t", "o", "h", "l", "c", "v", ...}]}, "next_page_token": ...}`` and paging repeats the request
with ``page_token`` until the token is null. 429 waits ``Retry-After``; 5xx, timeouts and refused
connections are retried; anything else fails the symbol for this step.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from aistock_actors.config.sections import DataConfig
from aistock_actors.sources.base import (
    TIMEFRAME_NS,
    Page,
    RetryableError,
    SourceError,
    parse_retry_after,
    with_retries,
)

DEFAULT_BASE_URL = "https://data.alpaca.markets"
ALPACA_TIMEFRAMES = {"1m": "1Min", "5m": "5Min", "15m": "15Min", "1h": "1Hour", "1d": "1Day"}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class AlpacaSource:
    """Bars from Alpaca's ``/v2/stocks/bars``; see the module docstring."""

    name = "alpaca"

    def __init__(self, data: DataConfig, api_key: str, api_secret: str) -> None:
        self.base_url = (data.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.headers = {"APCA-API-KEY-ID": api_key, "APCA-API-SECRET-KEY": api_secret}
        self.timeframe = ALPACA_TIMEFRAMES[data.timeframe]
        self.tf_ns = TIMEFRAME_NS[data.timeframe]
        self.limit = min(data.page_limit, 10_000)
        self.feed = data.feed
        self.attempts = data.max_attempts
        self.timeout = aiohttp.ClientTimeout(total=data.request_timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    async def pages(self, symbol: str, start_ns: int, end_ns: int) -> AsyncIterator[Page]:
        params = {
            "symbols": symbol,
            "timeframe": self.timeframe,
            "start": _rfc3339(start_ns),
            "end": _rfc3339(end_ns - 1000),
            "limit": str(self.limit),
            "feed": self.feed,
            "adjustment": "raw",
            "sort": "asc",
        }
        max_pages = (end_ns - start_ns) // (self.tf_ns * self.limit) + 20
        token: str | None = None
        for _ in range(max_pages):
            query = params if token is None else {**params, "page_token": token}
            body = await with_retries(self.attempts, functools.partial(self._get, query))
            page, token = _parse(symbol, body)
            yield page
            if not token:
                return
        raise SourceError(f"{symbol}: more than {max_pages} pages for one range; giving up")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _get(self, query: dict[str, str]) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self.headers, timeout=self.timeout)
        url = f"{self.base_url}/v2/stocks/bars"
        try:
            async with self._session.get(url, params=query) as response:
                text = await response.text()
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except TimeoutError as exc:
            raise RetryableError("request timed out") from exc
        except aiohttp.ClientError as exc:
            raise RetryableError(f"{type(exc).__name__}: {exc}") from exc
        if status == 429:
            raise RetryableError("rate limited (429)", parse_retry_after(retry_after))
        if status >= 500:
            raise RetryableError(f"HTTP {status}")
        if status != 200:
            raise SourceError(f"HTTP {status}: {' '.join(text.split())[:200]}")
        try:
            return json.loads(text)
        except ValueError as exc:
            raise SourceError(f"malformed JSON answer: {exc}") from exc


def _rfc3339(ns: int) -> str:
    moment = _EPOCH + dt.timedelta(microseconds=ns // 1000)
    return moment.isoformat().replace("+00:00", "Z")


def _parse(symbol: str, body: Any) -> tuple[Page, str | None]:
    if not isinstance(body, dict) or not isinstance(body.get("bars"), dict | None):
        raise SourceError(f"{symbol}: malformed answer (no 'bars' object)")
    token = body.get("next_page_token")
    if token is not None and not isinstance(token, str):
        raise SourceError(f"{symbol}: malformed answer (next_page_token is not a string)")
    bars = (body.get("bars") or {}).get(symbol) or []
    rows: list[tuple[int, float, float, float, float, float]] = []
    try:
        for bar in bars:
            moment = dt.datetime.fromisoformat(str(bar["t"]).replace("Z", "+00:00"))
            delta = moment - _EPOCH
            ns = (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000
            rows.append((ns, *(float(bar[k]) for k in ("o", "h", "l", "c", "v"))))  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError) as exc:
        raise SourceError(f"{symbol}: malformed bar in answer: {exc!r}") from exc
    return Page.of(rows), token or None
