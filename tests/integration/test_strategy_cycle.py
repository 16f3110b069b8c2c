"""The daemon trades strategies: a candidate-set cycle stores a signed StrategyModel, the judge
promotes it, the next cycle paper-trades it; a user strategy from ``examples/`` does the same;
bad strategies fail the step cleanly, naming themselves, and the previous model keeps trading."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _support.lifecycle_support import (
    active_id,
    add_bars,
    audit_records,
    manifest,
    pointer,
    run_cycle,
    step,
)
from _support.strategy_support import RULES, strategy_config, write_data, write_user_modules

from aistock_actors.config import load_config
from aistock_actors.core.strategy.artifact import StrategyModel
from aistock_actors.store.models import ModelStore
from aistock_actors.store.signing import IntegrityKey

FLAKY = "flaky_strategy:Flaky"


def _store(tmp: Path, config: Path) -> ModelStore:
    loaded = load_config(config)
    return ModelStore(loaded.models_dir, None, IntegrityKey.from_config(loaded))


def _trials(tmp: Path) -> int:
    return int(json.loads((tmp / "state" / "promotion" / "trials.json").read_text())["trials"])


@pytest.fixture(scope="module")
def rules_promoted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cycle with the three built-in rules on planted data: a rule wins and is promoted."""
    tmp = tmp_path_factory.mktemp("rules")
    write_user_modules(tmp)
    write_data(tmp)
    summary, _ = run_cycle(strategy_config(tmp, RULES))
    (tmp / "summary.json").write_text(json.dumps(
        {s.name: [s.status, s.detail, s.data] for s in summary.steps}, default=str))
    return tmp


def _summary(tmp: Path) -> dict[str, list[object]]:
    return json.loads((tmp / "summary.json").read_text())  # type: ignore[no-any-return]


def clone(template: Path, tmp: Path) -> None:
    """Copy a promoted state (and the user modules) into ``tmp`` and add one bar."""
    for name in ("data", "state", "models"):
        shutil.copytree(template / name, tmp / name)
    shutil.copy2(template / "integrity.key", tmp / "integrity.key")
    write_user_modules(tmp)
    add_bars(tmp)


def test_a_winning_rule_is_stored_as_a_strategy_model_promoted_and_traded(
    rules_promoted: Path, tmp_path: Path
) -> None:
    tmp = rules_promoted
    steps = _summary(tmp)
    train = steps["train"][2]
    assert isinstance(train, dict)
    assert steps["train"][0] == "ok" and train["strategy"] == "autocorrelation"
    assert set(train["candidates"]) == set(RULES) and train["failed_candidates"] == {}
    model_id = train["model_id"]
    assert steps["judge"][0] == "ok" and active_id(tmp) == model_id
    artifact = _store(tmp, tmp / "config.json").load(model_id)
    assert isinstance(artifact, StrategyModel) and artifact.spec.name == "autocorrelation"
    record = json.loads((tmp / "models" / model_id / "metadata.json").read_text())
    assert record["extra"]["artifact"] == "strategy"
    assert _trials(tmp) == len(RULES)  # every candidate is a trial, counted once
    trained = [r for r in audit_records(tmp) if r["action"] == "model_trained"]
    assert trained[-1]["details"]["strategy"] == "autocorrelation"
    assert set(trained[-1]["details"]["candidates_oos_sharpe"]) == set(RULES)
    approved = [e for e in manifest(tmp) if e["status"] == "approved"]
    assert [e["model_id"] for e in approved] == [model_id]
    # The next cycle fills the orders the promoted strategy planned, and trades it.
    clone(tmp, tmp_path)
    summary, _ = run_cycle(strategy_config(tmp_path, RULES))
    trade = step(summary, "trade")
    assert trade.status == "ok" and trade.data["model_id"] == model_id
    assert trade.data["fills"] > 0
    backtest = step(summary, "backtest").data  # a StrategyModel incumbent is scored
    assert backtest["incumbent_model_id"] == model_id and backtest["incumbent_sharpe"] is not None
    assert _trials(tmp_path) == 2 * len(RULES)


def test_the_single_ml_recipe_scores_a_strategy_incumbent(
    rules_promoted: Path, tmp_path: Path
) -> None:
    clone(rules_promoted, tmp_path)
    incumbent = active_id(tmp_path)
    summary, _ = run_cycle(strategy_config(tmp_path, ["ml"]))  # back to today's default
    assert step(summary, "train").data["strategy"] is None  # a TrainedModel this time
    backtest = step(summary, "backtest")
    assert backtest.status == "ok", backtest.detail
    assert backtest.data["incumbent_model_id"] == incumbent
    assert backtest.data["incumbent_sharpe"] is not None, backtest.data["incumbent_note"]
    assert step(summary, "judge").status == "ok"


