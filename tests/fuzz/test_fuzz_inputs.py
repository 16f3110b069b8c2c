"""Fuzzing the inputs the autopilot reads from outside: CSV files and the config file.

- **CSV ingestion** (``store.ingest.ingest_directory`` into a real ``BarStore``): a symbol with
  good history gets its file replaced by, or appended with, arbitrary bytes and CSV-shaped
  garbage. Every run returns a report (a file is ingested or rejected with reasons, never an
  exception), the stored history of the symbol is never lost or rewritten, a neighbouring good
  file still ingests, and the store stays loadable.
- **Config loading** (``config.load_config`` on a file): the shipped configs (the manual's
  examples, comments included) mutated byte by byte -- flips, deletions, insertions,
  truncation. Every load gives a config inside the hard ceilings or a one-line ``ConfigError``
  naming the file; nothing else escapes. (``tests/config/test_config.py`` fuzzes ``parse_config`` on
  generated JSON values and text.)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.config import Config, load_config
from aistock_actors.core.data.bars import format_csv
from aistock_actors.core.data.sample_data import generate_universe
from aistock_actors.errors import ConfigError, DataError
from aistock_actors.store.bars import BarStore
from aistock_actors.store.ingest import ingest_directory

FAST_TMP = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
"""A tmpfs where there is one: fsync costs nothing there, so many more examples fit the time
budget; the code paths are the same."""
REPO = Path(__file__).resolve().parents[2]
FRAMES = generate_universe(2, 60, seed=5)
GOOD = {s: format_csv(f).encode() for s, f in FRAMES.items()}
HEADER, *ROWS = GOOD["SYM000"].decode().splitlines(keepends=True)

TOKENS = ["2020-01-0", "T00:00:00Z", ",", "\n", "\r\n", "1", "-1", "0", "1e308", "nan", "inf",
          "100.5", "", " ", '"', "timestamp", "open", "\x00", "é", "9" * 30, "2099-12-31"]
csv_noise = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from(TOKENS), max_size=60).map(lambda parts: "".join(parts).encode()),
    # Good rows with one field replaced: the shape is right, a value is not.
    st.tuples(st.integers(0, len(ROWS) - 1), st.integers(0, 5), st.sampled_from(TOKENS)).map(
        lambda t: _mutate_row(ROWS[t[0]], t[1], t[2]).encode()),
)


def _mutate_row(row: str, field: int, token: str) -> str:
    parts = row.rstrip("\n").split(",")
    parts[field % len(parts)] = token
    return ",".join(parts) + "\n"


@settings(max_examples=60, deadline=None)
@given(noise=csv_noise, mode=st.sampled_from(["replace", "append", "header+noise"]))
def test_fuzzed_csv_is_ingested_or_rejected_never_loses_history(noise: bytes, mode: str) -> None:
    with tempfile.TemporaryDirectory(dir=FAST_TMP) as tmp:
        csv_dir, store = Path(tmp) / "csv", BarStore(Path(tmp) / "bars")
        csv_dir.mkdir()
        first_rows = HEADER + "".join(ROWS[:40])
        (csv_dir / "AAA.csv").write_text(first_rows)
        (csv_dir / "BBB.csv").write_bytes(GOOD["SYM001"][: len(GOOD["SYM001"]) // 2])
        first = ingest_directory(csv_dir, store)
        assert first.rejections == [] and store.count("AAA") == 40
        kept_ts, kept_values = (a.copy() for a in store.arrays("AAA"))

        data = {"replace": noise, "append": first_rows.encode() + noise,
                "header+noise": HEADER.encode() + noise}[mode]
        (csv_dir / "AAA.csv").write_bytes(data)
        (csv_dir / "BBB.csv").write_bytes(GOOD["SYM001"])  # the neighbour grows normally
        try:
            report = ingest_directory(csv_dir, store)
        except DataError:  # only "no usable CSV at all" may be an error, never for a neighbour
            raise AssertionError("a good file was present: the run must not fail") from None
        assert "BBB" in report.per_symbol and not any(r.symbol == "BBB"
                                                      for r in report.rejections)
        for rejection in report.rejections:
            assert rejection.problems and all(p.reason for p in rejection.problems)
        ts, values = BarStore(Path(tmp) / "bars").arrays("AAA")  # a fresh reader: on-disk truth
        assert np.array_equal(ts[:40], kept_ts) and np.array_equal(values[:40], kept_values)
        assert np.all(np.diff(ts) > 0) and np.isfinite(values).all()
        assert store.count("BBB") == len(FRAMES["SYM001"])


CONFIGS = sorted((REPO / "configs").glob("*.json"))
SOURCES = [p.read_bytes() for p in CONFIGS]


@st.composite
def mutated_config(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SOURCES)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "dup"]))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif op == "insert":
            data[at:at] = draw(st.sampled_from([b"{", b"}", b",", b'"x": 1,', b"//", b"/*",
                                                b"\xff", b"1e999", b"-", b"null", b"\\"]))
        elif op == "truncate":
            del data[at:]
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 40))]
    return bytes(data)


@settings(max_examples=120, deadline=None)
@given(raw=mutated_config())
def test_mutated_config_files_load_or_fail_with_one_clear_line(raw: bytes) -> None:
    with tempfile.TemporaryDirectory(dir=FAST_TMP) as tmp:
        path = Path(tmp) / "mutated.json"
        path.write_bytes(raw)
        try:
            loaded = load_config(path)
        except ConfigError as exc:
            message = str(exc)
            assert str(path) in message and "\n" not in message and len(message) < 2000
            return
        assert isinstance(loaded.config, Config)
        assert loaded.config.risk.max_position_fraction <= 0.30
        assert loaded.config.risk.max_notional_per_symbol <= 500_000.0
