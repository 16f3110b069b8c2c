"""Fuzzing every state file's loader: corrupt bytes never escape as an exception and never cost
the ``.bak``.

For each state file (``supervisor.json``, ``HALTED``, the promotion manifest and registry, a
backtest equity curve file, the paper ledger and cost book, the risk limits, the ingestion
cursors, the active model pointer, the remote kill-switch counter) the test writes two good
versions through the production writer (so ``.bak`` holds the first), overwrites the file -- or
the file and its ``.bak`` -- with fuzzed bytes, and loads it through the production loader:

- main corrupt, ``.bak`` good: the ``.bak`` version comes back, with the error alert
  ``state_file_recovered_from_backup`` (cursors: silently, they only save work; ``HALTED`` has
  no ``.bak`` and an unreadable one reads as *halted*: fail safe);
- both corrupt: the documented fallback -- defaults with the critical alert
  ``state_file_unrecoverable``, no risk state (the config's limits), no curve, empty cursors, a
  halt, or for the model pointer a ``StateError`` (a clear error: the trader refuses to trade
  rather than pretend no model is active);
- the ``.bak`` is never touched by loading, and the next save does not rotate the corrupt file
  into it: after it, the ``.bak`` still loads as its type.

Fuzzed bytes that happen to be a valid value are simply that value.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from _support.manifest_support import entry
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aistock_actors.actors.kill_switch import RemoteCheckState
from aistock_actors.core.risk.governor import RiskState, initial_state
from aistock_actors.core.risk.policy import RiskLimits
from aistock_actors.core.trading.ledger import LedgerState, new_ledger
from aistock_actors.errors import StateError
from aistock_actors.store.alerts import AlertSink, list_alerts
from aistock_actors.store.atomic import atomic_write_json, backup_path
from aistock_actors.store.bars import BarStore, FileCursor
from aistock_actors.store.ledger import CostBook, PaperStore
from aistock_actors.store.models import ModelRecord, ModelStore
from aistock_actors.store.promotion import (
    EquityCurveFile,
    Manifest,
    PromotionStore,
    RegistryFile,
)
from aistock_actors.store.state import (
    HaltState,
    SupervisorState,
    load_supervisor_state,
    read_halt,
    save_supervisor_state,
    write_halt,
)
from aistock_actors.store.state_file import load_state

FAST_TMP = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
"""A tmpfs where there is one: fsync costs nothing there, so many more examples fit the time
budget; the code paths are the same."""


@dataclass(frozen=True)
class Kind:
    """One state file: where it lives, how to make, save and load a value, its fallback."""

    path: str
    type_: Any
    make: Callable[[int], Any]
    save: Callable[[Path, Any], None]
    load: Callable[[Path, AlertSink], Any]
    both_corrupt: Callable[[Any], bool]
    """What loading gives when the file and its .bak are both corrupt (or raises)."""
    alerts_recovery: bool = True
    has_backup: bool = True


def _record(i: int) -> ModelRecord:
    return ModelRecord(model_id=f"m-{i}", sha256="0" * 64, created_at=dt.datetime(2024, 1, i),
                       metrics={"sharpe": float(i)}, threshold=0.5, feature_names=["f"], horizon=1)


def _cursor(i: int) -> dict[str, FileCursor]:
    return {"AAA": FileCursor(file="AAA.csv", offset=10 * i, lines=i, size=10 * i,
                              header_sha256="h", last_timestamp=i, inode=i, window_sha256="w")}


def _limits(i: int) -> RiskState:
    return initial_state(RiskLimits(max_position_fraction=0.01 * i, max_notional_per_symbol=1e4,
                                    max_gross_exposure=1.0))


def _save_curve(store: PromotionStore, curve: EquityCurveFile) -> None:
    assert store.save_curve(curve.model_id, curve.entry_id, curve.points)


KINDS = {
    "supervisor": Kind(
        "supervisor.json", SupervisorState, lambda i: SupervisorState(cycles_total=i),
        save_supervisor_state, load_supervisor_state,
        lambda v: v == SupervisorState()),
    "halted": Kind(
        "HALTED", HaltState,
        lambda i: HaltState(kind="operator", reason=f"r{i}", message="m", halted_at="t"),
        write_halt, lambda d, _a: read_halt(d),
        lambda v: v is not None and v.reason == "halt_file_unreadable",
        alerts_recovery=False, has_backup=False),
    "manifest": Kind(
        "promotion/manifest.json", Manifest,
        lambda i: [entry(f"m-{j}", "approved", id=f"e{j}") for j in range(i)],
        lambda d, v: PromotionStore(d, None).save_manifest(v),
        lambda d, a: PromotionStore(d, a).load_manifest(), lambda v: v == []),
    "registry": Kind(
        "promotion/registry.json", RegistryFile,
        lambda i: RegistryFile(retired_models=[f"m-{i}"]),
        lambda d, v: PromotionStore(d, None).save_registry(v),
        lambda d, a: PromotionStore(d, a).load_registry(), lambda v: v == RegistryFile()),
    "curve": Kind(
        "promotion/curves/m-1.json", EquityCurveFile,
        lambda i: EquityCurveFile(model_id="m-1", entry_id=f"m-1@{i}",
                                  points=[("2024-01-01", 100.0 * i), ("2024-01-02", 99.5)]),
        lambda d, v: _save_curve(PromotionStore(d, None), v),
        lambda d, a: PromotionStore(d, a).load_curve("m-1"), lambda v: v is None),
    "ledger": Kind(
        "paper/ledger.json", LedgerState, lambda i: new_ledger(1000.0 * i),
        lambda d, v: PaperStore(d, None, 5.0).save_ledger(v),
        # Both copies corrupt: rebuilt in memory from the fill journal (#17), never a reset.
        lambda d, a: PaperStore(d, a, 5.0).load_ledger(), lambda v: v == new_ledger(2000.0)),
    "costs": Kind(
        "paper/costs.json", CostBook, lambda i: CostBook(fills_recorded=i),
        lambda d, v: PaperStore(d, None, 5.0).save_costs(v),
        lambda d, a: PaperStore(d, a, 5.0).load_costs(), lambda v: v == CostBook()),
    "risk": Kind(
        "risk/limits.json", RiskState, _limits,
        lambda d, v: __import__("aistock_actors.store.risk", fromlist=["x"]).save_risk_state(d, v),
        lambda d, a: __import__("aistock_actors.store.risk", fromlist=["x"]).load_risk_state(d, a),
        lambda v: v is None),
    "cursors": Kind(
        "bars/cursors.json", dict[str, FileCursor], _cursor,
        lambda d, v: BarStore(d / "bars").save_cursors(v),
        lambda d, _a: BarStore(d / "bars").cursors(), lambda v: v == {},
        alerts_recovery=False),
    "pointer": Kind(
        "../models/active/model.json", ModelRecord, _record,
        lambda d, v: atomic_write_json(d.parent / "models" / "active" / "model.json", v),
        lambda d, a: ModelStore(d.parent / "models", a).active_record(),
        lambda v: isinstance(v, StateError)),
    "remote": Kind(
        "kill_switch_remote.json", RemoteCheckState,
        lambda i: RemoteCheckState(consecutive_failures=i),
        lambda d, v: atomic_write_json(d / "kill_switch_remote.json", v),
        lambda d, a: load_state(d / "kill_switch_remote.json", RemoteCheckState,
                                RemoteCheckState, a),
        lambda v: v == RemoteCheckState()),
}

JSONISH = [b"{", b"}", b"[", b"]", b'"', b":", b",", b"null", b"true", b"1", b"-1e999", b'"id"',
           b'"cycles_total"', b'"status"', b"\x00", b"\xff", b" ", b"\n"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=6,
)
corrupt_bytes = st.one_of(
    st.binary(max_size=200),
    st.lists(st.sampled_from(JSONISH), max_size=40).map(b"".join),
    json_values.map(lambda v: msgspec.json.encode(v)),  # valid JSON, usually the wrong shape
)
TRICKY = [b"", b"{}", b"[]", b"null", b"0", b'"x"', b"[1]", b'{"a": 1}', b"[{}]", b'{"id": 1']
"""Valid JSON of the wrong shape above all: it must not be rotated into the ``.bak``."""


def _decodes(raw: bytes, type_: Any) -> Any:
    try:
        return msgspec.json.decode(raw, type=type_)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _load(kind: Kind, state_dir: Path, alerts: AlertSink) -> Any:
    try:
        return kind.load(state_dir, alerts)
    except StateError as exc:  # the documented clear error of the pointer
        return exc


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
@pytest.mark.parametrize("name", sorted(KINDS))
def test_corrupt_state_file_recovers_or_falls_back_and_keeps_the_bak(
    name: str, data: st.DataObject
) -> None:
    noise = data.draw(corrupt_bytes, label="noise")
    both = data.draw(st.booleans(), label="corrupt the .bak too")
    check_corruption(KINDS[name], name, noise, both)


@pytest.mark.parametrize("noise", TRICKY)
@pytest.mark.parametrize("name", sorted(KINDS))
def test_wrong_shaped_json_never_replaces_a_good_bak(name: str, noise: bytes) -> None:
    check_corruption(KINDS[name], name, noise, both=False)


def check_corruption(kind: Kind, name: str, noise: bytes, both: bool) -> None:
    both = both and kind.has_backup
    with tempfile.TemporaryDirectory(dir=FAST_TMP) as tmp:
        state_dir = Path(tmp) / "state"
        state_dir.mkdir()
        path = (state_dir / kind.path).resolve()
        alerts = AlertSink(Path(tmp) / "alerts")
        first, second = kind.make(1), kind.make(2)
        kind.save(state_dir, first)
        kind.save(state_dir, second)
        bak = backup_path(path)
        if kind.has_backup:
            assert _decodes(bak.read_bytes(), kind.type_) == first
        path.write_bytes(noise)
        if both:
            bak.write_bytes(noise[::-1])
        bak_before = bak.read_bytes() if bak.exists() else None

        value = _load(kind, state_dir, alerts)  # never raises (the pointer: StateError value)

        as_is = _decodes(noise, kind.type_)
        if as_is is not None:
            expected_ok = value == as_is
        elif not both and kind.has_backup:
            expected_ok = value == first
            if kind.alerts_recovery:
                codes = [p.name for p in list_alerts(Path(tmp) / "alerts", "error")]
                assert any("state_file_recovered_from_backup" in c for c in codes), codes
        else:
            back = _decodes(noise[::-1], kind.type_) if both else None
            expected_ok = value == back if back is not None else kind.both_corrupt(value)
        assert expected_ok, (name, noise, both, value)
        assert (bak.read_bytes() if bak.exists() else None) == bak_before  # loading wrote nothing

        kind.save(state_dir, kind.make(3))  # the next save: whatever was corrupt is not kept
        assert _decodes(path.read_bytes(), kind.type_) == kind.make(3)
        if kind.has_backup and (as_is is not None or not both):
            assert _decodes(bak.read_bytes(), kind.type_) is not None, (name, bak.read_bytes())
