"""Backtest equity curves in ``state/promotion/curves/``: which models keep one, the manifest
without them, old manifests that had them inline, corrupt curve files."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from _support.manifest_support import as_json
from _support.manifest_support import entry as make_entry

from aistock_actors.cli.report.data import stored_curve
from aistock_actors.core.promotion.manifest import ManifestEntry
from aistock_actors.messages.model import BacktestCompleted
from aistock_actors.runtime.cycle_run import reply_data
from aistock_actors.store.alerts import AlertSink
from aistock_actors.store.atomic import backup_path
from aistock_actors.store.promotion import (
    EQUITY_CURVE_KEY,
    KEEP_EQUITY_CURVES,
    EquityCurveFile,
    PromotionStore,
    curve_models_to_keep,
    strip_equity_curves,
)

CURVE: list[list[Any]] = [["2024-01-01T00:00:00+00:00", 100_000.0],
                          ["2024-01-02T00:00:00+00:00", 99_000.5]]
STATUSES = ["approved", "pending", "rejected", "recorded", "rolled_back"]


def entry(i: int, status: str, curve: bool = False) -> ManifestEntry:
    backtest: dict[str, Any] = {"sharpe": 1.0, "total_return": 0.1, "bars": 300}
    if curve:
        backtest[EQUITY_CURVE_KEY] = CURVE
    return make_entry(f"m-{i}", status, id=f"m-{i}@t", backtest=backtest)


def alert_codes(root: Path, severity: str) -> list[str]:
    folder = root / "alerts" / severity
    return [json.loads(p.read_text())["code"] for p in sorted(folder.glob("*.json"))]


def test_only_the_newest_approved_and_pending_and_the_active_model_keep_their_curve(
    tmp_path: Path,
) -> None:
    manifest = [entry(i, STATUSES[i % 5]) for i in range(100)]
    store = PromotionStore(tmp_path, None)
    for e in manifest:  # every entry had a curve (the judge writes only approved and pending)
        assert store.save_curve(e.model_id, e.id, CURVE)
    store.save_curve("m-0", "m-0@t", CURVE)  # a second write: m-0 has a .bak too
    assert backup_path(store.curve_path("m-0")).exists()  # type: ignore[arg-type]
    store.save_manifest(manifest)
    removed = store.prune_curves(manifest, active_model_id="m-5")  # an old approved model
    kept = {p.name.removesuffix(".json") for p in store.curves_dir.glob("*.json")}
    expected = {"m-5"}
    for status, limit in KEEP_EQUITY_CURVES.items():
        expected |= set([e.model_id for e in manifest if e.status == status][-limit:])
    assert kept == expected and len(kept) == 21
    assert sorted(removed) == sorted(e.model_id for e in manifest if e.model_id not in kept)
    assert sorted(p.name for p in store.curves_dir.iterdir()) == sorted(f"{m}.json" for m in kept)
    assert store.load_curve("m-0") is None  # its .bak went too
    assert store.load_curve("m-95") == EquityCurveFile(
        model_id="m-95", entry_id="m-95@t", points=[(t, v) for t, v in CURVE])
    assert store.prune_curves(manifest, "m-5") == []  # idempotent
    assert store.prune_curves(manifest, None) == ["m-5"]  # no longer active: pruned
    assert curve_models_to_keep([]) == set()


def test_the_manifest_never_holds_a_curve_and_an_interim_manifests_curves_move_out(
    tmp_path: Path,
) -> None:
    """A manifest written by the interim version (curves inline) loads; the next save strips
    them, after writing the files of the entries that keep a curve."""
    manifest = [entry(i, STATUSES[i % 5], curve=True) for i in range(60)]
    path = tmp_path / "promotion" / "manifest.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(as_json(manifest)))
    store = PromotionStore(tmp_path, None)
    loaded = store.load_manifest()
    assert loaded == manifest
    before = copy.deepcopy(loaded)
    store.save_manifest(loaded)
    assert loaded == before  # the caller's list is untouched
    saved = store.load_manifest()
    assert saved == strip_equity_curves(manifest)
    assert EQUITY_CURVE_KEY not in path.read_text()
    assert [e.id for e in saved] == [e.id for e in manifest]
    assert all(e.metrics()["sharpe"] == 1.0 for e in saved)  # only the curve is dropped
    moved = {p.name.removesuffix(".json") for p in store.curves_dir.glob("*.json")}
    assert moved == curve_models_to_keep(manifest) and len(moved) == 20
    assert all(store.load_curve(m).entry_id == f"{m}@t" for m in moved)  # type: ignore[union-attr]


def test_a_manifest_written_before_curves_existed_still_loads(tmp_path: Path) -> None:
    old = [entry(0, "approved"), entry(1, "rejected")]
    path = tmp_path / "promotion" / "manifest.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(as_json(old)))
    store = PromotionStore(tmp_path, None)
    assert store.load_manifest() == old
    store.save_manifest(old)
    assert store.load_manifest() == old
    assert store.load_curve("m-0") is None and not store.curves_dir.exists()


def test_a_corrupt_curve_file_is_recovered_from_its_bak_or_reads_as_none(
    tmp_path: Path,
) -> None:
    alerts = AlertSink(tmp_path / "alerts")
    store = PromotionStore(tmp_path, alerts)
    store.save_curve("m-1", "first", CURVE)
    store.save_curve("m-1", "second", CURVE)
    path = store.curve_path("m-1")
    assert path is not None
    path.write_bytes(b'{"model_id": "m-1", "points": [[')
    curve = store.load_curve("m-1")
    assert curve is not None and curve.entry_id == "first"
    assert alert_codes(tmp_path, "error") == ["state_file_recovered_from_backup"]
    backup_path(path).write_bytes(b"[]")
    assert store.load_curve("m-1") is None  # never raises
    assert alert_codes(tmp_path, "critical") == ["state_file_unrecoverable"]
    assert store.curve_stored("m-1")
    store.save_curve("m-1", "third", CURVE)  # the next save: the corrupt file is not kept
    assert backup_path(path).read_bytes() == b"[]"
    assert store.load_curve("m-1").entry_id == "third"  # type: ignore[union-attr]


def test_save_curve_keeps_finite_points_and_plain_file_names(tmp_path: Path) -> None:
    store = PromotionStore(tmp_path, None)
    noisy = [CURVE[0], ["t", float("nan")], ["t", float("inf")], [1, 2.0], ["t", True], "x",
             CURVE[1]]
    assert store.save_curve("m-1", "e", noisy)
    assert store.load_curve("m-1").points == [(t, v) for t, v in CURVE]  # type: ignore[union-attr]
    assert not store.save_curve("m-2", "e", CURVE[:1])  # nothing to draw: no file
    assert not store.save_curve("m-3", "e", [])
    for bad in ("../escape", "a/b", ".hidden", ""):
        assert store.curve_path(bad) is None
        assert not store.save_curve(bad, "e", CURVE) and store.load_curve(bad) is None
    assert sorted(p.name for p in store.curves_dir.iterdir()) == ["m-1.json"]
    assert not (tmp_path / "escape.json").exists()


def backtest_reply(curve: list[tuple[str, float]]) -> BacktestCompleted:
    return BacktestCompleted(
        request_id="r", model_id="m", sharpe=1.0, max_drawdown=0.1, win_rate=0.5,
        total_return=0.1, trade_count=10, transition_drawdown=0.0, return_over_drawdown=1.0,
        exposure=0.5, turnover=1.0, total_costs=1.0, bars=300, folds=4, oos_start="a",
        oos_end="b", equity_curve=curve)


def test_backtest_completed_without_a_curve_decodes_with_an_empty_one() -> None:
    reply = backtest_reply([("2024-01-01T00:00:00+00:00", 1.0)])
    data = json.loads(msgspec.json.encode(reply))
    assert data["equity_curve"] == [["2024-01-01T00:00:00+00:00", 1.0]]
    del data["equity_curve"]
    old = msgspec.convert(data, BacktestCompleted)
    assert old.equity_curve == [] and old.sharpe == 1.0


def test_a_steps_persisted_data_leaves_the_curve_out() -> None:
    data = reply_data(backtest_reply([(t, v) for t, v in CURVE]))
    assert EQUITY_CURVE_KEY not in data and data["sharpe"] == 1.0 and data["model_id"] == "m"


@pytest.mark.parametrize("value", [
    None, {}, "x", CURVE[:1], [*CURVE, ["t"]], [*CURVE, ["t", None]],
    [*CURVE, ["t", float("inf")]], [*CURVE, [1, 2.0]], [*CURVE, ["t", True]]])
def test_stored_curve_accepts_only_finite_time_value_pairs(value: Any) -> None:
    assert stored_curve(CURVE) == [(t, v) for t, v in CURVE]
    assert stored_curve(value) is None, value
