"""``training.candidates`` and ``training.strategies``: the default is today's single ML recipe;
an unknown name, an empty set, a repeated name or a malformed strategy is one config error
naming the key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aistock_actors.config import load_config, parse_config
from aistock_actors.errors import ConfigError
from aistock_actors.services.strategy_candidates import (
    builtin_strategy,
    configured_candidates,
    single_ml_recipe,
)

REPO = Path(__file__).resolve().parents[2]


def error_of(training: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(json.dumps({"training": training}), source="cfg.json")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_the_default_is_the_single_ml_recipe() -> None:
    config, _ = parse_config("{}")
    assert config.training.candidates == ("ml",) and config.training.strategies == ()
    assert single_ml_recipe(config)


def test_the_demo_config_runs_the_full_built_in_set() -> None:
    text = (REPO / "configs" / "demo.json").read_text()
    config, _ = parse_config(text, source="demo.json")
    assert set(config.training.candidates) == {
        "ml_h1", "ml_h5", "ml_h20", "autocorrelation", "time_series_momentum", "sma_cross"}
    assert not single_ml_recipe(config)


@pytest.mark.parametrize(
    ("training", "expected"),
    [
        ({"candidates": ["ml", "magic"]}, "cfg.json: training.candidates[1]: Invalid enum value "
                                          "'magic' (allowed: 'autocorrelation' | 'ml'"),
        ({"candidates": []}, "training: candidates: empty, and no strategies"),
        ({"candidates": ["sma_cross", "sma_cross"]}, "['sma_cross'] named more than once"),
        ({"strategies": [{"path": "no_colon"}]}, "training.strategies[0].path: Expected `str` "
                                                 "matching regex"),
        ({"strategies": [{"path": "m:C", "param": {}}]},
         "training.strategies[0].param: unknown key (allowed keys under training.strategies[0]: "
         "path, params)"),
        ({"strategies": [{"path": "m:C", "params": []}]},
         "training.strategies[0].params: Expected `object`, got `array`"),
    ],
    ids=["unknown_name", "empty", "twice", "bad_path", "unknown_key", "params_not_object"],
)
def test_bad_candidate_config_is_one_error_naming_the_key(
    training: dict[str, object], expected: str
) -> None:
    assert expected in error_of(training)


def test_every_built_in_name_builds_a_strategy_named_after_it() -> None:
    config, _ = parse_config(json.dumps({"training": {"horizon": 3}}))
    names = ["ml", "ml_h1", "ml_h5", "ml_h20", "autocorrelation", "time_series_momentum",
             "sma_cross"]
    for name in names:
        assert builtin_strategy(name, config).name == name
    assert builtin_strategy("ml", config).horizon == 3
    assert builtin_strategy("ml_h20", config).horizon == 20


def test_user_strategies_load_from_the_configs_folder(tmp_path: Path) -> None:
    example = REPO / "examples" / "reversal_strategy.py"
    (tmp_path / "reversal_strategy.py").write_text(example.read_text())
    config = {"state_dir": str(tmp_path / "state"), "models_dir": str(tmp_path / "models"),
              "training": {"candidates": ["sma_cross"], "strategies": [
                  {"path": "reversal_strategy:FadeBigMoves", "params": {"threshold": 2.5}}]}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    candidates = configured_candidates(load_config(path))
    assert [c.spec.name for c in candidates] == ["sma_cross", "fade_big_moves"]
    user = candidates[1].spec
    assert user.path == "reversal_strategy:FadeBigMoves" and len(user.source_sha256) == 64


def test_a_user_strategy_that_does_not_load_stops_run_once_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "reversal_strategy.py").write_text(
        (REPO / "examples" / "reversal_strategy.py").read_text())
    config = {"state_dir": str(tmp_path / "state"), "models_dir": str(tmp_path / "models"),
              "data": {"csv_dir": str(tmp_path / "data")},
              "training": {"strategies": [
                  {"path": "reversal_strategy:FadeBigMoves", "params": {"window": "forty"}}]}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    done = subprocess.run([sys.executable, str(REPO / "supervisor.py"), str(path), "--run-once"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if "config error" in line]
    assert len(lines) == 1 and "training.strategies[0]" in lines[0]
    assert "param 'window' must be int, got str 'forty'" in lines[0]
    assert not (tmp_path / "state" / "supervisor.json").exists()  # nothing ran
