"""The config file's sections as frozen msgspec Structs: what each key means and may hold.

Every section rejects unknown keys and bounds its values (``msgspec.Meta``); the docstring under
each field is its description in the README's generated config reference
(``aistock_actors/config/reference.py``). The shared base and value types are in ``base.py``, the
market-data sections in ``data_sections.py``; decoding, error messages and the hard-ceiling clamps
in ``loading.py``; ``aistock_actors.config`` exports them all.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from aistock_actors.config.base import (
    ConfigSection as ConfigSection,
)
from aistock_actors.config.base import (
    Count as Count,
)
from aistock_actors.config.base import (
    EnvName as EnvName,
)
from aistock_actors.config.base import (
    Fraction as Fraction,
)
from aistock_actors.config.base import (
    Mode as Mode,
)
from aistock_actors.config.base import (
    PositiveFraction as PositiveFraction,
)
from aistock_actors.config.base import (
    Seconds as Seconds,
)
from aistock_actors.config.data_sections import (
    DaemonConfig as DaemonConfig,
)
from aistock_actors.config.data_sections import (
    DataConfig as DataConfig,
)
from aistock_actors.config.data_sections import (
    DataSource as DataSource,
)
from aistock_actors.config.data_sections import (
    Timeframe as Timeframe,
)
from aistock_actors.core.risk.allocator_params import AllocatorParams


class NotificationWebhooks(ConfigSection, frozen=True, kw_only=True):
    """Where WARNING, ERROR and CRITICAL alerts are sent (``aistock_actors/net/webhooks.py``);
    each value may instead come from the environment variable its ``*_env`` key names (it wins)."""

    slack: str | None = None
    """Slack incoming-webhook URL."""
    pagerduty: str | None = None
    """PagerDuty Events API v2 endpoint (default with a routing key: PagerDuty's own)."""
    generic: str | None = None
    """Any endpoint that accepts the alert as a JSON POST."""
    pagerduty_routing_key: str | None = None
    """PagerDuty integration (routing) key; prefer ``pagerduty_routing_key_env``."""
    slack_env: EnvName | None = None
    """Environment variable holding the Slack webhook URL."""
    pagerduty_env: EnvName | None = None
    """Environment variable holding the PagerDuty endpoint URL."""
    generic_env: EnvName | None = None
    """Environment variable holding the generic webhook URL."""
    pagerduty_routing_key_env: EnvName | None = None
    """Environment variable holding the PagerDuty routing key."""
    apprise: list[str] = []
    """apprise URLs (``tgram://``, ``discord://``, ``mailto://``, ``ntfy://``, ``json://`` …): one
    more target for every one of them; needs ``pip install 'aistock-actors[notify]'``."""
    apprise_env: list[EnvName] = []
    """Environment variables each holding one apprise URL (added to ``apprise``)."""


class HeadlessConfig(ConfigSection, frozen=True, kw_only=True):
    """The manual's ``headless`` section."""

    enable_auto_promotion: bool = True
    """Promote a candidate that passes every gate without a person (headless mode)."""
    enable_auto_risk_adjustment: bool = True
    """Let the RiskGovernor adapt limits (always inside the hard ceilings)."""
    enable_auto_recovery: bool = True
    """Keep cycling after a failed cycle; false halts on the first failure."""
    promotion_validation_stages: Annotated[int, msgspec.Meta(ge=1, le=5)] = 5
    """How many of the manual's five promotion stages are evaluated."""
    max_risk_increase_pct: Fraction = 0.03
    """Largest relative increase of the position-size limit per cycle."""
    min_risk_floor: Fraction = 0.10
    """The position-size limit is never reduced below this."""
    max_consecutive_failures: Count = 3
    """Failed cycles in a row that halt the autopilot."""
    auto_rollback_on_degradation: bool = False
    """Restore the previous model when live performance falls short of the backtest."""
    degradation_threshold_pct: Fraction = 0.05
    """Shortfall of live against expected performance that triggers a rollback."""
    kill_switch_check_url: str | None = None
    """Remote kill-switch URL: HTTP 200 with ``{"kill_switch": true}`` halts; see the README."""
    kill_switch_check_interval_seconds: Seconds = 60.0
    """How often the remote kill switch is polled."""
    kill_switch_check_timeout_seconds: Seconds = 10.0
    """Timeout of one remote kill-switch request (retries stay within the interval)."""
    kill_switch_token_env: EnvName | None = None
    """Environment variable holding a bearer token sent to the kill-switch URL."""
    kill_switch_fail_closed_after: Count | None = None
    """Trip after this many failed remote checks in a row (null: failures never trip)."""
    external_health_report_url: str | None = None
    """Where health reports are POSTed (the HealthReporter)."""
    health_report_interval_seconds: Seconds = 300.0
    """How often health reports are POSTed."""


class StepTimeouts(ConfigSection, frozen=True, kw_only=True):
    """Seconds each step of a cycle may take before it counts as a hung, failed step."""

    ingest: Seconds = 300.0
    """Reading new bars from the CSV folder."""
    train: Seconds = 900.0
    """Training the candidate model."""
    backtest: Seconds = 900.0
    """Walk-forward backtest of the candidate (and the incumbent)."""
    judge: Seconds = 60.0
    """The promotion gate and manifest update."""
    risk: Seconds = 60.0
    """Adapting the risk limits."""
    trade: Seconds = 300.0
    """Paper trading the active model."""


class SupervisionConfig(ConfigSection, frozen=True, kw_only=True):
    """The manual's ``supervision`` section plus the supervisor's OTP-style knobs."""

    notification_webhooks: NotificationWebhooks = msgspec.field(
        default_factory=NotificationWebhooks
    )
    """Webhook targets for WARNING, ERROR and CRITICAL alerts."""
    max_restarts: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 5
    """Restart intensity: more than this many actor restarts ..."""
    restart_window_seconds: Seconds = 30.0
    """... within this many seconds escalates to a halt."""
    restart_backoff_base_seconds: Annotated[float, msgspec.Meta(ge=0.0, le=3600.0)] = 0.5
    """First restart delay; doubles per consecutive restart, with 0-20 % jitter."""
    restart_backoff_max_seconds: Annotated[float, msgspec.Meta(ge=0.0, le=3600.0)] = 30.0
    """Largest restart delay."""
    shutdown_timeout_seconds: Seconds = 5.0
    """How long each actor gets to stop before it is abandoned and logged."""
    kill_switch_poll_seconds: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)] = 0.2
    """How often the file kill switch and the halt file are checked (at most 1 s)."""
    step_timeouts: StepTimeouts = msgspec.field(default_factory=StepTimeouts)
    """Per-step timeouts of a cycle."""
    watcher_timeout_seconds: Seconds = 30.0
    """A watcher (kill-switch watcher, health reporter) busy longer on one message is restarted."""


