"""Page a source's CLOSED bars newer than the store's cursor into the ``BarStore``.

The cursor is the store's newest bar of the symbol (no separate cursor file): each page is
stored as soon as it is checked, so a crash mid-fetch loses nothing and the next run resumes
after the last stored bar. Per page: bars still forming (open time + timeframe after the clock's
now) and bars outside the range are dropped, duplicates (in a page or across pages) are kept
once, bars already stored are compared with the store (a provider revising history is alerted
and the stored bar kept), and the new bars are validated exactly like CSV rows
(:func:`aistock_actors.core.data.bars.parse`): the bars before the first bad one are stored, the
bad one is alerted with its symbol, time and reason, and the symbol stops for this run. Gaps
(bars the calendar says should exist) are alerted and the bars around them stored.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aistock_actors.config.sections import DataConfig
from aistock_actors.core.data.bars import FIELDS, format_timestamp, parse
from aistock_actors.errors import DataError
from aistock_actors.sources.base import TIMEFRAME_NS, Page, Source, SourceError, store_symbol
from aistock_actors.sources.calendar import MarketCalendar
from aistock_actors.store.alerts import Severity
from aistock_actors.store.bars import BarStore

REVISION_OVERLAP_BARS = 3
"""Stored bars fetched again each run to notice a provider revising recent history."""


@dataclass(frozen=True)
class SourceAlert:
    """Something the operator must hear about (raised by the caller as an alert)."""

    level: Severity
    code: str
    symbol: str
    message: str


@dataclass
class FetchReport:
    """What one fetch run did: bars added per symbol, failed symbols and the alerts to raise."""

    per_symbol: dict[str, int] = field(default_factory=dict)
    """Bars added per store symbol whose fetch completed (zero included)."""
    failures: dict[str, str] = field(default_factory=dict)
    """Store symbol -> why its fetch failed or stopped (its earlier bars are kept)."""
    alerts: list[SourceAlert] = field(default_factory=list)
    pages: int = 0
    fetch_seconds: float = 0.0
    """Time spent waiting for the provider (paging), as measured by the loop's clock."""
    store_seconds: float = 0.0
    """Time spent validating and storing."""

    @property
    def bars_added(self) -> int:
        return sum(self.per_symbol.values()) + sum(self.partial.values())

    partial: dict[str, int] = field(default_factory=dict)
    """Bars added for symbols that then failed."""


def iso_date_ns(text: str) -> int:
    """Midnight UTC of an ISO date as int64 ns."""
    moment = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    return int(moment.timestamp()) * 10**9


def closed_end_ns(now: dt.datetime, timeframe: str) -> int:
    """Exclusive bound of the open times of closed bars: a bar opened at ``t`` is closed when
    ``t + timeframe <= now``."""
    now_ns = int(now.timestamp() * 1e6) * 1000
    return now_ns - TIMEFRAME_NS[timeframe] + 1


async def fetch_into_store(
    source: Source,
    store: BarStore,
    data: DataConfig,
    calendar: MarketCalendar,
    now: dt.datetime,
    *,
    budget_seconds: float,
    start_ns: int | None = None,
    end_ns: int | None = None,
    on_bars: Callable[[str, int], None] | None = None,
) -> FetchReport:
    """Fetch every ``data.symbols`` into ``store`` within ``budget_seconds`` (see module doc)."""
    report = FetchReport()
    end = closed_end_ns(now, data.timeframe)
    if end_ns is not None:
        end = min(end, end_ns)
    first = iso_date_ns(data.history_start) if start_ns is None else start_ns
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget_seconds
    for symbol in data.symbols:
        name = store_symbol(symbol)
        left = deadline - loop.time()
        if left <= 0:
            report.failures[name] = "not fetched: the step's time budget was spent"
            continue
        job = _SymbolFetch(source, store, data, calendar, symbol, report, on_bars)
        try:
            async with asyncio.timeout(left):
                await job.run(first, end)
        except TimeoutError:
            job.fail("timed out (the step's time budget was spent)")
        except SourceError as exc:
            job.fail(str(exc))
    return report


