"""The PromotionJudge alone under a real supervisor: registry grace/removal (T5), rollback, halt,
and the repair of an interrupted pointer move (``ActiveModelKeeper.reconcile``).

The train and backtest replies are scripted (their numbers chosen per case), so many judge cycles
run in milliseconds; the models they name are real, stored, hash-verified artifacts.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from _support.lifecycle_support import (
    active_id,
    audit_records,
    lifecycle_config,
    manifest,
    planted_frames,
    pointer,
    run_cycle,
    step,
)
from _support.support import alert_codes

from aistock_actors.actors.promotion_judge import PromotionJudge
from aistock_actors.config import load_config
from aistock_actors.core.model import pipeline
from aistock_actors.core.model.models import ModelParams
from aistock_actors.core.trading.curve import fold_returns
from aistock_actors.messages.model import BacktestCompleted, ModelTrained
from aistock_actors.messages.promotion import JudgeCandidate
from aistock_actors.runtime.cycle_run import CycleRun
from aistock_actors.runtime.supervisor import ChildSpec, Supervisor
from aistock_actors.services import promotion_decisions as promotion_ops
from aistock_actors.store import atomic
from aistock_actors.store.manifest_archive import ARCHIVE_BATCH, MANIFEST_RECENT_ENTRIES
from aistock_actors.store.models import ModelStore
from aistock_actors.store.promotion import EQUITY_CURVE_KEY, PromotionStore

Script = Callable[[str, ModelStore], JudgeCandidate]
CURVE = [("2015-06-01T00:00:00+00:00", 100_000.0), ("2015-09-01T00:00:00+00:00", 97_000.0),
         ("2016-01-01T00:00:00+00:00", 130_000.0)]
"""Every scripted candidate's backtest equity curve."""


@pytest.fixture(scope="module")
def trained_model() -> object:
    frames = planted_frames(n_symbols=3, n_bars=300)
    return pipeline.train_candidate(frames, ModelParams(horizon=1), 0, "base", datetime.now(UTC))


@pytest.fixture()
def store(tmp_path: Path, trained_model: object) -> ModelStore:
    models = ModelStore(tmp_path / "models")
    for model_id in ("m-a", "m-b"):
        models.put(dataclasses.replace(trained_model, model_id=model_id))  # type: ignore[type-var]
    return models


def candidate(model_id: str, *, sharpe: float, incumbent_sharpe: float | None = None,
              evaluate_incumbent: bool = True) -> Script:
    """A judge request for ``model_id``; the incumbent is whatever is active when it is sent."""

    def make(request_id: str, models: ModelStore) -> JudgeCandidate:
        try:
            sha = models.record(model_id).sha256
        except Exception:
            sha = "0" * 64
        active = models.active_record()
        incumbent = active.model_id if active is not None else None
        scored = incumbent is not None and evaluate_incumbent
        trained = ModelTrained(request_id="", model_id=model_id, sha256=sha, train_accuracy=0.6,
                               test_accuracy=0.58, threshold=0.6, samples=1000, symbols=3,
                               data_start="2015-01-02", data_end="2016-01-01")
        backtest = BacktestCompleted(
            request_id="", model_id=model_id, sharpe=sharpe, max_drawdown=0.05, win_rate=0.55,
            total_return=0.3, trade_count=100, transition_drawdown=0.02,
            return_over_drawdown=6.0, exposure=0.5, turnover=10.0, total_costs=100.0, bars=250,
            folds=4, oos_start="2015-06-01", oos_end="2016-01-01", incumbent_model_id=incumbent,
            incumbent_sharpe=incumbent_sharpe if scored else None,
            incumbent_max_drawdown=0.05 if scored else None,
            incumbent_note=None if scored or incumbent is None else "not evaluated",
            equity_curve=list(CURVE))
        return JudgeCandidate(request_id=request_id, trained=trained, backtest=backtest)

    return make


def judge_only(script: Iterator[Script], models: ModelStore) -> list[ChildSpec]:
    def make_request(request_id: str, _cycle: CycleRun) -> JudgeCandidate:
        return next(script)(request_id, models)

    return [ChildSpec(name="promotion_judge", actor_class=PromotionJudge, step="judge",
                      make_request=make_request)]


def run_judge(config: Path, models: ModelStore, *scripts: Script) -> list[dict[str, object]]:
    script = iter(scripts)
    return [step(run_cycle(config, judge_only(script, models))[0], "judge").data
            for _ in scripts]