class RiskConfig(ConfigSection, frozen=True, kw_only=True):
    """Initial risk limits; values above the hard ceilings are clamped, never honoured."""

    max_position_fraction: PositiveFraction = 0.20
    """Largest position as a fraction of equity (hard ceiling 0.30)."""
    max_notional_per_symbol: Annotated[float, msgspec.Meta(gt=0.0)] = 100_000.0
    """Largest notional per symbol in dollars (hard ceiling 500,000)."""
    max_gross_exposure: Annotated[float, msgspec.Meta(gt=0.0, le=3.0)] = 1.0
    """Sum of absolute position weights."""
    halt_action: Literal["freeze", "flatten"] = "freeze"
    """On halt: keep positions and place nothing, or close everything at the next price."""
    max_portfolio_drawdown_halt: PositiveFraction = 0.25
    """Paper equity drawdown beyond this trips the kill switch."""
    performance_window: Annotated[int, msgspec.Meta(ge=2, le=10_000)] = 60
    """Bars of paper equity (and closing trades) the adaptive rules judge."""
    min_observations: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 20
    """Fewer paper returns than this: the adaptive rules leave the limits alone."""


class PaperCostsConfig(ConfigSection, frozen=True, kw_only=True):
    """The paper fills' cost model (defaults match the ``backtest`` section's)."""

    commission_rate: Annotated[float, msgspec.Meta(ge=0.0, le=0.05)] = 0.0005
    """Commission as a fraction of traded notional (0.0005 = 5 bps)."""
    half_spread_bps: Annotated[float, msgspec.Meta(ge=0.0, le=500.0)] = 2.0
    """Half the quoted spread in bps, paid on every fill."""
    impact_bps: Annotated[float, msgspec.Meta(ge=0.0, le=5000.0)] = 200.0
    """Market impact in bps at 100 % of the bar's volume; ``impact_bps x sqrt(participation)``."""


