"""Child process for the bar-store SIGKILL loop (run as a script, never imported by pytest).

Usage: ``python bar_appender.py BARS_DIR``

Opens the store the way the ingestor does (folding any segment), then appends one bar per
``append`` to two symbols forever, day after day from the stored last bar. After each append
returns, ``SYMBOL DAY`` is printed and stdout flushed: a printed line is an acknowledged bar.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from aistock_actors.store.bars import BarStore

DAY = 86_400 * 10**9
T0 = 18_262 * DAY


def main() -> None:
    store = BarStore(Path(sys.argv[1]))
    store.fold_all()
    out = sys.stdout
    for _ in range(1_000_000):
        for symbol in ("AAA", "BBB"):
            last = store.last_timestamp(symbol)
            day = 0 if last is None else (last - T0) // DAY + 1
            close = 100.0 + day
            values = np.array([[close, close + 1, close - 1, close, 1000.0 + day]])
            store.append(symbol, np.array([T0 + day * DAY], np.int64), values)
            out.write(f"{symbol} {day}\n")
            out.flush()


if __name__ == "__main__":
    main()
