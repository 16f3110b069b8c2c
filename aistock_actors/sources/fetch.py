"""Page a source's CLOSED bars newer than the store's cursor into the ``BarStore``.

The cursor is the store's newest bar of the symbol (no separate cursor file). Checked bars are
stored in batches (:data:`FLUSH_BARS`, each an atomic write), so a crash mid-fetch loses nothing
stored and the next run resumes after the last stored bar. Per page: bars still forming (open
time + timeframe after the clock's now) and bars outside the range are dropped; duplicates (in a
page or across pages) are kept once; bars already stored are compared with the store (a provider
revising history is alerted and the stored bar kept); new bars are validated exactly like CSV
rows (``core/data/bar_checks.py``: the checks and wording of ``parse``). The bars before the
first bad one are stored, the bad one is alerted with its symbol, time and reason, and the
symbol stops for this run. Gaps (bars the calendar says should exist) are alerted and the bars
around them stored.
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
from aistock_actors.core.data.bar_checks import check_arrays
from aistock_actors.core.data.bars import format_timestamp
from aistock_actors.errors import DataError
from aistock_actors.sources.base import TIMEFRAME_NS, Page, Source, SourceError, store_symbol
from aistock_actors.sources.calendar import MarketCalendar
from aistock_actors.store.alerts import Severity
from aistock_actors.store.bars import BarStore

REVISION_OVERLAP_BARS = 3
"""Stored bars fetched again each run to notice a provider revising recent history."""

FLUSH_BARS = 20_000
"""Checked bars are stored once this many are waiting (and at the end of a symbol, or before
it stops): one atomic rewrite per batch, not per page. A crash loses at most the unstored batch,
which the next run fetches again from the cursor."""


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
    end = calendar.closed_end(now, TIMEFRAME_NS[data.timeframe])
    if end_ns is not None:
        end = min(end, end_ns)
    first = iso_date_ns(data.history_start) if start_ns is None else start_ns
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget_seconds
    for symbol in data.symbols:
        name = store_symbol(symbol)
        left = deadline - loop.time()
        if left <= 0:
            why = "not fetched: the step's time budget was spent on the symbols before it"
            report.failures[name] = why
            report.alerts.append(
                SourceAlert(
                    "error", "data_fetch_failed", symbol, f"{symbol}: {why}; retried next cycle"
                )
            )
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
        self.tail: int | None = None
        """The newest bar stored or taken: a page's bars up to it are duplicates."""
        self.pending: list[tuple[NDArray[np.int64], NDArray[np.float64]]] = []
        self.pending_bars = 0
        self.revised: list[int] = []
        self.gaps: list[tuple[int, int, int]] = []

    def alert(self, level: Severity, code: str, message: str) -> None:
        self.report.alerts.append(SourceAlert(level, code, self.symbol, message))

    def fail(self, reason: str) -> None:
        refused = self.flush()
        self.report.failures[self.name] = reason
        self.report.partial[self.name] = self.added
        self._summaries()
        self.alert(
            "error",
            "data_fetch_failed",
            f"{self.symbol}: fetch failed: {reason}; {self.added} new bar(s) stored before it, "
            "earlier bars kept; retried next cycle" + (f" ({refused})" if refused else ""),
        )

    async def run(self, first: int, end: int) -> None:
        last = self.store.last_timestamp(self.name)
        self.tail = last
        start = first if last is None else last - REVISION_OVERLAP_BARS * self.tf
        if start >= end:
            self.report.per_symbol[self.name] = 0
            return
        loop = asyncio.get_running_loop()
        pages = self.source.pages(self.symbol, start, end).__aiter__()
        problem: str | None = None
        while problem is None:
            began = loop.time()
            try:
                page = await pages.__anext__()
            except StopAsyncIteration:
                break
            stored = loop.time()
            self.report.fetch_seconds += stored - began
            self.report.pages += 1
            problem = self._take_page(page, start, end)
            self.report.store_seconds += loop.time() - stored
        stored = loop.time()
        problem = self.flush() or problem
        self.report.store_seconds += loop.time() - stored
        if problem is not None:
            self.alert(
                "error",
                "bar_rejected",
                f"{self.symbol}: {problem}; {self.added} new bar(s) before it stored, earlier "
                "bars kept; fetched again next cycle",
            )
            self.report.failures[self.name] = problem
            self.report.partial[self.name] = self.added
        else:
            self.report.per_symbol[self.name] = self.added
        self._summaries()

    def _take_page(self, page: Page, start: int, end: int) -> str | None:
        """Check a page; keep its new good bars for the store; the first problem, if any."""
        order = np.argsort(page.timestamps, kind="stable")
        ts, values = page.timestamps[order], page.values[order]
        keep = (ts >= start) & (ts < end)  # drops the forming bar and anything out of range
        ts, values = ts[keep], values[keep]
        ts, first_seen = np.unique(ts, return_index=True)  # duplicates in the page: kept once
        values = values[first_seen]
        stored_last = self.store.last_timestamp(self.name)
        if stored_last is not None:
            old = ts <= stored_last
            self._compare_stored(ts[old], values[old])
        if self.tail is not None:  # stored, or taken from an earlier page: a duplicate
            newer = ts > self.tail
            ts, values = ts[newer], values[newer]
        if len(ts) == 0:
            return None
        good_ts, good_values, problem = _validate(ts, values, self.tail)
        self._note_gaps(self.tail, good_ts)
        if len(good_ts):
            self.pending.append((good_ts, good_values))
            self.pending_bars += len(good_ts)
            self.tail = int(good_ts[-1])
            if self.pending_bars >= FLUSH_BARS:
                problem = self.flush() or problem
        return problem

    def flush(self) -> str | None:
        """Store the bars taken so far (one atomic write); why the store refused them, if so."""
        if not self.pending:
            return None
        ts = np.concatenate([p[0] for p in self.pending])
        values = np.concatenate([p[1] for p in self.pending])
        self.pending, self.pending_bars = [], 0
        try:
            added = self.store.append(self.name, ts, values)
        except DataError as exc:
            self.tail = self.store.last_timestamp(self.name)
            return f"store refused the bars: {exc}"
        self.added += added
        if self.on_bars is not None:
            self.on_bars(self.name, added)
        return None

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
    """Check the bars as CSV rows are checked; return the good ones before the first problem."""
    good, reason = check_arrays(ts, values, after=last)
    if reason is None:
        return ts, values, None
    return ts[:good], values[:good], f"bar {format_timestamp(int(ts[good]))} rejected: {reason}"


def describe(report: FetchReport) -> dict[str, Any]:
    """The audit record of a fetch run."""
    return {
        "bars_added": report.bars_added,
        "symbols_ingested": len(report.per_symbol),
        "symbols_failed": sorted(report.failures),
        "pages": report.pages,
    }
