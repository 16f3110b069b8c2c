"""The ``ccxt`` adapter: public OHLCV of any ccxt exchange (``data.exchange``), no key needed.

Uses ``ccxt.async_support`` (aiohttp) with ccxt's own rate limiter on; ``data.base_url`` rebases
every REST endpoint of the exchange onto another host (a gateway, or a local fake in tests).
Pages by ``since`` (the last open time + 1 ms) until the range is covered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import ccxt.async_support as ccxt_async
from ccxt.base import errors as ccxt_errors

from aistock_actors.config.sections import DataConfig
from aistock_actors.errors import ConfigError
from aistock_actors.sources.base import (
    TIMEFRAME_NS,
    Page,
    RetryableError,
    SourceError,
    parse_retry_after,
    with_retries,
)

_MS = 10**6


class CcxtSource:
    """Bars from a ccxt exchange; see the module docstring."""

    name = "ccxt"

    def __init__(self, data: DataConfig, api_key: str = "", api_secret: str = "") -> None:
        exchange_class = getattr(ccxt_async, data.exchange, None)
        if data.exchange not in ccxt_async.exchanges or exchange_class is None:
            raise ConfigError(f"data.exchange: unknown ccxt exchange {data.exchange!r}")
        options: dict[str, Any] = {"defaultType": "spot"}
        if data.exchange.startswith("binance"):  # spot markets only: one exchangeInfo request
            options["fetchMarkets"] = {"types": ["spot"]}
        settings: dict[str, Any] = {
            "enableRateLimit": True,
            "enableLastJsonResponse": True,  # tells a malformed answer from an empty one
            "timeout": int(data.request_timeout_seconds * 1000),
            "options": options,
        }
        if api_key:
            settings |= {"apiKey": api_key, "secret": api_secret}
        self.exchange: Any = exchange_class(settings)
        if data.base_url:
            self.exchange.urls["api"] = rebase_urls(self.exchange.urls["api"], data.base_url)
        self.timeframe = data.timeframe
        self.tf_ns = TIMEFRAME_NS[data.timeframe]
        self.limit = data.page_limit
        self.attempts = data.max_attempts

    async def pages(self, symbol: str, start_ns: int, end_ns: int) -> AsyncIterator[Page]:
        await self._call(self.exchange.load_markets)
        since_ms = start_ns // _MS
        end_ms = end_ns // _MS
        max_pages = (end_ns - start_ns) // (self.tf_ns * max(1, self.limit)) + 20
        for _ in range(max_pages):
            if since_ms >= end_ms:
                return
            rows = await self._call(
                lambda s=since_ms: self.exchange.fetch_ohlcv(
                    symbol, self.timeframe, since=s, limit=self.limit, params={"until": end_ms - 1}
                )
            )
            if self.exchange.last_json_response is None and self.exchange.last_http_response:
                raise SourceError(f"{symbol}: malformed JSON answer from {self.exchange.id}")
            page = _page(symbol, rows)
            if len(page.timestamps) == 0:
                return
            yield page
            newest = int(page.timestamps.max()) // _MS
            if newest < since_ms or newest + self.tf_ns // _MS >= end_ms:
                return  # no progress (``since`` ignored), or the range is covered
            since_ms = newest + 1
        raise SourceError(f"{symbol}: more than {max_pages} pages for one range; giving up")

    async def close(self) -> None:
        await self.exchange.close()

    async def _call(self, fn: Any) -> Any:
        async def once() -> Any:
            try:
                return await fn()
            except (ccxt_errors.RateLimitExceeded, ccxt_errors.DDoSProtection) as exc:
                headers = self.exchange.last_response_headers or {}
                after = parse_retry_after(headers.get("Retry-After") or headers.get("retry-after"))
                raise RetryableError(f"rate limited (429): {_short(exc)}", after) from exc
            except ccxt_errors.NetworkError as exc:  # timeouts, refused, 5xx
                raise RetryableError(f"{type(exc).__name__}: {_short(exc)}") from exc
            except ccxt_errors.BadSymbol as exc:
                raise SourceError(f"unknown symbol: {_short(exc)}") from exc
            except ccxt_errors.BaseError as exc:
                raise SourceError(f"{type(exc).__name__}: {_short(exc)}") from exc
            except (TypeError, ValueError, KeyError, IndexError) as exc:  # malformed answers
                raise SourceError(f"malformed answer: {type(exc).__name__}: {_short(exc)}") from exc

        return await with_retries(self.attempts, once)


def rebase_urls(urls: Any, base_url: str) -> Any:
    """Every URL in ccxt's ``urls['api']`` (nested dicts) with its scheme and host replaced."""
    base = base_url.rstrip("/")
    if isinstance(urls, dict):
        return {key: rebase_urls(value, base) for key, value in urls.items()}
    if isinstance(urls, str) and "://" in urls:
        parts = urlsplit(urls)
        return base + parts.path + (f"?{parts.query}" if parts.query else "")
    return urls


def _page(symbol: str, rows: Any) -> Page:
    if not isinstance(rows, list):
        raise SourceError(f"{symbol}: malformed OHLCV answer (not a list)")
    try:
        return Page.of([(int(r[0]) * _MS, *(float(v) for v in r[1:6])) for r in rows])  # type: ignore[misc]
    except (TypeError, ValueError, IndexError) as exc:
        raise SourceError(f"{symbol}: malformed OHLCV row: {exc}") from exc


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300]
