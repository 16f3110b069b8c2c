from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.core.data.bars import FIELDS
from aistock_actors.errors import DataError, StateError
from aistock_actors.store.atomic import backup_path
from aistock_actors.store.bars import BarStore, FileCursor

DAY = 86_400 * 10**9
T0 = 18_262 * DAY  # 2020-01-01


def bars(start_day: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    ts = T0 + (start_day + np.arange(n, dtype=np.int64)) * DAY
    close = 100.0 + np.arange(n) + start_day
    values = np.column_stack([close, close + 1, close - 1, close, 1000.0 + np.arange(n)])
    return ts, values


def test_append_and_load_round_trip(tmp_path: Path) -> None:
    store = BarStore(tmp_path / "bars")
    assert store.symbols() == [] and store.total_bars() == 0 and store.last_timestamp("AAA") is None
    ts, values = bars(0, 5)
    assert store.append("AAA", ts, values) == 5
    assert store.append("AAA", *bars(5, 3)) == 3
    frame = store.load("AAA")
    assert list(frame.columns) == list(FIELDS) and (frame.dtypes == np.float64).all()
    assert isinstance(frame.index, pd.DatetimeIndex) and frame.index.name == "timestamp"
    assert str(frame.index.dtype) == "datetime64[ns, UTC]"
    assert frame.index[0] == pd.Timestamp("2020-01-01", tz="UTC") and len(frame) == 8
    np.testing.assert_array_equal(frame.to_numpy()[:5], values)
    assert store.last_timestamp("AAA") == T0 + 7 * DAY
    assert (tmp_path / "bars" / "AAA.npz").exists()


def test_symbols_total_and_load_many(tmp_path: Path) -> None:
    store = BarStore(tmp_path)
    store.append("BBB", *bars(0, 2))
    store.append("AAA", *bars(0, 3))
    assert store.symbols() == ["AAA", "BBB"] and store.total_bars() == 5
    assert {k: len(v) for k, v in store.load_many().items()} == {"AAA": 3, "BBB": 2}
    assert list(store.load_many(["BBB"])) == ["BBB"]


def test_a_second_store_on_the_same_folder_sees_appends(tmp_path: Path) -> None:
    reader, writer = BarStore(tmp_path), BarStore(tmp_path)
    writer.append("AAA", *bars(0, 2))
    assert reader.count("AAA") == 2
    writer.append("AAA", *bars(2, 2))
    assert reader.count("AAA") == 4


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: bars(0, 2), "not newer than the last stored bar 2020-01-03"),
        (lambda: bars(2, 1), "not newer than the last stored bar 2020-01-03"),
        (lambda: (bars(5, 2)[0][::-1].copy(), bars(5, 2)[1]), "strictly increasing"),
        (lambda: (bars(5, 2)[0], bars(5, 3)[1]), "shape"),
        (lambda: (bars(5, 1)[0], np.full((1, 5), np.nan)), "finite"),
        (lambda: (bars(5, 1)[0].astype(float), bars(5, 1)[1]), "integer"),
    ],
)
def test_append_refuses_bad_input_and_writes_nothing(
    tmp_path: Path, make: object, message: str
) -> None:
    store = BarStore(tmp_path)
    store.append("AAA", *bars(0, 3))
    before = (tmp_path / "AAA.npz").read_bytes()
    ts, values = make()  # type: ignore[operator]
    with pytest.raises(DataError, match=message):
        store.append("AAA", ts, values)
    assert (tmp_path / "AAA.npz").read_bytes() == before and store.count("AAA") == 3


def test_empty_append_writes_nothing(tmp_path: Path) -> None:
    store = BarStore(tmp_path)
    assert store.append("AAA", np.empty(0, np.int64), np.empty((0, 5))) == 0
    assert store.symbols() == []


@pytest.mark.parametrize("symbol", ["", "../x", "a/b", ".HIDDEN", "lower", "A" * 40])
def test_invalid_symbols_are_refused(tmp_path: Path, symbol: str) -> None:
    with pytest.raises(DataError, match="invalid symbol"):
        BarStore(tmp_path).append(symbol, *bars(0, 1))


def test_unknown_symbol_load_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no stored bars"):
        BarStore(tmp_path).load("NOPE")


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_corrupt_file_falls_back_to_backup(tmp_path: Path, damage: str) -> None:
    store = BarStore(tmp_path)
    store.append("AAA", *bars(0, 3))
    store.append("AAA", *bars(3, 2))
    path = tmp_path / "AAA.npz"
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 2] ^= 0x10
    elif damage == "garbage":
        data = bytearray(b"not a zip file at all")
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    fresh = BarStore(tmp_path)
    assert len(fresh.load("AAA")) == 3  # the previous version, kept as .bak
    assert fresh.last_timestamp("AAA") == T0 + 2 * DAY
    assert fresh.append("AAA", *bars(3, 2)) == 2  # history repaired on the next append
    assert len(BarStore(tmp_path).load("AAA")) == 5


def test_both_copies_corrupt_is_a_state_error_naming_the_file(tmp_path: Path) -> None:
    store = BarStore(tmp_path)
    store.append("AAA", *bars(0, 3))
    store.append("AAA", *bars(3, 1))
    (tmp_path / "AAA.npz").write_bytes(b"junk")
    backup_path(tmp_path / "AAA.npz").write_bytes(b"junk too")
    with pytest.raises(StateError, match=r"AAA\.npz"):
        BarStore(tmp_path).load("AAA")


def test_cursors_round_trip_and_survive_corruption(tmp_path: Path) -> None:
    store = BarStore(tmp_path)
    assert store.cursors() == {}
    first = FileCursor(file="A.csv", offset=10, lines=1, size=10, header_sha256="h",
                       last_timestamp=None, inode=7, window_sha256="w")
    second = FileCursor(file="A.csv", offset=20, lines=2, size=25, header_sha256="h",
                        last_timestamp=T0, inode=7, window_sha256="v")
    store.save_cursors({"A": first})
    store.save_cursors({"A": second})
    assert store.cursors() == {"A": second}
    (tmp_path / "cursors.json").write_text("{not json")
    assert store.cursors() == {"A": first}
    backup_path(tmp_path / "cursors.json").write_text("[]")
    assert store.cursors() == {}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=6), max_size=8))
def test_any_sequence_of_appends_keeps_all_history(chunks: list[int]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store, day = BarStore(Path(folder)), 0
        for n in chunks:
            assert store.append("AAA", *bars(day, n)) == n
            day += n
        reloaded = BarStore(Path(folder))
        assert reloaded.count("AAA") == day
        if day:
            frame = reloaded.load("AAA")
            ts, values = bars(0, day)
            np.testing.assert_array_equal(frame.index.asi8, ts)
            np.testing.assert_array_equal(frame["close"].to_numpy(), values[:, 3])
