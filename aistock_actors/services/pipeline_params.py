"""Glue between the config and the pure lifecycle pipeline, shared by the lifecycle actors.

Also fixes how long a pooled job may run: :data:`JOB_BUDGET_FRACTION` of the step's timeout, so
that on a hung job the actor kills the pool and still replies ``timeout`` before the supervisor's
own deadline abandons the actor.
"""

from __future__ import annotations

import pandas as pd

from aistock_actors.config import Config, LoadedConfig
from aistock_actors.core.backtest.simulator import FillLimits
from aistock_actors.core.model.models import ModelParams
from aistock_actors.core.model.pipeline import select_frames
from aistock_actors.core.model.simulation import SimulationSpec, Sizing
from aistock_actors.core.trading.costs import BPS, CostModel
from aistock_actors.runtime.jobs import JobRunner, require_backend
from aistock_actors.store.bars import BarStore

JOB_BUDGET_FRACTION = 0.9
"""Share of a step's timeout that its pooled jobs may use."""


def model_params(config: Config) -> ModelParams:
    """The training recipe from the ``training`` section."""
    t = config.training
    return ModelParams(
        horizon=t.horizon,
        n_splits=t.n_splits,
        embargo=t.embargo_bars,
        primary=t.primary,
        meta=t.meta,
        regularization_c=t.regularization_c,
    )


def simulation_spec(config: Config) -> SimulationSpec:
    """Walk-forward split and simulator settings from ``backtest`` (embargo from ``training``),
    with the paper trader's fill limits (``paper.max_volume_share``, ``paper.min_order_notional``,
    the no-trade band ``paper.rebalance_band`` under ``risk.max_position_fraction``): a backtest
    promises only what paper trading can fill."""
    b = config.backtest
    return SimulationSpec(
        n_splits=b.n_splits,
        embargo=config.training.embargo_bars,
        fill=b.fill,
        costs=CostModel(
            commission_rate=b.commission_rate,
            half_spread_bps=b.spread_bps,
            impact_bps=b.impact_coef * BPS,  # the config's fraction of notional, in bps
        ),
        initial_cash=b.initial_cash,
        limits=FillLimits(
            max_volume_share=config.paper.max_volume_share,
            min_order_notional=config.paper.min_order_notional,
            rebalance_band=config.paper.rebalance_band,
            max_weight=config.risk.max_position_fraction,
        ),
    )


def sizing(config: Config) -> Sizing:
    """Backtest sizing from the (ceiling-clamped) ``risk`` section."""
    return Sizing(
        max_position_fraction=config.risk.max_position_fraction,
        max_gross_exposure=config.risk.max_gross_exposure,
    )


def job_runner(config: Config) -> JobRunner:
    """The configured process pool, dask cluster or inline runner (close it when done)."""
    p = config.parallel
    return JobRunner(p.backend, p.n_jobs, p.scheduler_address)


def check_parallel(config: Config) -> None:
    """Refuse, at start-up, a ``parallel.backend`` whose optional extra is not installed.

    Raises :class:`~aistock_actors.errors.ConfigError` naming the install command (``dask``
    without ``aistock-actors[dask]``); importing nothing.
    """
    require_backend(config.parallel.backend)


def job_budget(config: Config, step: str) -> float:
    """Seconds a step's pooled jobs may take."""
    return float(getattr(config.supervision.step_timeouts, step)) * JOB_BUDGET_FRACTION


def load_frames(loaded: LoadedConfig, store: BarStore | None = None) -> dict[str, pd.DataFrame]:
    """The bars the lifecycle trains and backtests on (``training.max_symbols``/``max_bars``)."""
    bars = store if store is not None else BarStore(loaded.state_dir / "bars")
    t = loaded.config.training
    return select_frames(bars.load_many(), max_symbols=t.max_symbols, max_bars=t.max_bars)