class PaperConfig(ConfigSection, frozen=True, kw_only=True):
    """The PaperTrader: the simulated account and how its orders fill."""

    initial_cash: Annotated[float, msgspec.Meta(gt=0.0, le=1e12)] = 100_000.0
    """Starting cash of the paper account (read once, when the ledger is created)."""
    max_volume_share: PositiveFraction = 0.1
    """A fill takes at most this share of its bar's volume."""
    remainder_policy: Literal["carry", "cancel"] = "carry"
    """What happens to the part of an order the volume cap left: fill at later bars, or drop."""
    min_order_notional: Annotated[float, msgspec.Meta(ge=0.0, le=1e9)] = 100.0
    """Smaller rebalancing trades are skipped (a position is always closed in full)."""
    rebalance_band: Annotated[float, msgspec.Meta(ge=0.0, lt=1.0)] = 0.25
    """No-trade band: a held position on its target's side is not resized while its weight is
    within this fraction of the target (0.25: a 4 % target is left alone from 3 % to 5 %) unless
    above the position limit; 0 resizes every drift. The backtest applies the same band."""
    cost_ewma_alpha: PositiveFraction = 0.1
    """Weight of the newest fill in the cost calibrator's EWMA of cost surprise."""
    on_no_model: Literal["flatten", "hold"] = "flatten"
    """Positions left when no model is active (retired, no fallback): close them at the next bar,
    or keep them; audited ``positions_without_model`` either way (#17)."""
    costs: PaperCostsConfig = msgspec.field(default_factory=PaperCostsConfig)


class PromotionConfig(ConfigSection, frozen=True, kw_only=True):
    """Thresholds of the promotion gate (the manual's five stages plus our additions)."""

    min_sharpe: float = 0.6
    max_drawdown: PositiveFraction = 0.18
    min_win_rate: Fraction = 0.5
    alt_min_sharpe: float = 0.8
    min_accuracy_ratio: Fraction = 0.85
    min_return_over_drawdown: Annotated[float, msgspec.Meta(ge=0.0)] = 2.0
    min_trades: Annotated[int, msgspec.Meta(ge=0)] = 30
    max_transition_drawdown: PositiveFraction = 0.20
    champion_margin: Annotated[float, msgspec.Meta(ge=0.0)] = 0.1
    max_plausible_sharpe: Annotated[float, msgspec.Meta(gt=0.0)] = 5.0
    """A candidate with a higher out-of-sample net Sharpe is held as ``leak_suspected`` (never
    auto-promoted; ``--approve`` after review)."""
    max_plausible_win_rate: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)] = 0.8
    """A candidate winning a larger share of its round trips is held as ``leak_suspected``."""
    min_deflated_sharpe: Fraction = 0.95
    """Deflated Sharpe ratio (probability the Sharpe beats the best of every trial run so far on
    this state directory by luck) a candidate needs (stage 9)."""


ClassifierKind = Literal["logistic", "hgb"]
Bars = Annotated[int, msgspec.Meta(ge=0, le=250)]


CandidateName = Literal[
    "ml", "ml_h1", "ml_h5", "ml_h20", "autocorrelation", "time_series_momentum", "sma_cross"
]
"""A built-in candidate of the training cycle (``services/strategy_candidates.py``)."""
STRATEGY_PATH = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_.]*$"


class UserStrategyConfig(ConfigSection, frozen=True, kw_only=True):
    """A user strategy of the candidate set (``examples/README.md``)."""

    path: Annotated[str, msgspec.Meta(pattern=STRATEGY_PATH, max_length=300)]
    """``module:Class``, looked up in the config file's folder, then among installed packages
    (never in the state directory)."""
    params: dict[str, Any] = {}
    """Keyword arguments of the class; ``int``/``float``/``str``/``bool`` ones are type-checked
    when the strategy is loaded."""


