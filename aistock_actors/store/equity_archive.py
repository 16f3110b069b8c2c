"""The paper account's archived equity points (#18): append-only monthly files under
``state/paper/equity``, written like the fills' archive (``store/fill_archive.py``).

``state/paper/equity/YYYY-MM.jsonl`` holds one :class:`ArchivedPoint` per line (``seq``: the
point's number in the account's life, ``timestamp``, ``equity``), by the month of its bar. Points
move here from ``ledger.json`` in batches
(:func:`~aistock_actors.core.trading.curve.split_curve`) BEFORE the ledger that no longer holds
them is written; after a crash in between a point is in both, and the next move appends only the
points past the archive's high-water mark, so none is lost or archived twice. The whole curve,
each point once (the ledger's ``curve_archived`` says how many precede its window)::

    cat state/paper/equity/*.jsonl | jq -s 'unique_by(.seq) | map([.timestamp, .equity])'
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from aistock_actors.core.trading.orders import LedgerState
from aistock_actors.store.fill_archive import MonthlyArchive

EQUITY_DIR = "equity"
"""``state/paper/equity/``."""


class ArchivedPoint(msgspec.Struct, frozen=True, kw_only=True):
    """One archived equity point: its number in the account's life, bar timestamp and equity."""

    seq: int
    timestamp: str
    equity: float


class EquityArchive(MonthlyArchive[ArchivedPoint]):
    """Reads and appends the files of ``state/paper/equity`` (one writer: the PaperTrader)."""

    record_type = ArchivedPoint

    def append(self, points: Sequence[tuple[str, float]], first_seq: int) -> int:
        """Archive ``points`` numbered from ``first_seq``; how many were written (the ones
        already archived are skipped: :meth:`MonthlyArchive.append_records`)."""
        return self.append_records(
            ArchivedPoint(seq=seq, timestamp=ts, equity=value)
            for seq, (ts, value) in enumerate(points, start=first_seq)
        )

    def points(self, first: int = 0, end: int | None = None) -> list[tuple[str, float]]:
        """The archived points numbered ``first`` up to (not including) ``end``, oldest first."""
        return [(r.timestamp, r.equity) for r in self.read(first)
                if r.seq >= first and (end is None or r.seq < end)]

    def curve_since(self, first: int, ledger: LedgerState) -> list[tuple[str, float]]:
        """Equity points numbered ``first`` and later of ``ledger``, oldest first, each once: the
        archive is read only for points older than the window (``curve_since(0, ledger)``: the
        account's whole curve)."""
        if first >= ledger.curve_archived:
            return list(ledger.equity_curve[first - ledger.curve_archived :])
        return [*self.points(first, ledger.curve_archived), *ledger.equity_curve]

    def curve_tail(self, count: int, ledger: LedgerState) -> list[tuple[str, float]]:
        """The newest ``count`` points of ``ledger`` (archived ones when its window holds fewer)."""
        kept = ledger.equity_curve
        if count <= len(kept):
            return list(kept[len(kept) - count :])
        return self.curve_since(max(ledger.curve_archived + len(kept) - count, 0), ledger)
