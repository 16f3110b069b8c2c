"""Model-lifecycle messages: the train and backtest steps of a cycle."""

from __future__ import annotations

import msgspec

from aistock_actors.messages import Reply, Request


class TrainModel(Request, frozen=True, kw_only=True):
    """Train a candidate on the stored bars and store it (never activate it)."""

    model_id: str
    """Id of the candidate, ``m-<cycle id>``."""


class ModelTrained(Reply, frozen=True, kw_only=True):
    """A candidate was trained and stored under ``models/<model_id>/`` (not activated)."""

    model_id: str
    sha256: str
    """sha256 of the stored ``model.joblib``; later steps verify it before use."""
    train_accuracy: float
    test_accuracy: float
    """Pooled out-of-fold accuracy of the primary model over purged walk-forward splits."""
    threshold: float
    """The model's own meta-label confidence threshold (T6)."""
    samples: int
    """Labelled (bar, symbol) rows trained on."""
    symbols: int
    data_start: str
    data_end: str
    """First and last bar of the training data (ISO-8601)."""
    strategy: str | None = None
    """The selected candidate of a candidate-set cycle (``None``: the single ML recipe)."""
    candidates: dict[str, float] = {}
    """Every candidate that ran -> its out-of-sample net Sharpe."""
    failed_candidates: dict[str, str] = {}
    """Every candidate that failed -> its one-line error."""


class LifecycleSkipped(Reply, frozen=True, kw_only=True):
    """A lifecycle step had nothing to do (not a failure), e.g. too little history to train yet.

    A fresh deployment needs weeks of bars before a model can be trained and validated; until
    then the train step says so every cycle, and backtest and judge pass the skip on. No model
    is trained, so none can be promoted; the cycle is not counted as failed.
    """

    reason: str
    """Machine-readable, e.g. ``insufficient_history``."""
    detail: str
    """For the operator, e.g. ``need 495 bars per symbol, have 120``."""


class BacktestModel(Request, frozen=True, kw_only=True):
    """Backtest the candidate walk-forward and re-evaluate the active model on the champion
    window (:attr:`BacktestCompleted.champion_window_note`)."""

    candidate: ModelTrained | None
    """The train step's reply (``None``: training was skipped or, a bug, is missing)."""
    upstream_skip: LifecycleSkipped | None = None
    """Why there is no candidate, when training was skipped."""


class BacktestCompleted(Reply, frozen=True, kw_only=True):
    """Out-of-sample metrics of the candidate and, when there is one, of the incumbent."""

    model_id: str
    sharpe: float
    max_drawdown: float
    win_rate: float
    total_return: float
    trade_count: int
    transition_drawdown: float
    """Largest drawdown inside regime-transition windows (T2)."""
    return_over_drawdown: float
    exposure: float
    turnover: float
    total_costs: float
    bars: int
    """Bars in the out-of-sample window."""
    folds: int
    oos_start: str
    oos_end: str
    incumbent_model_id: str | None = None
    """The active model at backtest time (``None`` if no model is active)."""
    incumbent_sharpe: float | None = None
    """The incumbent's Sharpe on the champion window (``None`` if not evaluated). From a
    backtester older than the ``champion_window_*`` fields: on the candidate's whole window."""
    incumbent_max_drawdown: float | None = None
    incumbent_total_return: float | None = None
    incumbent_trade_count: int | None = None
    """The incumbent's other figures, on the same bars as :attr:`incumbent_sharpe`."""
    incumbent_note: str | None = None
    """Why the incumbent was not evaluated, if it was not."""
    incumbent_data_end: str | None = None
    """The incumbent's training end from its stored metadata (``None``: unknown)."""
    champion_window_start: str | None = None
    champion_window_end: str | None = None
    champion_window_bars: int | None = None
    """The bars the incumbent was scored on and compared with the candidate on (stage 7): those
    of the out-of-sample window strictly after the incumbent's training end when there are at
    least :data:`~aistock_actors.core.model.pipeline.MIN_CHAMPION_WINDOW_BARS` of them, else the
    whole
    window. ``None`` when the incumbent was not evaluated (or by an older backtester)."""
    champion_window_out_of_sample: bool | None = None
    """``True``: the champion window is wholly after the incumbent's training end; ``False``:
    it is the whole window, partly in the incumbent's training data."""
    candidate_sharpe_champion_window: float | None = None
    """The candidate's Sharpe on the champion window (equal to :attr:`sharpe` when that is the
    whole window); stage 7 compares it with :attr:`incumbent_sharpe`."""
    champion_window_note: str | None = None
    """The comparison, in words (stage 7's note in the manifest and the report)."""
    equity_curve: list[tuple[str, float]] = msgspec.field(default_factory=list)
    """The candidate's out-of-sample account value, ``(ISO-8601 time, value)`` oldest first,
    downsampled to at most 250 points that keep the first and last bar and the exact maximum
    drawdown (:func:`~aistock_actors.core.backtest.curves.downsample_curve`); ``[]`` from a
    backtester
    older than the field. The judge stores it in ``state/promotion/curves/<model id>.json`` (not
    in the manifest); ``supervisor.json``'s step data leaves it out."""
    bars_per_year: float | None = None
    """Bars per year inferred from the timestamps, which Sharpe, CAGR and turnover were
    annualised with (``None`` from an older backtester: 252)."""
    deflated_sharpe: float | None = None
    """The candidate's deflated Sharpe ratio over :attr:`trials` (``None``: not measured)."""
    trials: int | None = None
    """Candidates ever backtested on this state directory, this one included."""


TrainerInbox = TrainModel
"""What the Trainer accepts besides control messages."""

BacktesterInbox = BacktestModel
"""What the Backtester accepts besides control messages."""
