"""A fake market-data provider on 127.0.0.1 speaking Binance's and Alpaca's documented REST.

Binance spot (what ``ccxt.binance`` calls): ``GET /api/v3/exchangeInfo`` and ``GET
/api/v3/klines?symbol&interval&startTime&endTime&limit`` (rows of ``[openTime, "o", "h", "l",
"c", "v", closeTime, ...]``). Alpaca market data: ``GET /v2/stocks/bars?symbols&timeframe&start&
end&limit&page_token`` (``{"bars": {SYM: [{"t", "o", "h", "l", "c", "v"}]}, "next_page_token"}``),
keys in ``APCA-API-KEY-ID``/``APCA-API-SECRET-KEY``.

Bars exist from ``origin`` up to the ``now`` callable (the test's FakeClock); the bar still forming
at ``now`` is served too, as real providers do. ``faults`` is a queue consumed one per bar request
(``("429", retry_after)``, ``("500",)``, ``("sleep", s)``, ``("garbage",)``); ``overrides`` replaces
a bar's values (revisions, bad bars); ``missing`` drops bars (gaps); ``overlap`` makes each page
start that many bars before the one asked (duplicates across pages).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from _support.localhttp import ThreadedServer

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
TF_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000, "1d": 86_400_000}
ALPACA_TF = {"1Min": "1m", "5Min": "5m", "15Min": "15m", "1Hour": "1h", "1Day": "1d"}


def bar_values(symbol: str, t_ms: int, tf_ms: int) -> tuple[float, float, float, float, float]:
    """Deterministic, valid OHLCV of a bar."""
    i = t_ms // tf_ms
    base = 100.0 + (sum(map(ord, symbol)) % 17) + (i % 29) * 0.5
    o, c = base, base + (0.25 if i % 3 else -0.25)
    return o, max(o, c) + 0.5, min(o, c) - 0.5, c, 10.0 + i % 5


class FakeMarket(ThreadedServer):
    """See the module docstring."""

    def __init__(
        self,
        now_ms: Callable[[], int],
        origin: dt.datetime,
        timeframe: str,
        *,
        page_max: int = 1000,
        forming_fraction: float = 0.5,
    ) -> None:
        self.now_ms = now_ms
        self.origin_ms = int(origin.timestamp() * 1000)
        self.tf_ms = TF_MS[timeframe]
        self.page_max = page_max
        self.forming_fraction = forming_fraction
        self.faults: list[tuple[Any, ...]] = []
        self.overrides: dict[tuple[str, int], tuple[float, ...]] = {}
        self.missing: set[tuple[str, int]] = set()
        self.overlap = 0
        self.delay = 0.0
        """Seconds every bar request waits before answering (a slow provider)."""
        self.echo_key = False
        """Alpaca answers 422 with the caller's key in the message (a leaky provider)."""
        self.series: dict[str, Any] = {}
        """Exchange symbol -> ``(n, 5)`` values of bars 0..n-1 from ``origin`` (instead of the
        generated ones; no bar after them)."""
        self.pairs = [("BTC", "USDT"), ("ETH", "USDT"), ("SOL", "USDT")]
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self.times: list[float] = []
        """``time.monotonic()`` of each bar request, in order."""
        self.bar_requests = 0
        self._lock = threading.Lock()
        super().__init__(self.add_routes)

    # --- the data ---------------------------------------------------------------------------

    def bars(self, symbol: str, start_ms: int, end_ms: int, limit: int) -> list[tuple[Any, ...]]:
        """Bars with start <= open <= end, at most ``limit``, the forming one included."""
        now = self.now_ms()
        first = max(self.origin_ms, -(-start_ms // self.tf_ms) * self.tf_ms)
        first -= self.overlap * self.tf_ms
        first = max(first, self.origin_ms)
        out: list[tuple[Any, ...]] = []
        t = first
        while t <= min(end_ms, now) and len(out) < limit:
            index = (t - self.origin_ms) // self.tf_ms
            if symbol in self.series and index >= len(self.series[symbol]):
                break
            if (symbol, t) not in self.missing:
                values = self.overrides.get((symbol, t)) or (
                    tuple(float(x) for x in self.series[symbol][index])
                    if symbol in self.series
                    else bar_values(symbol, t, self.tf_ms)
                )
                if t + self.tf_ms > now:  # forming: a partial bar that will still change
                    o, h, lo, c, v = values
                    values = (o, h, lo, (o + c) / 2, v * self.forming_fraction)
                out.append((t, *values))
            t += self.tf_ms
        return out

    def _fault(self) -> web.Response | float | None:
        with self._lock:
            self.bar_requests += 1
            fault = self.faults.pop(0) if self.faults else None
        if fault is None:
            return self.delay or None
        kind = fault[0]
        if kind == "429":
            return web.Response(status=429, text="{}", headers={"Retry-After": str(fault[1])})
        if kind == "500":
            return web.Response(status=500, text="oops")
        if kind == "garbage":
            return web.Response(status=200, text="{not json", content_type="application/json")
        if kind == "sleep":
            return float(fault[1])
        raise AssertionError(f"unknown fault {fault}")

    # --- Binance ----------------------------------------------------------------------------

    async def _exchange_info(self, request: web.Request) -> web.Response:
        symbols = [
            {
                "symbol": base + quote,
                "status": "TRADING",
                "baseAsset": base,
                "quoteAsset": quote,
                "baseAssetPrecision": 8,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "orderTypes": ["LIMIT", "MARKET"],
                "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "permissions": ["SPOT"],
                "permissionSets": [["SPOT"]],
                "filters": [],
            }
            for base, quote in self.pairs
        ]
        body = {"timezone": "UTC", "serverTime": self.now_ms(), "symbols": symbols}
        return web.json_response(body)

    async def _klines(self, request: web.Request) -> web.Response:
        self._record(request)
        fault = self._fault()
        if isinstance(fault, web.Response):
            return fault
        if isinstance(fault, float):
            await asyncio.sleep(fault)
        q = request.query
        symbol = q["symbol"]
        limit = min(int(q.get("limit", 500)), self.page_max)
        start = int(q.get("startTime", self.origin_ms))
        end = int(q.get("endTime", 2**62))
        rows = [
            [t, *(repr(v) for v in vals[:5]), t + self.tf_ms - 1, "0", 1, "0", "0", "0"]
            for t, *vals in self.bars(symbol, start, end, limit)
        ]
        return web.json_response(rows)

    # --- Alpaca -----------------------------------------------------------------------------

    async def _alpaca_bars(self, request: web.Request) -> web.Response:
        self._record(request)
        if not request.headers.get("APCA-API-KEY-ID") or not request.headers.get(
            "APCA-API-SECRET-KEY"
        ):
            return web.json_response({"message": "forbidden"}, status=403)
        if self.echo_key:
            key = request.headers["APCA-API-KEY-ID"]
            return web.json_response({"message": f"invalid request for key {key}"}, status=422)
        fault = self._fault()
        if isinstance(fault, web.Response):
            return fault
        if isinstance(fault, float):
            await asyncio.sleep(fault)
        q = request.query
        symbol = q["symbols"]
        assert ALPACA_TF[q["timeframe"]] and TF_MS[ALPACA_TF[q["timeframe"]]] == self.tf_ms
        limit = min(int(q.get("limit", 1000)), self.page_max)
        start = int(q["page_token"]) if "page_token" in q else _ms(q["start"])
        end = _ms(q["end"]) if "end" in q else 2**62
        rows = self.bars(symbol, start, end, limit + 1)
        token = str(rows[limit][0]) if len(rows) > limit else None
        bars = [
            {"t": _rfc(t), "o": o, "h": h, "l": lo, "c": c, "v": v, "n": 1, "vw": c}
            for t, o, h, lo, c, v in rows[:limit]
        ]
        return web.json_response({"bars": {symbol: bars}, "next_page_token": token})

    def _record(self, request: web.Request) -> None:
        with self._lock:
            self.requests.append((request.path, dict(request.query), dict(request.headers)))
            self.times.append(time.monotonic())

    # --- server -----------------------------------------------------------------------------

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_get("/api/v3/klines", self._klines)
        app.router.add_get("/v2/stocks/bars", self._alpaca_bars)


def _ms(text: str) -> int:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return round(moment.timestamp() * 1000)


def _rfc(t_ms: int) -> str:
    return (EPOCH + dt.timedelta(milliseconds=t_ms)).isoformat().replace("+00:00", "Z")


def dumps(obj: Any) -> str:
    return json.dumps(obj)
