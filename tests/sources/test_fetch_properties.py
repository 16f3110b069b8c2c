"""Safety invariants of fetching, as Hypothesis properties over arbitrary provider pages:
whatever order, duplicates and forming bars a provider sends, the store holds each closed bar
once, strictly increasing, and never a bar that was still forming."""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.config.sections import DataConfig
from aistock_actors.sources.base import Page
from aistock_actors.sources.calendar import MarketCalendar
from aistock_actors.sources.fetch import fetch_into_store
from aistock_actors.store.bars import BarStore

HOUR = 3600 * 10**9
T0 = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()) * 10**9
NOW = dt.datetime(2026, 1, 2, 0, 30, tzinfo=dt.UTC)  # bars 0..23 closed, bar 24 forming
CLOSED = 24


def bar(i: int) -> tuple[int, float, float, float, float, float]:
    return (T0 + i * HOUR, 100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i, 10.0)


class ListSource:
    """A provider whose answers are given pages of bar indices (a test double of a provider)."""

    name = "list"

    def __init__(self, pages: list[list[int]]) -> None:
        self.pages_of = pages

    async def pages(self, symbol: str, start_ns: int, end_ns: int) -> AsyncIterator[Page]:
        for indices in self.pages_of:
            yield Page.of([bar(i) for i in indices])

    async def close(self) -> None:
        return None


pages_strategy = st.lists(
    st.lists(st.integers(min_value=0, max_value=CLOSED + 1), max_size=12), max_size=6
)


@settings(max_examples=40, deadline=None)
@given(first=pages_strategy, second=pages_strategy)
def test_any_pages_give_each_closed_bar_once_in_order(
    first: list[list[int]], second: list[list[int]]
) -> None:
    data = DataConfig(source="ccxt", symbols=("BTC/USDT",), timeframe="1h",
                      history_start="2026-01-01", calendar="24/7")
    calendar = MarketCalendar("24/7")
    with tempfile.TemporaryDirectory() as tmp:
        store = BarStore(Path(tmp))
        for run, pages in enumerate((first, second)):  # the second resumes from the cursor
            asyncio.run(fetch_into_store(ListSource(pages), store, data, calendar, NOW,
                                         budget_seconds=10))
            ts, values = store.arrays("BTC-USDT")
            if run == 0 and len(pages) == 1:  # one answer: every closed bar in it, once
                expected = {i for i in pages[0] if i < CLOSED}
                assert {(t - T0) // HOUR for t in ts.tolist()} == expected
            assert np.all(np.diff(ts) > 0)
            assert np.all(ts + HOUR <= int(NOW.timestamp()) * 10**9)  # nothing still forming
            for t, row in zip(ts.tolist(), values.tolist(), strict=True):
                i = (t - T0) // HOUR
                assert tuple(row) == bar(i)[1:]
        # Everything stored was sent; a run keeps only bars newer than its cursor, in order.
        sent = {i for pages in (first, second) for page in pages for i in page if i < CLOSED}
        stored = {(t - T0) // HOUR for t in store.arrays("BTC-USDT")[0].tolist()}
        assert stored <= sent