def promote_a_then_b(config: Path, models: ModelStore) -> None:
    verdicts = run_judge(config, models, candidate("m-a", sharpe=1.5),
                         candidate("m-b", sharpe=1.5, incumbent_sharpe=1.0))
    assert [v["status"] for v in verdicts] == ["approved", "approved"]


def test_registry_grace_then_removal_falls_back_then_deactivates(
    tmp_path: Path, store: ModelStore
) -> None:
    config = lifecycle_config(tmp_path)
    promote_a_then_b(config, store)
    assert active_id(tmp_path) == "m-b"
    failing = candidate("m-x", sharpe=0.1, incumbent_sharpe=0.1)   # incumbent fails stage 1
    passing = candidate("m-x", sharpe=0.1, incumbent_sharpe=1.2)   # incumbent passes stage 1
    missing = candidate("m-x", sharpe=0.1, evaluate_incumbent=False)
    verdicts = run_judge(config, store, failing, passing, missing, missing)
    assert all(v["status"] == "rejected" for v in verdicts)
    assert active_id(tmp_path) == "m-b"  # one fail, a recovery, two misses: still in grace
    run_judge(config, store, missing)
    assert active_id(tmp_path) == "m-a"  # third miss in a row: m-b retired, m-a back
    registry = json.loads((tmp_path / "state/promotion/registry.json").read_text())
    assert registry["retired_models"] == ["m-b"]
    assert registry["strategies"][0]["model_id"] == "m-a"
    assert registry["strategies"][0]["consecutive_failures"] == 0
    run_judge(config, store, missing, missing, missing)
    assert pointer(tmp_path) is None  # m-a retired too and nothing is left to fall back to
    assert store.active_record() is None
    assert (tmp_path / "models/active/deactivated.json").exists()
    says = json.loads((tmp_path / "models/active/model.json").read_text())  # `cat` finds it
    assert says["active"] is False and says["previous_model_id"] == "m-a", says
    assert "no earlier good model" in says["reason"]
    actions = [r["action"] for r in audit_records(tmp_path) if r["action"].startswith(
        ("strategy_", "model_deactivated"))]
    assert actions == [
        "strategy_added", "strategy_updated",                  # promotions of m-a, m-b
        "strategy_entered_grace", "strategy_recovered",        # fail, pass
        "strategy_entered_grace", "strategy_grace_continued",  # two misses
        "strategy_removed", "strategy_added",                  # third miss: m-a re-registered
        "strategy_entered_grace", "strategy_grace_continued", "strategy_removed",
        "model_deactivated",
    ]
    assert "strategy_removed" in alert_codes(tmp_path / "state", "error")
    assert "model_deactivated" in alert_codes(tmp_path / "state", "error")
    assert "strategy_entered_grace" in alert_codes(tmp_path / "state", "warning")


def on_window(script: Script, **fields: object) -> Script:
    """``script`` with the backtest's champion-window fields set to ``fields``."""

    def make(request_id: str, models: ModelStore) -> JudgeCandidate:
        request = script(request_id, models)
        assert request.backtest is not None
        backtest = msgspec.structs.replace(request.backtest, **fields)
        return msgspec.structs.replace(request, backtest=backtest)

    return make


WINDOW = {"champion_window_start": "2015-09-01T00:00:00+00:00",
          "champion_window_end": "2016-01-01T00:00:00+00:00", "champion_window_bars": 87,
          "champion_window_out_of_sample": True, "incumbent_data_end": "2015-08-31T00:00:00+00:00",
          "champion_window_note": "compared on 87 bars after the training end"}


