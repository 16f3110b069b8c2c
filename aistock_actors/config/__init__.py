"""The whole config file as frozen msgspec Structs, decoded strictly.

The manual's JSON examples (``//`` comments included) load verbatim. An unknown key or a value out
of range is a :class:`~aistock_actors.errors.ConfigError` whose message names the key path and the
allowed values. Values above the hard safety ceilings are not errors: they are clamped to the
ceiling and reported as :class:`Clamp` records, which the supervisor audit-logs as
``risk_ceiling_clamped``.

This module is the one place the rest of the code imports the config from. The Structs of each
section live in ``config_sections.py``; loading, error messages and the ceiling clamps in
``config_loading.py``. It imports msgspec and nothing heavy, so the operator commands stay fast.
"""

from __future__ import annotations

from aistock_actors.config.loading import (
    Clamp,
    LoadedConfig,
    apply_hard_ceilings,
    explain_validation_error,
    load_config,
    parse_config,
    strip_json_comments,
)
from aistock_actors.config.sections import (
    BacktestConfig,
    Bars,
    ClassifierKind,
    Config,
    Count,
    DaemonConfig,
    DataConfig,
    EnvName,
    Fraction,
    HeadlessConfig,
    Mode,
    ModelsConfig,
    MonitoringConfig,
    NotificationWebhooks,
    PaperConfig,
    PaperCostsConfig,
    ParallelConfig,
    PositiveFraction,
    PromotionConfig,
    RiskConfig,
    Seconds,
    StepTimeouts,
    SupervisionConfig,
    TrainingConfig,
)
from aistock_actors.core.risk.allocator_params import AllocatorParams

__all__ = [
    "AllocatorParams",
    "BacktestConfig",
    "Bars",
    "Clamp",
    "ClassifierKind",
    "Config",
    "Count",
    "DaemonConfig",
    "DataConfig",
    "EnvName",
    "Fraction",
    "HeadlessConfig",
    "LoadedConfig",
    "Mode",
    "ModelsConfig",
    "MonitoringConfig",
    "NotificationWebhooks",
    "PaperConfig",
    "PaperCostsConfig",
    "ParallelConfig",
    "PositiveFraction",
    "PromotionConfig",
    "RiskConfig",
    "Seconds",
    "StepTimeouts",
    "SupervisionConfig",
    "TrainingConfig",
    "apply_hard_ceilings",
    "explain_validation_error",
    "load_config",
    "parse_config",
    "strip_json_comments",
]