class TrainingConfig(ConfigSection, frozen=True, kw_only=True):
    """The training recipe of the model lifecycle (the Trainer; the Backtester refits it)."""

    horizon: Annotated[int, msgspec.Meta(ge=1, le=250)] = 5
    """Label horizon in bars: the move from the next open to the open ``horizon`` bars later."""
    n_splits: Annotated[int, msgspec.Meta(ge=2, le=20)] = 5
    """Purged walk-forward splits inside training (out-of-fold accuracy, threshold tuning)."""
    embargo_bars: Bars = 5
    """Bars between a training label's end and a test window (training and backtest)."""
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] = 0
    """Random seed: the same data and seed give the same model."""
    max_symbols: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500
    """Symbols trained on (those with the most bars)."""
    max_bars: Annotated[int, msgspec.Meta(ge=100, le=1_000_000)] = 5_000
    """Most recent bars per symbol trained on."""
    primary: ClassifierKind = "logistic"
    """Primary (direction) model: L2 logistic regression or shallow boosted trees."""
    meta: ClassifierKind = "hgb"
    """Meta-labeler (confidence) model."""
    regularization_c: Annotated[float, msgspec.Meta(gt=0.0, le=1e6)] = 0.05
    """Inverse L2 strength of logistic models (smaller = more regularised)."""
    min_history_years: Annotated[float, msgspec.Meta(ge=0.0, le=50.0)] = 1.0
    """Least history, in years of the data's own bars, the longest symbol needs before training,
    on top of the purged splits' bars (~2 years of daily bars; ~3 weeks of hourly crypto)."""
    retrain_every_bars: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 21
    """Train a candidate when this many new bar times arrived since the newest one (or there is
    none); other cycles skip train, backtest and judge (a month of daily bars by default)."""
    candidates: tuple[CandidateName, ...] = ("ml",)
    """The pre-registered candidate set: ``ml`` alone (default) trains today's ML recipe at
    ``horizon``; any other set is walk-forward tested side by side, the best stored as a strategy
    artifact (``ml_h1``/``ml_h5``/``ml_h20``: the ML model at 1/5/20 bars; rules
    ``autocorrelation``, ``time_series_momentum``, ``sma_cross``)."""
    strategies: tuple[UserStrategyConfig, ...] = ()
    """User strategies that join the candidate set (each one more trial)."""

    def __post_init__(self) -> None:
        if not self.candidates and not self.strategies:
            raise ValueError("candidates: empty, and no strategies: nothing to train")
        twice = sorted({c for c in self.candidates if self.candidates.count(c) > 1})
        if twice:
            raise ValueError(f"candidates: {twice} named more than once")


class BacktestConfig(ConfigSection, frozen=True, kw_only=True):
    """The walk-forward out-of-sample backtest of each candidate."""

    n_splits: Annotated[int, msgspec.Meta(ge=1, le=20)] = 4
    """Walk-forward folds: the data is cut into ``n_splits + 1`` blocks, each later one tested."""
    fill: Literal["next_open", "close"] = "next_open"
    """Fill at the next bar's open (default) or, optimistically, at the signal bar's close."""
    commission_rate: Annotated[float, msgspec.Meta(ge=0.0, le=0.05)] = 0.0005
    """Commission as a fraction of traded notional (0.0005 = 5 bps)."""
    spread_bps: Annotated[float, msgspec.Meta(ge=0.0, le=500.0)] = 2.0
    """Half-spread / slippage in basis points, paid on every fill."""
    impact_coef: Annotated[float, msgspec.Meta(ge=0.0, le=10.0)] = 0.02
    """Market impact: ``impact_coef * sqrt(shares / bar volume)`` of traded notional."""
    initial_cash: Annotated[float, msgspec.Meta(gt=0.0, le=1e12)] = 100_000.0
    """Starting equity of the simulated account."""


class ModelsConfig(ConfigSection, frozen=True, kw_only=True):
    """What stays in the ``models`` folder (the artifact store's hygiene)."""

    keep_rejected: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 20
    """Newest candidates kept that were rejected, only recorded or never judged; older ones are
    pruned and audited (approved, pending, held, once-active and the newest are always kept)."""