class _SymbolFetch:
    def __init__(
        self,
        source: Source,
        store: BarStore,
        data: DataConfig,
        calendar: MarketCalendar,
        symbol: str,
        report: FetchReport,
        on_bars: Callable[[str, int], None] | None,
    ) -> None:
        self.source, self.store, self.calendar = source, store, calendar
        self.symbol, self.name = symbol, store_symbol(symbol)
        self.tf = TIMEFRAME_NS[data.timeframe]
        self.report, self.on_bars = report, on_bars
        self.added = 0
        self.revised: list[int] = []
        self.gaps: list[tuple[int, int, int]] = []

    def alert(self, level: Severity, code: str, message: str) -> None:
        self.report.alerts.append(SourceAlert(level, code, self.symbol, message))

    def fail(self, reason: str) -> None:
        self.report.failures[self.name] = reason
        self.report.partial[self.name] = self.added
        self._summaries()
        self.alert(
            "error",
            "data_fetch_failed",
            f"{self.symbol}: fetch failed: {reason}; {self.added} new bar(s) stored before it, "
            "earlier bars kept; retried next cycle",
        )

    async def run(self, first: int, end: int) -> None:
        last = self.store.last_timestamp(self.name)
        start = first if last is None else last - REVISION_OVERLAP_BARS * self.tf
        if start >= end:
            self.report.per_symbol[self.name] = 0
            return
        loop = asyncio.get_running_loop()
        pages = self.source.pages(self.symbol, start, end).__aiter__()
        while True:
            began = loop.time()
            try:
                page = await pages.__anext__()
            except StopAsyncIteration:
                break
            stored = loop.time()
            self.report.fetch_seconds += stored - began
            self.report.pages += 1
            problem = self._store_page(page, start, end)
            self.report.store_seconds += loop.time() - stored
            if problem is not None:
                self.report.failures[self.name] = problem
                self.report.partial[self.name] = self.added
                self._summaries()
                return
        self.report.per_symbol[self.name] = self.added
        self._summaries()

    def _store_page(self, page: Page, start: int, end: int) -> str | None:
        order = np.argsort(page.timestamps, kind="stable")
        ts, values = page.timestamps[order], page.values[order]
        keep = (ts >= start) & (ts < end)  # drops the forming bar and anything out of range
        ts, values = ts[keep], values[keep]
        ts, first_seen = np.unique(ts, return_index=True)  # duplicates in the page: kept once
        values = values[first_seen]
        last = self.store.last_timestamp(self.name)
        if last is not None:
            self._compare_stored(ts[ts <= last], values[ts <= last])
            newer = ts > last
            ts, values = ts[newer], values[newer]
        if len(ts) == 0:
            return None
        good_ts, good_values, problem = _validate(ts, values, last)
        self._note_gaps(last, good_ts)
        if len(good_ts):
            try:
                added = self.store.append(self.name, good_ts, good_values)
            except DataError as exc:
                problem = f"store refused the bars: {exc}"
                added = 0
            self.added += added
            if self.on_bars is not None:
                self.on_bars(self.name, added)
        if problem is not None:
            self.alert(
                "error",
                "bar_rejected",
                f"{self.symbol}: {problem}; {self.added} new bar(s) before it stored, earlier "
                "bars kept; fetched again next cycle",
            )
        return problem

    def _compare_stored(self, ts: NDArray[np.int64], values: NDArray[np.float64]) -> None:
        if len(ts) == 0:
            return
        old_ts, old_values = self.store.arrays(self.name)
        at = np.searchsorted(old_ts, ts)
        inside = at < len(old_ts)
        at, ts, values = at[inside], ts[inside], values[inside]
        same_time = old_ts[at] == ts
        differs = same_time & ~np.isclose(old_values[at], values, rtol=1e-9, atol=0).all(axis=1)
        self.revised.extend(int(t) for t in ts[differs])

    def _note_gaps(self, last: int | None, ts: NDArray[np.int64]) -> None:
        previous = last
        for t in ts.tolist():
            if previous is not None and t - previous > self.tf:
                missing = self.calendar.missing_bars(previous, t, self.tf)
                if missing > 0:
                    self.gaps.append((previous, t, missing))
            previous = t

    def _summaries(self) -> None:
        if self.revised:
            when = format_timestamp(self.revised[0])
            self.alert(
                "warning",
                "history_revised",
                f"{self.symbol}: the provider revised {len(self.revised)} stored bar(s) "
                f"(first: {when}); kept the stored bars (delete state/bars/{self.name}.npz and "
                "--download to take the provider's)",
            )
        if self.gaps:
            a, b, missing = self.gaps[0]
            total = sum(g[2] for g in self.gaps)
            self.alert(
                "warning",
                "data_gap",
                f"{self.symbol}: {total} bar(s) missing in {len(self.gaps)} gap(s) (first: "
                f"{missing} between {format_timestamp(a)} and {format_timestamp(b)}); the bars "
                "around them are stored",
            )
        self.revised, self.gaps = [], []


def _validate(
    ts: NDArray[np.int64], values: NDArray[np.float64], last: int | None
) -> tuple[NDArray[np.int64], NDArray[np.float64], str | None]:
    """Check the bars as CSV rows; return the good ones before the first problem, and it."""
    lines = ["timestamp," + ",".join(FIELDS)]
    lines.extend(
        f"{format_timestamp(t)},{','.join(repr(v) for v in row)}"
        for t, row in zip(ts.tolist(), values.tolist(), strict=True)
    )
    parsed = parse("\n".join(lines) + "\n", after=last, max_problems=1)
    if parsed.ok:
        return parsed.timestamps, parsed.values, None
    bad = parsed.problems[0]
    index = (bad.row or 2) - 2
    when = format_timestamp(int(ts[index])) if 0 <= index < len(ts) else "?"
    keep = parsed.rows < (bad.row or 0)
    return parsed.timestamps[keep], parsed.values[keep], f"bar {when} rejected: {bad.reason}"


def describe(report: FetchReport) -> dict[str, Any]:
    """The audit record of a fetch run."""
    return {
        "bars_added": report.bars_added,
        "symbols_ingested": len(report.per_symbol),
        "symbols_failed": sorted(report.failures),
        "pages": report.pages,
    }
