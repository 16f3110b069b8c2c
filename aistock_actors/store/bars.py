"""``BarStore``: compact, crash-safe, per-symbol bar history under one folder (``state/bars/``).

Layout: ``<SYMBOL>.npz`` holds two arrays, ``ts`` (int64 ns UTC, strictly increasing) and
``ohlcv`` (float64, shape ``(n, 5)``: open, high, low, close, volume), plus ``cursors.json`` with
the ingestion cursors. Volume stays float64 rather than float32 because float32 is exact only up
to 2**24 (16.7M) and busy symbols trade more shares than that a day; the cost (8 bytes a bar) is
irrelevant at daily resolution. ``.npz`` is a standard zip: readable with ``numpy.load`` alone, and
its per-member CRC32 catches torn or bit-flipped files.

Every ``.npz`` write replaces the whole file atomically (``atomic_write_bytes``), so it can never
lose earlier history; the previous version is kept as ``.bak`` and a corrupt file is read from it.
Once a history is long, new bars go to an append-only, checksummed segment beside it
(``<SYMBOL>.npz.seg``, :mod:`aistock_actors.store.bar_segment`) instead of a rewrite per bar, and
are folded into the ``.npz`` every few dozen bars and when the ingestor starts.

Memory: every ``BarStore`` on the same folder in a process shares ONE read-only cache of the
decoded arrays (the daemon's actors each open the store; with a private cache each would hold its
own copy of the whole history). :meth:`BarStore.load` builds a writable frame with a single copy.
Prices stay float64 too: float32 carries 24 bits (about 7 significant digits), so above ~$100,000
a price is no longer exact to the cent, and the features and backtest fills would move (see
``bench/README.md``, "Memory").
"""

from __future__ import annotations

import logging
import os
import re
import threading
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from aistock_actors.core.data.bars import FIELDS, bars_frame, format_timestamp
from aistock_actors.errors import DataError, StateError
from aistock_actors.store.atomic import atomic_write_bytes, atomic_write_json, backup_path
from aistock_actors.store.bar_files import (
    FileKey,
    StoredBars,
    encode_bars,
    extended,
    only_segment_grew,
    read_with_fallback,
    stat_key,
    with_segment,
)
from aistock_actors.store.bar_segment import (
    FOLD_RECORDS,
    SEGMENT_MIN_BARS,
    append_record,
    create_segment,
    read_from,
    segment_path,
)
from aistock_actors.store.file_cursor import FileCursor as FileCursor

logger = logging.getLogger(__name__)

CURSORS_FILE = "cursors.json"
_SYMBOL = re.compile(r"[A-Z0-9^][A-Z0-9._=^-]{0,31}")


class _Cache(dict[str, StoredBars]):
    """Decoded bars by symbol for one store folder (a dict subclass so it can be weakly held)."""


_CACHES: weakref.WeakValueDictionary[Path, _Cache] = weakref.WeakValueDictionary()
_CACHES_LOCK = threading.Lock()


def _shared_cache(root: Path) -> _Cache:
    """The cache of ``root``, shared by every live ``BarStore`` on it (freed with the last)."""
    key = root.absolute()
    with _CACHES_LOCK:
        cache = _CACHES.get(key)
        if cache is None:
            cache = _CACHES[key] = _Cache()
        return cache


def is_valid_symbol(symbol: str) -> bool:
    """True if ``symbol`` can name a store file (upper-case letters, digits, ``. _ = ^ -``)."""
    return _SYMBOL.fullmatch(symbol) is not None


