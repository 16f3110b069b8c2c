"""CSV text for the ingest tests: the header, one day per row number, appends, and a CSV folder
with its bar store."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from aistock_actors.store.bars import BarStore

HEADER = "timestamp,open,high,low,close,volume\n"


def day(n: int) -> str:
    """Row ``n``'s date: ``n`` days after 2020-01-01, ISO."""
    return (date(2020, 1, 1) + timedelta(days=n)).isoformat()


def add(path: Path, text: str) -> None:
    """Append ``text`` to the CSV at ``path`` (as a provider's writer would)."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def csv_folder(tmp_path: Path) -> tuple[Path, BarStore]:
    """An empty ``tmp_path/csv`` and a bar store under ``tmp_path/state/bars``."""
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    return csv_dir, BarStore(tmp_path / "state" / "bars")

