"""``--drop-bars SYMBOL --after DATE``: the audited operator repair for bars that should never have
been stored (a future-dated or absurd row ingested before #17's checks, or a wrong vendor file).

Runs under the state directory's lock (refused while a daemon runs: stop it first), removes the
symbol's stored bars stamped after DATE, forgets its ingestion cursor so the CSV is re-read whole,
and writes a ``bars_dropped`` audit record.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aistock_actors.config import LoadedConfig
from aistock_actors.errors import ConfigError
from aistock_actors.store.audit import AuditLog
from aistock_actors.store.audit_anchor import anchor_for, audit_path
from aistock_actors.store.bars import BarStore, is_valid_symbol
from aistock_actors.store.lock import DaemonLock


def parse_after(text: str) -> int:
    """An ISO date or datetime (UTC unless it says otherwise) as int64 ns; ConfigError if not."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--after: not an ISO date or datetime: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


def drop_bars(loaded: LoadedConfig, symbol: str, after: str) -> str:
    """Drop ``symbol``'s bars after ``after``; one line saying what was done."""
    symbol = symbol.upper()
    if not is_valid_symbol(symbol):
        raise ConfigError(f"--drop-bars: invalid symbol {symbol!r}")
    after_ns = parse_after(after)
    with DaemonLock(loaded.state_dir, "drop-bars"):
        store = BarStore(loaded.state_dir / "bars")
        before = store.count(symbol)
        removed = store.drop_after(symbol, after_ns)
        AuditLog(audit_path(loaded), anchor=anchor_for(loaded)).append(
            "bars_dropped", "operator",
            {"symbol": symbol, "after": after, "removed": removed, "kept": before - removed},
        )
    return (f"dropped {removed} stored bar(s) of {symbol} after {after} "
            f"({before - removed} kept; its CSV is re-read whole at the next ingest)")