class ParallelConfig(ConfigSection, frozen=True, kw_only=True):
    """Where CPU-heavy training and backtesting run."""

    n_jobs: Annotated[int, msgspec.Meta(ge=1, le=256)] = 2
    """Worker processes (walk-forward folds run side by side); with ``dask`` and no scheduler
    address, the local cluster's size."""
    backend: Literal["loky", "dask", "inline"] = "loky"
    """``loky``: a process pool whose hung jobs are killed; ``dask``: a dask.distributed cluster
    (``pip install 'aistock-actors[dask]'``); ``inline``: in the actor's thread."""
    scheduler_address: str | None = None
    """With ``dask``: a running scheduler, e.g. ``"tcp://scheduler:8786"`` (its workers need this
    package installed); null: a local cluster of ``n_jobs`` workers on 127.0.0.1."""


class MonitoringConfig(ConfigSection, frozen=True, kw_only=True):
    """The monitoring HTTP server and the retry policy of every outgoing HTTP call."""

    listen_host: str = "127.0.0.1"
    """Address the ``/healthz`` and ``/metrics`` server binds to."""
    listen_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] | None = None
    """Port of that server; null: no server; 0: any free port (tests)."""
    max_data_age_seconds: Seconds = 3 * 86400.0
    """No new bar for longer than this is a ``data_stale`` issue in health reports."""
    http_timeout_seconds: Seconds = 10.0
    """Timeout of one webhook or health-report request."""
    retry_max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5
    """Attempts per webhook delivery or health report before it is abandoned."""
    retry_max_seconds: Seconds = 60.0
    """Time budget per delivery, retries included (health reports: also within the interval)."""
    retry_backoff_base_seconds: Annotated[float, msgspec.Meta(gt=0.0, le=600.0)] = 0.5
    """Backoff between attempts: random in [0, base * 2^attempt], capped below."""
    retry_backoff_max_seconds: Annotated[float, msgspec.Meta(gt=0.0, le=3600.0)] = 30.0
    """Largest backoff between two attempts."""
    webhook_queue_size: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1000
    """Alerts waiting per webhook; when full the oldest is dropped (and counted in the log)."""
    control_token_env: str | None = None
    """Name of the environment variable holding the web console's control token (sent as
    ``Authorization: Bearer <token>`` to ``POST /api/kill`` ...); null or unset: read-only."""


class SecurityConfig(ConfigSection, frozen=True, kw_only=True):
    """Hardening (#17): the key that signs artifacts and anchors the audit chain."""

    integrity_key_file: str | None = None
    """HMAC key file (0600, created on first use); null: ``integrity.key`` beside the models
    folder. Must lie outside the state and models folders."""
    integrity_key_env: EnvName | None = None
    """Environment variable holding the key (at least 32 characters); wins when set."""
    audit_max_bytes: Annotated[int, msgspec.Meta(ge=4096, le=2**40)] = 32 * 2**20
    """The audit log is rotated (``log.<NNNNNN>.jsonl``, chain carried on) at this size."""
    audit_keep_files: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 10
    """Rotated audit files kept; older ones are deleted (the log stays bounded)."""


class Config(ConfigSection, frozen=True, kw_only=True):
    """The whole config file."""

    mode: Mode = "headless"
    """``manual`` records verdicts only; ``supervised`` waits for ``--approve``; ``headless``."""
    state_dir: str = "state"
    """State folder (relative paths are relative to the working directory)."""
    models_dir: str = "models"
    """Model artifacts folder (relative to the working directory)."""
    headless: HeadlessConfig = msgspec.field(default_factory=HeadlessConfig)
    supervision: SupervisionConfig = msgspec.field(default_factory=SupervisionConfig)
    daemon: DaemonConfig = msgspec.field(default_factory=DaemonConfig)
    data: DataConfig = msgspec.field(default_factory=DataConfig)
    risk: RiskConfig = msgspec.field(default_factory=RiskConfig)
    allocator: AllocatorParams = msgspec.field(default_factory=AllocatorParams)
    paper: PaperConfig = msgspec.field(default_factory=PaperConfig)
    promotion: PromotionConfig = msgspec.field(default_factory=PromotionConfig)
    monitoring: MonitoringConfig = msgspec.field(default_factory=MonitoringConfig)
    training: TrainingConfig = msgspec.field(default_factory=TrainingConfig)
    models: ModelsConfig = msgspec.field(default_factory=ModelsConfig)
    backtest: BacktestConfig = msgspec.field(default_factory=BacktestConfig)
    parallel: ParallelConfig = msgspec.field(default_factory=ParallelConfig)
    security: SecurityConfig = msgspec.field(default_factory=SecurityConfig)