def test_stage7_compares_the_candidate_with_the_incumbent_on_the_champion_window(
    tmp_path: Path, store: ModelStore
) -> None:
    config = lifecycle_config(tmp_path)
    run_judge(config, store, candidate("m-a", sharpe=1.5))
    # Whole window 1.5 vs the incumbent's 1.0 would pass; on the same (unseen) bars 1.05 does not.
    same_bars = on_window(candidate("m-b", sharpe=1.5, incumbent_sharpe=1.0),
                          candidate_sharpe_champion_window=1.05, **WINDOW)
    verdict = run_judge(config, store, same_bars)[0]
    assert verdict["status"] == "rejected"
    assert verdict["reasons"] == ["stage7_failed_champion_not_beaten"]
    entry = manifest(tmp_path)[-1]
    stage7 = entry["stages"][6]
    assert stage7["value"] == pytest.approx(0.05)
    assert "window=2015-09-01T00:00:00+00:00..2016-01-01T00:00:00+00:00 (87 bars" in stage7["note"]
    assert "after the incumbent's training end" in stage7["note"]
    assert entry["backtest"]["champion_window_bars"] == 87
    assert entry["backtest"]["candidate_sharpe_champion_window"] == 1.05
    beats = on_window(candidate("m-b", sharpe=0.9, incumbent_sharpe=1.0),
                      candidate_sharpe_champion_window=1.2, **WINDOW)
    assert run_judge(config, store, beats)[0]["status"] == "approved"
    assert active_id(tmp_path) == "m-b"
    # The registry judges the incumbent on the same unseen bars: failing there counts.
    degrading = on_window(candidate("m-x", sharpe=0.1, incumbent_sharpe=0.2),
                          candidate_sharpe_champion_window=0.1, **WINDOW)
    run_judge(config, store, degrading)
    grace = [r for r in audit_records(tmp_path) if r["action"] == "strategy_entered_grace"]
    assert len(grace) == 1 and grace[0]["details"]["model_id"] == "m-b"
    assert grace[0]["details"]["incumbent_sharpe"] == 0.2
    assert grace[0]["details"]["champion_window_out_of_sample"] is True
    assert grace[0]["details"]["champion_window_note"] == WINDOW["champion_window_note"]


def test_a_backtest_reply_without_the_champion_window_fields_still_decodes_and_judges(
    tmp_path: Path, store: ModelStore
) -> None:
    config = lifecycle_config(tmp_path)
    run_judge(config, store, candidate("m-a", sharpe=1.5))
    current = candidate("m-b", sharpe=1.5, incumbent_sharpe=1.0)("r", store).backtest
    old = msgspec.json.decode(msgspec.json.encode(current))
    new_fields = {"incumbent_data_end", "candidate_sharpe_champion_window"} | {
        k for k in old if k.startswith("champion_window")}
    assert new_fields <= set(old)
    for key in new_fields:
        del old[key]
    decoded = msgspec.json.decode(msgspec.json.encode(old), type=BacktestCompleted)
    assert decoded == current and decoded.champion_window_bars is None

    def older(request_id: str, models: ModelStore) -> JudgeCandidate:
        request = candidate("m-b", sharpe=1.5, incumbent_sharpe=1.0)(request_id, models)
        return msgspec.structs.replace(request, backtest=decoded)

    assert run_judge(config, store, older)[0]["status"] == "approved"  # whole window, as before
    assert manifest(tmp_path)[-1]["stages"][6]["note"] == "incumbent=m-a"


def write_performance(tmp: Path, model_id: str, returns: list[float],
                      earlier: list[float] | None = None) -> None:
    """``earlier``: returns folded as the trader folds the ones before its equity window (#18)."""
    path = tmp / "state" / "paper" / "performance.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    folded = msgspec.to_builtins(fold_returns(None, earlier, "t0")) if earlier else None
    path.write_text(json.dumps({"model_id": model_id, "returns": returns, "earlier": folded}))