class BarStore:
    """Per-symbol bar history: read-mostly, appended by one ingestor (one daemon per state dir)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._cache = _shared_cache(self.root)
        self._names: dict[str, tuple[str, str]] = {}
        self._paths: dict[str, Path] = {}

    def path(self, symbol: str) -> Path:
        """Return the data file of ``symbol``; raise ``DataError`` for an unusable name."""
        path = self._paths.get(symbol)
        if path is None:
            if not is_valid_symbol(symbol):
                raise DataError(f"invalid symbol name {symbol!r} (use A-Z, 0-9 and . _ = ^ -)")
            path = self._paths[symbol] = self.root / f"{symbol}.npz"
        return path

    def symbols(self) -> list[str]:
        """Symbols with stored history, sorted (readable or not: see :meth:`readable_symbols`)."""
        try:
            with os.scandir(self.root) as entries:
                stems = [e.name[:-4] for e in entries if e.name.endswith(".npz")]
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(stem for stem in stems if is_valid_symbol(stem))

    def readable_symbols(self) -> list[str]:
        """Symbols whose stored history can be read, sorted.

        A symbol whose file and ``.bak`` are both unreadable is left out (logged), so one garbled
        ``bars/<SYM>.npz`` fails that symbol only (#17); ingesting it reports the problem.
        """
        return list(self.readable_arrays())

    def readable_arrays(self) -> dict[str, tuple[NDArray[np.int64], NDArray[np.float64]]]:
        """``{symbol: arrays(symbol)}`` of :meth:`readable_symbols`, in one read of each."""
        readable = {}
        for symbol in self.symbols():
            try:
                bars = self._read(symbol)
            except StateError as exc:
                logger.error("leaving out symbol %s: %s", symbol, exc)
                continue
            if bars is not None:
                readable[symbol] = (bars.timestamps, bars.values)
        return readable

    def arrays(self, symbol: str) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Read-only ``(timestamps, values)`` of ``symbol``; empty arrays if it has no history."""
        bars = self._read(symbol)
        if bars is None:
            return np.empty(0, np.int64), np.empty((0, len(FIELDS)), np.float64)
        return bars.timestamps, bars.values

    def count(self, symbol: str) -> int:
        """Number of stored bars of ``symbol``."""
        return len(self.arrays(symbol)[0])

    def last_timestamp(self, symbol: str) -> int | None:
        """Timestamp (int64 ns UTC) of the newest stored bar, or None without history."""
        timestamps = self.arrays(symbol)[0]
        return int(timestamps[-1]) if len(timestamps) else None

    def total_bars(self) -> int:
        """Number of stored bars over all symbols."""
        return sum(len(ts) for ts, _ in self.readable_arrays().values())

    def load(self, symbol: str) -> pd.DataFrame:
        """Bars of ``symbol``: UTC DatetimeIndex ``timestamp``, float64 columns open..volume.

        Raises ``DataError`` if the symbol has no history, ``StateError`` if it is unreadable.
        """
        bars = self._read(symbol)
        if bars is None:
            raise DataError(f"no stored bars for symbol {symbol!r} in {self.root}")
        return bars_frame(bars.timestamps, bars.values)  # copies once into a writable frame

    def load_many(self, symbols: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
        """``{symbol: load(symbol)}`` for ``symbols`` (default: every stored symbol)."""
        chosen = self.readable_symbols() if symbols is None else list(symbols)
        return {symbol: self.load(symbol) for symbol in chosen}

    def append(
        self, symbol: str, timestamps: NDArray[np.int64], values: NDArray[np.float64]
    ) -> int:
        """Add bars strictly newer than the stored ones; return how many were added.

        Raises ``DataError`` (nothing written) for mismatched shapes, non-finite values, or
        timestamps that are not strictly increasing and newer than the last stored bar.
        """
        new_ts, new_values = _checked(symbol, timestamps, values)
        if len(new_ts) == 0:
            return 0
        path = self.path(symbol)
        bars = self._read(symbol)
        if bars is not None and len(bars.timestamps) and new_ts[0] <= bars.timestamps[-1]:
            raise DataError(
                f"{symbol}: bar {format_timestamp(int(new_ts[0]))} is not newer than the last "
                f"stored bar {format_timestamp(int(bars.timestamps[-1]))}"
            )
        all_ts = np.concatenate([bars.timestamps, new_ts]) if bars is not None else new_ts
        all_values = np.concatenate([bars.values, new_values]) if bars is not None else new_values
        self._cache.pop(symbol, None)
        try:
            if bars is None or bars.base_count < SEGMENT_MIN_BARS or bars.seg_records >= (
                FOLD_RECORDS
            ):
                cached = self._rewrite(path, all_ts, all_values)
            else:
                cached = self._append_segment(path, bars, new_ts, new_values, all_ts, all_values)
        except OSError as exc:
            raise StateError(f"could not write {path}: {exc}") from exc
        self._cache[symbol] = cached
        return len(new_ts)

    def _rewrite(
        self, path: Path, timestamps: NDArray[np.int64], values: NDArray[np.float64]
    ) -> StoredBars:
        """Write the whole history to the ``.npz``, then drop the segment it now contains."""
        atomic_write_bytes(path, encode_bars(timestamps, values))
        segment_path(path).unlink(missing_ok=True)  # a crash before this: it no longer applies
        timestamps.setflags(write=False)
        values.setflags(write=False)
        return StoredBars((stat_key(path.stat()), None), timestamps, values, len(timestamps))

    def _append_segment(
        self,
        path: Path,
        bars: StoredBars,
        new_ts: NDArray[np.int64],
        new_values: NDArray[np.float64],
        all_ts: NDArray[np.int64],
        all_values: NDArray[np.float64],
    ) -> StoredBars:
        """Append ``new_*`` as one segment record (creating the segment on the ``.npz``)."""
        seg_file = self._files(path.stem)[1]
        end = bars.seg_end
        if end == 0:
            base_last = int(bars.timestamps[bars.base_count - 1])
            end = create_segment(Path(seg_file), bars.base_count, base_last)
        end = append_record(seg_file, end, new_ts, new_values)
        all_ts.setflags(write=False)
        all_values.setflags(write=False)
        key = (bars.key[0], stat_key(os.stat(seg_file)))
        return StoredBars(key, all_ts, all_values, bars.base_count, end, bars.seg_records + 1)

    def fold(self, symbol: str) -> bool:
        """Fold ``symbol``'s segment into its ``.npz``; return whether there was one to fold."""
        path = self.path(symbol)
        if not segment_path(path).exists():
            return False
        bars = self._read(symbol)
        self._cache.pop(symbol, None)
        try:
            if bars is None:
                segment_path(path).unlink(missing_ok=True)
                return True
            self._cache[symbol] = self._rewrite(
                path, bars.timestamps.copy(), bars.values.copy()
            )
        except OSError as exc:
            raise StateError(f"could not write {path}: {exc}") from exc
        return True

    def fold_all(self) -> int:
        """Fold every symbol's segment (the ingestor's start); return how many were folded."""
        folded = 0
        for symbol in self.symbols():
            try:
                folded += self.fold(symbol)
            except StateError as exc:  # one unreadable symbol does not stop the others (#17)
                logger.error("could not fold the segment of %s: %s", symbol, exc)
        return folded

    def drop_after(self, symbol: str, after_ns: int) -> int:
        """Remove ``symbol``'s bars stamped after ``after_ns`` and its ingestion cursor (so its
        CSV is re-read whole next time); return how many were removed (#17: operator repair).
        """
        timestamps, values = self.arrays(symbol)
        keep = int(np.searchsorted(timestamps, after_ns, side="right"))
        removed = len(timestamps) - keep
        if removed == 0:
            return 0
        self.fold(symbol)  # one file holds everything before any bar is removed
        path = self.path(symbol)
        self._cache.pop(symbol, None)
        try:
            if keep:
                atomic_write_bytes(path, encode_bars(timestamps[:keep], values[:keep]))
            else:
                path.unlink()
                backup_path(path).unlink(missing_ok=True)
        except OSError as exc:
            raise StateError(f"could not write {path}: {exc}") from exc
        cursors = self.cursors()
        if cursors.pop(symbol, None) is not None:
            self.save_cursors(cursors)
        return removed

    def cursors(self) -> dict[str, FileCursor]:
        """Ingestion cursors by symbol; an unreadable cursor file (and ``.bak``) reads as empty.

        Cursors only save work: a missing or stale one makes the ingestor re-parse a file whole.
        """
        path = self.root / CURSORS_FILE
        for candidate in (path, backup_path(path)):
            try:
                return msgspec.json.decode(candidate.read_bytes(), type=dict[str, FileCursor])
            except FileNotFoundError:
                continue
            except (OSError, msgspec.DecodeError) as exc:
                logger.warning("ignoring unreadable cursor file %s: %s", candidate, exc)
        return {}

    def save_cursors(self, cursors: Mapping[str, FileCursor]) -> None:
        """Persist the ingestion cursors atomically."""
        path = self.root / CURSORS_FILE
        try:
            atomic_write_json(path, dict(sorted(cursors.items())), kind=dict[str, FileCursor])
        except OSError as exc:
            raise StateError(f"could not write {path}: {exc}") from exc

    def _files(self, symbol: str) -> tuple[str, str]:
        """``(npz, segment)`` paths of ``symbol`` as strings (validated once: read every cycle)."""
        files = self._names.get(symbol)
        if files is None:
            path = self.path(symbol)
            files = self._names[symbol] = (str(path), str(segment_path(path)))
        return files

    def _read(self, symbol: str) -> StoredBars | None:
        npz_file, seg_file = self._files(symbol)
        try:
            stat = os.stat(npz_file)
        except FileNotFoundError:
            self._cache.pop(symbol, None)
            return None
        except OSError as exc:
            raise StateError(f"cannot read stored bars {npz_file}: {exc}") from exc
        try:
            seg_key: FileKey | None = stat_key(os.stat(seg_file))
        except FileNotFoundError:
            seg_key = None
        except OSError as exc:
            raise StateError(f"cannot read stored bars {seg_file}: {exc}") from exc
        key = (stat_key(stat), seg_key)
        cached = self._cache.get(symbol)
        if cached is not None and cached.key == key:
            return cached
        path, seg = Path(npz_file), Path(seg_file)
        try:
            if cached is not None and only_segment_grew(cached, key):
                bars = extended(cached, key, read_from(seg, cached.seg_end))
            else:
                bars = with_segment(key, *read_with_fallback(path), seg)
        except OSError as exc:
            raise StateError(f"cannot read stored bars {seg}: {exc}") from exc
        self._cache[symbol] = bars
        return bars


def _checked(
    symbol: str, timestamps: NDArray[np.int64], values: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    ts = np.asarray(timestamps)
    vals = np.asarray(values)
    if ts.ndim != 1 or not np.issubdtype(ts.dtype, np.integer):
        raise DataError(f"{symbol}: timestamps must be a 1-D integer array, got {ts.shape}")
    if vals.shape != (len(ts), len(FIELDS)):
        raise DataError(f"{symbol}: values must have shape ({len(ts)}, 5), got {vals.shape}")
    if not np.isfinite(vals).all():
        raise DataError(f"{symbol}: values must be finite")
    if len(ts) > 1 and not (np.diff(ts) > 0).all():
        raise DataError(f"{symbol}: timestamps must be strictly increasing")
    return ts.astype(np.int64), vals.astype(np.float64)


def closes_at(store: BarStore, times: NDArray[np.int64]) -> NDArray[np.float64]:
    """``times x symbols`` closes of every stored symbol (NaN where a symbol has no bar then)."""
    columns: list[NDArray[np.float64]] = []
    for symbol in store.symbols():
        ts, values = store.arrays(symbol)
        if not len(ts):
            columns.append(np.full(len(times), np.nan))
            continue
        at = np.minimum(np.searchsorted(ts, times), len(ts) - 1)
        columns.append(np.where(ts[at] == times, values[at, 3], np.nan))
    return np.column_stack(columns) if columns else np.empty((len(times), 0))
