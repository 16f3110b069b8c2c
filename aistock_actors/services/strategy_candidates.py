"""The config's candidate set as strategies, and a stored strategy artifact back as a strategy.

:func:`configured_candidates` turns ``training.candidates`` (built-in names) and
``training.strategies`` (user ``module:Class`` + params, loaded by
:mod:`aistock_actors.services.strategy_loader` from the config file's folder or an installed
package) into :class:`Candidate` objects; a user strategy that does not load is one
:class:`~aistock_actors.errors.StrategyError` naming its config key and path.
:func:`resolve_strategy` gives the strategy of a stored :class:`StrategyModel`: a built-in is in
the artifact; a user strategy is loaded again from its source and refused
(:class:`~aistock_actors.errors.ModelIntegrityError`) when that source changed since training.
"""

from __future__ import annotations

from dataclasses import dataclass

from aistock_actors.config import Config, LoadedConfig
from aistock_actors.core.strategy.artifact import StrategyModel, StrategySpec
from aistock_actors.core.strategy.ml import MetaLabelledStrategy
from aistock_actors.core.strategy.protocol import Strategy
from aistock_actors.core.strategy.rules import (
    AutocorrelationStrategy,
    SmaCross,
    TimeSeriesMomentum,
)
from aistock_actors.errors import ConfigError, ModelIntegrityError, StrategyError
from aistock_actors.services.strategy_loader import load_strategy, strategy_fingerprint

ML_ONLY: tuple[str, ...] = ("ml",)
"""The default candidate set: today's single ML recipe, stored as a TrainedModel."""
ML_HORIZONS: dict[str, int] = {"ml_h1": 1, "ml_h5": 5, "ml_h20": 20}


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One pre-registered candidate: the strategy and what the artifact records of it."""

    strategy: Strategy
    spec: StrategySpec


def single_ml_recipe(config: Config) -> bool:
    """Whether the config trains today's single ML recipe (no candidate set)."""
    return config.training.candidates == ML_ONLY and not config.training.strategies


def builtin_strategy(name: str, config: Config) -> Strategy:
    """The built-in candidate ``name`` (a ``training.candidates`` value)."""
    training = config.training
    if name == "ml" or name in ML_HORIZONS:
        horizon = training.horizon if name == "ml" else ML_HORIZONS[name]
        return MetaLabelledStrategy(horizon=horizon, primary=training.primary,
                                    seed=training.seed, name=name)
    rules: dict[str, Strategy] = {
        "autocorrelation": AutocorrelationStrategy(),
        "time_series_momentum": TimeSeriesMomentum(),
        "sma_cross": SmaCross(),
    }
    if name not in rules:
        raise StrategyError(f"training.candidates: unknown candidate {name!r}")
    return rules[name]


def configured_candidates(loaded: LoadedConfig) -> list[Candidate]:
    """Every configured candidate, built-ins first (:class:`StrategyError` naming the first user
    strategy that does not load)."""
    config = loaded.config
    out = []
    for name in config.training.candidates:
        builtin = builtin_strategy(name, config)
        out.append(Candidate(strategy=builtin, spec=StrategySpec(name=name, builtin=builtin)))
    for i, user in enumerate(config.training.strategies):
        try:
            strategy = load_strategy(user.path, dict(user.params),
                                     config_dir=loaded.path.parent, state_dir=loaded.state_dir)
        except StrategyError as exc:
            raise StrategyError(f"training.strategies[{i}]: {exc}") from exc
        fingerprint = strategy_fingerprint(strategy, user.path, dict(user.params))
        spec = StrategySpec(name=strategy.name, path=user.path, params=dict(user.params),
                            source_sha256=fingerprint)
        out.append(Candidate(strategy=strategy, spec=spec))
    names = [c.spec.name for c in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise StrategyError(f"training.strategies: candidate name(s) {twice} used twice")
    return out


def check_configured(loaded: LoadedConfig) -> None:
    """Load every configured user strategy once before the daemon starts: one that does not load
    is a :class:`ConfigError` naming the config file, its key and its path (exit 2)."""
    if not loaded.config.training.strategies:
        return
    try:
        configured_candidates(loaded)
    except StrategyError as exc:
        raise ConfigError(f"{loaded.path}: {exc}") from None


def resolve_strategy(artifact: StrategyModel, loaded: LoadedConfig) -> Strategy:
    """The strategy of a stored artifact (see the module docstring)."""
    spec = artifact.spec
    if spec.builtin is not None:
        return spec.builtin
    strategy = load_strategy(spec.path, dict(spec.params), config_dir=loaded.path.parent,
                             state_dir=loaded.state_dir)
    fingerprint = strategy_fingerprint(strategy, spec.path, dict(spec.params))
    if fingerprint != spec.source_sha256:
        raise ModelIntegrityError(
            f"strategy {spec.path!r} of model {artifact.model_id}: its source changed since "
            f"training (sha256 {fingerprint[:12]}..., trained with "
            f"{spec.source_sha256[:12]}...); retrain it, it is not loaded"
        )
    return strategy