def test_degraded_paper_performance_rolls_back_to_previous_model(
    tmp_path: Path, store: ModelStore
) -> None:
    headless = {"auto_rollback_on_degradation": True, "degradation_threshold_pct": 0.05}
    config = lifecycle_config(tmp_path, headless=headless)
    off = json.loads(config.read_text())
    off["headless"]["auto_rollback_on_degradation"] = False
    disabled = tmp_path / "off.json"
    disabled.write_text(json.dumps(off))
    promote_a_then_b(config, store)
    keep = candidate("m-x", sharpe=0.1, incumbent_sharpe=1.2)
    write_performance(tmp_path, "m-b", [0.001] * 30)  # on track with its backtest
    run_judge(config, store, keep)
    assert active_id(tmp_path) == "m-b"
    write_performance(tmp_path, "m-b", [-0.004] * 5)  # 5 bars: too few to judge
    run_judge(config, store, keep)
    assert active_id(tmp_path) == "m-b"
    # ~14 points behind expectation over 30 bars, 25 of them folded (#18: a bounded record)
    write_performance(tmp_path, "m-b", [-0.004] * 5, earlier=[-0.004] * 25)
    run_judge(disabled, store, keep)
    assert active_id(tmp_path) == "m-b"  # the switch is off: nothing happens

    verdict = run_judge(config, store, keep)[0]
    assert active_id(tmp_path) == "m-a"
    assert any("m-a re-activated" in e for e in verdict["events"])  # type: ignore[attr-defined]
    entry_b = next(e for e in manifest(tmp_path) if e["model_id"] == "m-b")
    assert entry_b["status"] == "rolled_back"
    rollback = [r for r in audit_records(tmp_path) if r["action"] == "auto_rollback_on_degradation"]
    assert len(rollback) == 1
    assert rollback[0]["details"]["rolled_back_to"] == "m-a"
    assert rollback[0]["details"]["shortfall"] > 0.05
    assert rollback[0]["details"]["observations"] == 30
    assert "auto_rollback_on_degradation" in alert_codes(tmp_path / "state", "error")
    assert entry_b["rollback"]["rolled_back_to"] == "m-a"
    registry = json.loads((tmp_path / "state/promotion/registry.json").read_text())
    assert registry["rolled_back_models"] == ["m-b"]
    assert registry["strategies"][0]["model_id"] == "m-a"
    assert registry["strategies"][0]["consecutive_failures"] == 0  # no grace on the way back


def test_halt_at_the_moment_of_promotion_refuses_it(tmp_path: Path, store: ModelStore) -> None:
    config = lifecycle_config(tmp_path)
    script = candidate("m-a", sharpe=1.5)
    holder: list[Supervisor] = []

    def halting(request_id: str, _cycle: CycleRun) -> JudgeCandidate:
        holder[0].halt_flag.set()  # the halt lands while the request waits in the inbox
        return script(request_id, store)

    sup = Supervisor(load_config(config), [ChildSpec(
        name="promotion_judge", actor_class=PromotionJudge, step="judge", make_request=halting)])
    holder.append(sup)
    sup.start()
    try:
        sup.begin_cycle()
        while sup.cycle is not None:
            sup.pump(0.05)
    finally:
        sup.stop()
    assert sup.last_summary is not None
    judge = step(sup.last_summary, "judge")
    assert judge.status == "failed" and "halted" in judge.detail
    assert pointer(tmp_path) is None and manifest(tmp_path) == []
    assert "promotion_refused_halted" in [r["action"] for r in audit_records(tmp_path)]


# --- an interrupted pointer move (write-ahead record, then SIGKILL or a failed write) ------------