def test_the_example_user_strategy_runs_train_backtest_gate_trade(tmp_path: Path) -> None:
    write_user_modules(tmp_path)
    write_data(tmp_path)
    user = [{"path": "reversal_strategy:FadeBigMoves", "params": {"threshold": 2.0}}]
    config = strategy_config(tmp_path, [], user, backend="loky")
    summary, _ = run_cycle(config)  # loky: the user class reaches the workers by value
    assert step(summary, "train").data["strategy"] == "fade_big_moves"
    judge = step(summary, "judge").data
    assert judge["status"] == "approved", judge["stage_values"]
    model_id = active_id(tmp_path)
    artifact = _store(tmp_path, config).load(model_id or "")
    assert isinstance(artifact, StrategyModel)
    assert artifact.spec.path == "reversal_strategy:FadeBigMoves" and artifact.spec.source_sha256
    trade = step(summary, "trade").data
    assert trade["model_id"] == model_id and trade["orders_planned"] > 0  # the last bar's jump
    add_bars(tmp_path)
    summary, _ = run_cycle(config)
    assert step(summary, "trade").data["fills"] > 0


@pytest.mark.parametrize(
    ("strategy", "named"),
    [
        ({"path": "no_such_module:Thing"}, "no_such_module:Thing"),
        ({"path": "flaky_strategy:NoWeights"}, "lacks method(s) ['weights']"),
        ({"path": FLAKY, "params": {"after": 20240101}}, "param 'after' must be str"),
    ],
    ids=["does_not_import", "missing_method", "wrong_param_type"],
)
def test_a_strategy_that_does_not_load_fails_train_and_the_active_model_keeps_trading(
    rules_promoted: Path, tmp_path: Path, strategy: dict[str, object], named: str
) -> None:
    clone(rules_promoted, tmp_path)
    before = pointer(tmp_path)
    summary, _ = run_cycle(strategy_config(tmp_path, RULES, [strategy]))
    train = step(summary, "train")
    assert train.status == "failed" and "strategy_invalid" in train.detail
    assert "training.strategies[0]" in train.detail and named in train.detail
    assert "\n" not in train.detail
    assert pointer(tmp_path) == before
    trade = step(summary, "trade")
    assert trade.status == "ok" and trade.data["model_id"] == active_id(tmp_path)


@pytest.mark.parametrize("mode", ["raise", "nan", "big"])
def test_a_strategy_failing_at_train_time_is_named_and_counted(
    rules_promoted: Path, tmp_path: Path, mode: str
) -> None:
    clone(rules_promoted, tmp_path)
    before, trials = pointer(tmp_path), _trials(tmp_path)
    bad = [{"path": FLAKY, "params": {"mode": mode, "after": "2000-01-01"}}]
    summary, _ = run_cycle(strategy_config(tmp_path, [], bad))  # the only candidate
    train = step(summary, "train")
    assert train.status == "failed" and "no_candidate_left" in train.detail
    assert "'flaky'" in train.detail
    assert pointer(tmp_path) == before and _trials(tmp_path) == trials + 1
    assert step(summary, "trade").data["model_id"] == active_id(tmp_path)
    # Beside a good candidate the failing one is named, counted, and not selected.
    add_bars(tmp_path)
    summary, _ = run_cycle(strategy_config(tmp_path, ["autocorrelation"], bad))
    data = step(summary, "train").data
    assert data["strategy"] == "autocorrelation" and "flaky" in data["failed_candidates"]
    assert _trials(tmp_path) == trials + 3


@pytest.mark.parametrize("mode", ["raise", "nan", "big"])
def test_a_strategy_failing_at_trade_time_plans_nothing_and_fails_the_step(
    tmp_path: Path, mode: str
) -> None:
    write_user_modules(tmp_path)
    write_data(tmp_path)
    last = (tmp_path / "data" / "P00.csv").read_text().rstrip("\n").rsplit("\n", 1)[-1]
    flaky = [{"path": FLAKY, "params": {"mode": mode, "after": last.split(",")[0]}}]
    config = strategy_config(tmp_path, [], flaky)
    summary, _ = run_cycle(config)  # fine on every bar it was trained on
    assert step(summary, "judge").data["status"] == "approved"
    assert step(summary, "trade").data["orders_planned"] > 0
    model_id = active_id(tmp_path)
    add_bars(tmp_path)  # a bar after ``after``: the strategy misbehaves from now on
    summary, _ = run_cycle(config)
    assert step(summary, "train").status == "failed"  # and the candidate is not trained
    trade = step(summary, "trade")
    assert trade.status == "failed" and "'flaky'" in trade.detail, trade.detail
    assert active_id(tmp_path) == model_id
    ledger = json.loads((tmp_path / "state" / "paper" / "ledger.json").read_text())
    assert ledger["positions"] and ledger["open_orders"] == []  # earlier orders filled, none new
    assert summary.outcome == "failed"


def test_an_edited_user_strategy_refuses_to_load(tmp_path: Path) -> None:
    write_user_modules(tmp_path)
    write_data(tmp_path)
    user = [{"path": "reversal_strategy:FadeBigMoves", "params": {"threshold": 2.0}}]
    config = strategy_config(tmp_path, [], user)
    run_cycle(config)
    model_id = active_id(tmp_path)
    assert model_id is not None
    source = tmp_path / "reversal_strategy.py"
    source.write_text(source.read_text() + "\n# edited after training\n")
    add_bars(tmp_path)
    summary, _ = run_cycle(config)
    trade = step(summary, "trade")
    assert trade.status == "failed" and "source changed since training" in trade.detail
    assert "reversal_strategy:FadeBigMoves" in trade.detail
    alerts = "".join(p.read_text() for p in (tmp_path / "state" / "alerts").rglob("*.json*"))
    assert "model_integrity_failed" in alerts  # the backtester refused the incumbent too