class PointerWrites:
    """While :attr:`refuse` is set, writing ``models/active/model.json`` raises ENOSPC (the
    state a SIGKILL between the write-ahead record and the pointer move leaves, made by the
    real code)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp: Path) -> None:
        self.refuse = False
        self.refused = 0
        target = (tmp / "models" / "active" / "model.json").resolve()
        real = atomic._write_replace

        def write_replace(path: Path, data: bytes) -> None:
            if self.refuse and Path(path).resolve() == target:
                self.refused += 1
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            real(path, data)

        monkeypatch.setattr(atomic, "_write_replace", write_replace)


def start_judge(config: Path, models: ModelStore) -> None:
    """Start the judge (its start-up reconciles) and stop it again: no cycle."""
    sup = Supervisor(load_config(config), judge_only(iter(()), models))
    sup.start()
    sup.stop()


def registry_file(tmp: Path) -> dict[str, object]:
    return json.loads((tmp / "state/promotion/registry.json").read_text())  # type: ignore[no-any-return]


def entry_of(tmp: Path, model_id: str) -> dict[str, object]:
    return [e for e in manifest(tmp) if e["model_id"] == model_id][-1]


def actions(tmp: Path, action: str) -> list[dict[str, object]]:
    return [r for r in audit_records(tmp) if r["action"] == action]


def interrupt_promotion_of_b(tmp: Path, config: Path, store: ModelStore,
                             monkeypatch: pytest.MonkeyPatch, *, previous: bool) -> None:
    """m-a active (or nothing), then m-b judged ``approved`` and its pointer move refused."""
    if previous:
        run_judge(config, store, candidate("m-a", sharpe=1.5))
    disk = PointerWrites(monkeypatch, tmp)
    disk.refuse = True
    script = iter([candidate("m-b", sharpe=1.5, incumbent_sharpe=1.0)])
    summary, _ = run_cycle(config, judge_only(script, store))
    disk.refuse = False
    assert step(summary, "judge").status == "crashed"
    assert disk.refused >= 1
    # The crash state: the manifest approves m-b, the pointer still names the previous model.
    assert entry_of(tmp, "m-b")["status"] == "approved"
    assert active_id(tmp) == ("m-a" if previous else None)


@pytest.mark.parametrize("previous", [True, False], ids=["over-previous", "first-model"])
def test_interrupted_promotion_is_rolled_forward_when_the_judge_starts(
    tmp_path: Path, store: ModelStore, monkeypatch: pytest.MonkeyPatch, previous: bool
) -> None:
    config = lifecycle_config(tmp_path)
    interrupt_promotion_of_b(tmp_path, config, store, monkeypatch, previous=previous)

    start_judge(config, store)  # a restarted daemon: before its first cycle trades
    assert active_id(tmp_path) == "m-b"
    assert store.active_record() is not None  # the pointer is a valid record
    entry = entry_of(tmp_path, "m-b")
    assert entry["status"] == "approved"
    done = actions(tmp_path, "interrupted_promotion_completed")
    assert len(done) == 1
    details = done[0]["details"]
    assert details["entry_id"] == entry["id"] and details["model_id"] == "m-b"  # type: ignore[index]
    assert details["previous_model_id"] == ("m-a" if previous else None)  # type: ignore[index]
    assert details["sha256"] == store.record("m-b").sha256  # type: ignore[index]
    strategies = registry_file(tmp_path)["strategies"]
    assert [s["model_id"] for s in strategies] == ["m-b"]  # type: ignore[attr-defined]
    assert alert_codes(tmp_path / "state", "critical") == []

    # Done once: a later start and judge step change nothing.
    start_judge(config, store)
    verdict = run_judge(config, store, candidate("m-x", sharpe=0.1, incumbent_sharpe=1.2))[0]
    assert verdict["status"] == "rejected" and verdict["active_model"] == "m-b"
    assert active_id(tmp_path) == "m-b"
    assert len(actions(tmp_path, "interrupted_promotion_completed")) == 1


def test_interrupted_promotion_is_rolled_forward_by_the_next_judge_step(
    tmp_path: Path, store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also without a restart in between (a judge that cannot reconcile at start-up)."""
    config = lifecycle_config(tmp_path)
    interrupt_promotion_of_b(tmp_path, config, store, monkeypatch, previous=True)
    monkeypatch.setattr(PromotionJudge, "repair", lambda self, *a, **k: [])
    verdict = run_judge(config, store, candidate("m-x", sharpe=0.1, incumbent_sharpe=1.2))[0]
    assert active_id(tmp_path) == "m-b"
    assert verdict["active_model"] == "m-b"
    assert any("interrupted promotion completed" in e
               for e in verdict["events"])  # type: ignore[attr-defined]
    assert len(actions(tmp_path, "interrupted_promotion_completed")) == 1
    assert registry_file(tmp_path)["strategies"][0]["model_id"] == "m-b"  # type: ignore[index]


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_interrupted_promotion_with_a_bad_artifact_is_not_activated(
    tmp_path: Path, store: ModelStore, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    config = lifecycle_config(tmp_path)
    interrupt_promotion_of_b(tmp_path, config, store, monkeypatch, previous=True)
    artifact = store.artifact_path("m-b")
    if damage == "corrupt":
        artifact.write_bytes(artifact.read_bytes()[:-100])
    else:
        artifact.unlink()
    before = pointer(tmp_path)

    start_judge(config, store)
    assert pointer(tmp_path) == before and active_id(tmp_path) == "m-a"
    assert alert_codes(tmp_path / "state", "critical") == ["model_integrity_failed"]
    entry = entry_of(tmp_path, "m-b")
    assert entry["status"] == "rejected"
    assert entry["reasons"][-1] == "model_integrity_failed"  # type: ignore[index]
    refused = actions(tmp_path, "interrupted_promotion_not_activated")
    assert len(refused) == 1 and refused[0]["details"]["model_id"] == "m-b"  # type: ignore[index]
    assert actions(tmp_path, "interrupted_promotion_completed") == []
    assert registry_file(tmp_path)["strategies"][0]["model_id"] == "m-a"  # type: ignore[index]

    # Recorded once: the next steps neither retry it nor alert again.
    run_judge(config, store, candidate("m-x", sharpe=0.1, incumbent_sharpe=1.2))
    assert active_id(tmp_path) == "m-a"
    assert alert_codes(tmp_path / "state", "critical") == ["model_integrity_failed"]


def test_interrupted_auto_promotion_waits_for_the_operator_once_auto_promotion_is_off(
    tmp_path: Path, store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = lifecycle_config(tmp_path)
    interrupt_promotion_of_b(tmp_path, config, store, monkeypatch, previous=True)
    supervised = tmp_path / "supervised.json"
    supervised.write_text(json.dumps({**json.loads(config.read_text()), "mode": "supervised"}))

    start_judge(supervised, store)
    assert active_id(tmp_path) == "m-a"  # not activated without the operator
    entry = entry_of(tmp_path, "m-b")
    assert entry["status"] == "pending"
    assert entry["reasons"][-1] == "interrupted_promotion"  # type: ignore[index]
    assert len(actions(tmp_path, "interrupted_promotion_pending_approval")) == 1
    assert [e["id"] for e in promotion_ops.pending_summary(load_config(supervised))] \
        == [entry["id"]]

    promotion_ops.decide(load_config(supervised), str(entry["id"]), approve=True)
    assert active_id(tmp_path) == "m-b"


def test_a_retired_model_is_never_rolled_forward(tmp_path: Path, store: ModelStore) -> None:
    """m-b's entry stays ``approved`` after the registry retires it: the pointer falls back to
    m-a and stays there (the retired model is excluded, not an interrupted promotion)."""
    config = lifecycle_config(tmp_path)
    promote_a_then_b(config, store)
    missing = candidate("m-x", sharpe=0.1, evaluate_incumbent=False)
    run_judge(config, store, missing, missing, missing)
    assert active_id(tmp_path) == "m-a"
    assert registry_file(tmp_path)["retired_models"] == ["m-b"]
    assert entry_of(tmp_path, "m-b")["status"] == "approved"

    start_judge(config, store)
    run_judge(config, store, candidate("m-x", sharpe=0.1, incumbent_sharpe=1.2))
    assert active_id(tmp_path) == "m-a"
    assert actions(tmp_path, "interrupted_promotion_completed") == []


def test_a_rollback_interrupted_between_manifest_and_registry_is_finished_not_reversed(
    tmp_path: Path, store: ModelStore
) -> None:
    """The rollback's write-ahead commit writes the manifest (m-b ``rolled_back``), then the
    registry; killed in between, the pointer still names m-b and the registry does not exclude
    it. The judge finishes the fall-back to m-a and excludes m-b for good."""
    headless = {"auto_rollback_on_degradation": True, "degradation_threshold_pct": 0.05}
    config = lifecycle_config(tmp_path, headless=headless)
    promote_a_then_b(config, store)
    registry_before = (tmp_path / "state/promotion/registry.json").read_bytes()
    active_dir = tmp_path / "models" / "active"
    pointer_before = {p.name: p.read_bytes() for p in active_dir.iterdir()}
    write_performance(tmp_path, "m-b", [-0.004] * 30)
    run_judge(config, store, candidate("m-x", sharpe=0.1, incumbent_sharpe=1.2))
    assert active_id(tmp_path) == "m-a" and entry_of(tmp_path, "m-b")["status"] == "rolled_back"
    # The crash state: manifest written, registry and pointer not.
    (tmp_path / "state/promotion/registry.json").write_bytes(registry_before)
    for name, data in pointer_before.items():
        (active_dir / name).write_bytes(data)
    assert active_id(tmp_path) == "m-b"

    start_judge(config, store)
    assert active_id(tmp_path) == "m-a"
    assert registry_file(tmp_path)["rolled_back_models"] == ["m-b"]
    assert registry_file(tmp_path)["strategies"][0]["model_id"] == "m-a"  # type: ignore[index]
    assert len(actions(tmp_path, "interrupted_fallback_completed")) == 1
    run_judge(config, store, candidate("m-x", sharpe=0.1, incumbent_sharpe=1.2))
    assert active_id(tmp_path) == "m-a"


def test_operator_approvals_count_from_their_decision_not_their_position(
    tmp_path: Path, store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two pending entries approved newest first: the older entry, approved last, is active and
    the judge does not "roll forward" to the newer one. An ``--approve`` whose pointer move
    fails is recorded first and finished by the judge."""
    config = lifecycle_config(tmp_path, mode="supervised")
    run_judge(config, store, candidate("m-a", sharpe=1.5), candidate("m-b", sharpe=1.5))
    first, second = (str(e["id"]) for e in manifest(tmp_path))
    loaded = load_config(config)
    promotion_ops.decide(loaded, second, approve=True)
    promotion_ops.decide(loaded, first, approve=True)
    assert active_id(tmp_path) == "m-a"
    start_judge(config, store)
    assert active_id(tmp_path) == "m-a"
    assert actions(tmp_path, "interrupted_promotion_completed") == []

    run_judge(config, store, candidate("m-b", sharpe=1.5, incumbent_sharpe=1.0))
    third = str(manifest(tmp_path)[-1]["id"])
    disk = PointerWrites(monkeypatch, tmp_path)
    disk.refuse = True
    with pytest.raises(OSError):
        promotion_ops.decide(loaded, third, approve=True)
    disk.refuse = False
    assert manifest(tmp_path)[-1]["status"] == "approved" and active_id(tmp_path) == "m-a"
    start_judge(config, store)
    assert active_id(tmp_path) == "m-b"
    assert len(actions(tmp_path, "interrupted_promotion_completed")) == 1


# --- backtest equity curves: their own files, never the manifest ---------------------------------


def curve_files(tmp: Path) -> list[str]:
    folder = tmp / "state" / "promotion" / "curves"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("mode", ["headless", "supervised"])
def test_approved_and_pending_verdicts_store_their_curve_outside_the_manifest(
    tmp_path: Path, store: ModelStore, mode: str
) -> None:
    config = lifecycle_config(tmp_path, mode=mode)
    run_judge(config, store, candidate("m-a", sharpe=1.5),
              candidate("m-x", sharpe=0.1, incumbent_sharpe=1.2))
    entries = manifest(tmp_path)
    passed = "approved" if mode == "headless" else "pending"
    assert [e["status"] for e in entries] == [passed, "rejected"]
    assert all(EQUITY_CURVE_KEY not in e["backtest"] for e in entries)
    assert all(e["backtest"]["bars"] == 250 for e in entries)  # the metrics stay
    assert curve_files(tmp_path) == ["m-a.json"]  # a rejected verdict: none
    stored = PromotionStore(tmp_path / "state", None).load_curve("m-a")
    assert stored is not None and stored.points == CURVE and stored.entry_id == entries[0]["id"]


def test_the_judge_prunes_stale_curves_and_ignores_a_corrupt_one(
    tmp_path: Path, store: ModelStore
) -> None:
    config = lifecycle_config(tmp_path)
    run_judge(config, store, candidate("m-a", sharpe=1.5))
    promo = PromotionStore(tmp_path / "state", None)
    assert promo.save_curve("m-gone", "m-gone@t", CURVE)  # a model the manifest no longer keeps
    active = promo.curve_path("m-a")
    assert active is not None
    active.write_bytes(b"{not json")  # the active model's curve, corrupt (no .bak yet)

    verdict = run_judge(config, store, candidate("m-x", sharpe=0.1, incumbent_sharpe=1.2))[0]
    assert verdict["status"] == "rejected" and verdict["active_model"] == "m-a"
    assert curve_files(tmp_path) == ["m-a.json"]  # stale one pruned, the active one kept
    assert promo.load_curve("m-a") is None  # unreadable: "no curve", never an exception
    assert alert_codes(tmp_path / "state", "critical") == []  # the judge never reads curves


def test_a_failed_curve_write_still_records_the_verdict(
    tmp_path: Path, store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(*_args: object) -> bool:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(PromotionStore, "save_curve", no_space)
    config = lifecycle_config(tmp_path)
    verdict = run_judge(config, store, candidate("m-a", sharpe=1.5))[0]
    assert verdict["status"] == "approved" and active_id(tmp_path) == "m-a"
    assert curve_files(tmp_path) == []  # the report shows its note instead of the plot


# --- bounded history (issue #18) ----------------------------------------------------------------


def _old_verdicts(template: dict[str, object], n: int) -> list[dict[str, object]]:
    """``n`` rejected/recorded copies of a real entry, an hour apart, before the template's."""
    out = []
    for i in range(n):
        time = f"20{10 + i // 8760:02d}-01-01T00:00:00Z"  # sorts before 2026
        out.append({**template, "id": f"old-{i:05d}@{time}", "model_id": f"old-{i:05d}",
                    "time": time[:-1] + f".{i:06d}Z", "status": ("rejected", "recorded")[i % 2]})
    return out


def test_a_judge_step_costs_the_same_with_3000_entries_of_history(
    tmp_path: Path, trained_model: object
) -> None:
    dirs = {name: tmp_path / name for name in ("empty", "history")}
    stores = {}
    for name, tmp in dirs.items():
        stores[name] = ModelStore(tmp / "models")
        for model_id in ("m-a", "m-b"):
            stores[name].put(dataclasses.replace(trained_model, model_id=model_id))  # type: ignore[type-var]
    configs = {name: lifecycle_config(tmp) for name, tmp in dirs.items()}
    # A real entry as the template of 3,000 old verdicts, written as an old install left them.
    run_judge(configs["empty"], stores["empty"], candidate("m-a", sharpe=0.1))
    template = manifest(dirs["empty"])[0]
    old = _old_verdicts(template, 3000)
    path = dirs["history"] / "state" / "promotion" / "manifest.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(old))
    run_judge(configs["history"], stores["history"], candidate("m-a", sharpe=0.1))
    bound = MANIFEST_RECENT_ENTRIES + ARCHIVE_BATCH + 1
    assert len(manifest(dirs["history"])) <= bound  # the first step moved the rest out
    history = PromotionStore(dirs["history"] / "state", None).load_history()
    assert [e.id for e in history[:-1]] == [e["id"] for e in old]  # nothing lost, in order
    durations: dict[str, list[float]] = {"empty": [], "history": []}
    for _ in range(5):  # interleaved, so a busy moment of the machine hits both alike
        for name in ("empty", "history"):
            summary, _sup = run_cycle(configs[name], judge_only(
                iter([candidate("m-a", sharpe=0.1)]), stores[name]))
            durations[name].append(step(summary, "judge").duration_s)
            assert len(manifest(dirs[name])) <= bound  # every step reads a bounded manifest
    empty, full = (sorted(durations[n])[2] for n in ("empty", "history"))
    assert full <= 2 * empty + 0.005, durations  # medians; 5 ms of slack for timer noise


def test_an_implausible_candidate_is_held_as_leak_suspected_then_approved_by_the_operator(
    tmp_path: Path, store: ModelStore
) -> None:
    """Sharpe 18 (a one-bar-ahead leak's figure): held in headless mode with a critical alert
    naming every failing stage, never activated; ``--approve`` still works after review."""
    config = lifecycle_config(tmp_path)
    verdict = run_judge(config, store, candidate("m-a", sharpe=18.1))[0]
    assert verdict["status"] == "held" and verdict["action"] == "hold"
    assert verdict["reasons"] == ["leak_suspected"]
    assert active_id(tmp_path) is None
    entry = entry_of(tmp_path, "m-a")
    assert entry["stages"][7]["name"] == "plausibility"  # type: ignore[index]
    assert entry["stages"][7]["value"] == pytest.approx(18.1)  # type: ignore[index]
    assert "promotion_held_leak_suspected" in alert_codes(tmp_path / "state", "critical")
    assert len(actions(tmp_path, "promotion_held_leak_suspected")) == 1

    promotion_ops.decide(load_config(config), str(entry["id"]), approve=True)
    assert active_id(tmp_path) == "m-a"


def test_the_alert_lists_every_failing_stage(tmp_path: Path, store: ModelStore) -> None:
    config = lifecycle_config(tmp_path)
    promote_a_then_b(config, store)  # m-b active
    run_judge(config, store, candidate("m-x", sharpe=9.0, incumbent_sharpe=20.0))
    reasons = entry_of(tmp_path, "m-x")["reasons"]
    assert reasons == ["stage7_failed_champion_not_beaten", "leak_suspected"]
    folder = tmp_path / "state" / "alerts" / "critical"
    messages = [json.loads(p.read_text())["message"] for p in folder.glob("*.json")]
    assert any(
        "stage7_failed_champion_not_beaten, leak_suspected" in m and "m-x" in m for m in messages
    )
    assert active_id(tmp_path) == "m-b"
