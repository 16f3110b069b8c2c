"""The report's plots as PNG bytes, drawn with matplotlib's Agg canvas (no display, no pyplot).

Figures are built with :class:`matplotlib.figure.Figure` and rendered by an explicit
``FigureCanvasAgg``, so nothing touches pyplot's global state: a report can be built from any
thread, and no backend is chosen by accident.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np

from aistock_actors.cli.report.data import (
    CEILINGS,
    CostData,
    EquityData,
    ModelData,
    RegimeData,
    ReplayData,
    RiskData,
    parse_times,
)
from aistock_actors.core.market.regimes import REGIME_NAMES, UNKNOWN

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WIDTH = 10.0
DPI = 100
REGIME_COLORS = {
    "calm_up": "#2ca02c",
    "calm_down": "#ff7f0e",
    "volatile_up": "#17becf",
    "volatile_down": "#d62728",
    "unknown": "#c7c7c7",
}
STATUS_COLORS = {
    "approved": "#2ca02c",
    "rejected": "#d62728",
    "pending": "#ff7f0e",
    "recorded": "#1f77b4",
    "rolled_back": "#9467bd",
}


def _figure(rows: int = 1, height: float = 3.6, ratios: list[float] | None = None,
            sharex: bool = True) -> tuple[Figure, list[Axes]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH, height), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, 1, sharex=sharex, squeeze=False,
                        gridspec_kw={"height_ratios": ratios} if ratios else None)
    for ax in axes[:, 0]:
        ax.grid(True, alpha=0.3)
    return fig, list(axes[:, 0])


def _png(fig: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def _dates(ax: Axes, x: Any) -> None:
    """Concise date ticks (``Mar 03``, ``01:21:05``) when ``x`` holds datetimes."""
    if np.issubdtype(np.asarray(x).dtype, np.datetime64):
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

        locator = AutoDateLocator()  # type: ignore[no-untyped-call]  # untyped in matplotlib
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def _x(times: list[str]) -> Any:
    """Bar or wall-clock times as datetimes, else 0..n-1 when they do not parse."""
    parsed = parse_times(times)
    return parsed if parsed is not None else np.arange(len(times))


def equity_drawdown(data: EquityData) -> bytes:
    """Paper equity (top) and its drawdown from the running peak (bottom)."""
    equity = np.asarray(data.equity, dtype=float)
    x = _x(data.times)
    fig, (top, bottom) = _figure(2, 5.2, [2.0, 1.0])
    top.plot(x, equity, color="#1f77b4", lw=1.6, label="paper equity")
    top.axhline(data.initial_cash, color="grey", ls="--", lw=1, label="initial cash")
    top.set_ylabel("equity ($)")
    top.legend(loc="upper left")
    _drawdown_panel(bottom, x, equity, data.drawdown_halt, "kill-switch drawdown",
                    f"drawdown from the running peak (the kill switch trips at "
                    f"{data.drawdown_halt:.0%})")
    return _png(fig)


def _drawdown_panel(ax: Any, x: Any, equity: Any, level: float, label: str, title: str) -> float:
    """Drawdown from the running peak (%) on ``ax``, with the ``level`` (a fraction, e.g. the
    kill switch's or the promotion gate's) drawn when it fits without squashing the curve;
    returns the largest drawdown in %. ``title`` may hold ``{max}``, filled with that figure."""
    peak = np.maximum.accumulate(equity)
    drawdown = np.where(peak > 0, equity / peak - 1.0, 0.0) * 100.0
    ax.fill_between(x, drawdown, 0.0, color="#d62728", alpha=0.35, lw=0)
    ax.plot(x, drawdown, color="#d62728", lw=1)
    line = -level * 100.0
    floor = min(float(drawdown.min()) * 1.25, -1.0)
    if line >= floor * 1.5:  # near enough to draw without squashing the curve
        ax.axhline(line, color="black", ls="--", lw=1, label=label)
        floor = min(floor, line * 1.1)
        ax.legend(loc="lower left")
    worst = -float(drawdown.min())
    ax.set_ylabel("drawdown (%)")
    ax.set_title(title.replace("{max}", f"{worst:.2f}"), fontsize=9)
    ax.set_ylim(floor, 0.5)
    _dates(ax, x)
    return worst


BACKTEST_TITLE = "Active model backtest equity (out of sample)"


def backtest_equity(data: ModelData) -> bytes:
    """The active model's walk-forward out-of-sample equity (top) and its drawdown (bottom)."""
    assert data.active_curve is not None
    equity = np.array([v for _, v in data.active_curve], dtype=float)
    x = _x([t for t, _ in data.active_curve])
    fig, (top, bottom) = _figure(2, 5.2, [2.0, 1.0])
    top.set_title(f"{BACKTEST_TITLE}: {(data.active or {}).get('id', '')}", fontsize=11)
    top.plot(x, equity, color="#1f77b4", lw=1.6, label="backtest equity")
    top.axhline(equity[0], color="grey", ls="--", lw=1, label="first bar")
    top.set_ylabel("equity ($)")
    top.legend(loc="upper left")
    _drawdown_panel(bottom, x, equity, data.max_drawdown, "promotion max_drawdown",
                    "drawdown from the running peak (max {max}%; the gate allows "
                    f"{data.max_drawdown:.0%})")
    return _png(fig)


def verdict_backtests(data: ModelData) -> bytes:
    """Every verdict's out-of-sample Sharpe and drawdown against the stage-1 thresholds."""
    rows = [e for e in data.manifest if isinstance(e.backtest, dict)]
    x = _x([e.time for e in rows])
    fig, (top, bottom) = _figure(2, 5.0)
    active_id = (data.active or {}).get("id")
    for metric, ax, threshold, label in (
        ("sharpe", top, data.min_sharpe, "min_sharpe"),
        ("max_drawdown", bottom, data.max_drawdown, "max_drawdown"),
    ):
        values = np.array([_num(e.metrics().get(metric)) for e in rows], dtype=float)
        if metric == "max_drawdown":
            values = np.abs(values)
        for status, color in STATUS_COLORS.items():
            mask = np.array([e.status == status for e in rows], dtype=bool)
            if mask.any():
                ax.scatter(x[mask], values[mask], color=color, s=36, label=status, zorder=3)
        is_active = np.array([e.model_id == active_id for e in rows], dtype=bool)
        if is_active.any():
            ax.scatter(x[is_active], values[is_active], marker="*", s=240, color="gold",
                       edgecolors="black", zorder=4, label="active model")
        ax.axhline(threshold, color="black", ls="--", lw=1, label=f"threshold {label}")
        ax.set_ylabel(f"backtest {metric}")
    top.legend(loc="best", fontsize=8, ncols=3)
    _dates(bottom, x)
    return _png(fig)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else float("nan")


def replay_equity(replay: ReplayData, paper: EquityData) -> bytes:
    """A replay's paper equity against the equal-weight buy-and-hold, on market dates, with its
    promotions, rollbacks and halts marked; their drawdowns below."""
    fig, (top, bottom) = _figure(2, 5.6, [2.0, 1.0])
    curves = [(paper.times, paper.equity, "paper account", "#1f77b4"),
              (replay.times, replay.benchmark, "equal-weight buy-and-hold", "#7f7f7f")]
    for times, values, label, color in curves:
        if len(values) >= 2:
            x, y = _x(times), np.asarray(values, dtype=float)
            top.plot(x, y, color=color, lw=1.6, label=label)
            peak = np.maximum.accumulate(y)
            bottom.plot(x, (y / peak - 1.0) * 100.0, color=color, lw=1, label=label)
    summary = replay.state.summary if replay.state is not None else None
    marks = [] if summary is None else [
        *[(e.date, "#2ca02c", "promotion") for e in summary.promotions],
        *[(e.date, "#9467bd", "rollback") for e in summary.rollbacks],
        *[(e.date, "#d62728", "halt") for e in summary.halts],
    ]
    seen: set[str] = set()
    for date, color, label in marks:
        when = parse_times([date])
        if when is None:
            continue
        top.axvline(when[0], color=color, ls="--", lw=1.2,
                    label=None if label in seen else label)
        seen.add(label)
    top.set_ylabel("equity ($)")
    top.legend(loc="upper left", fontsize=8)
    top.set_title("market dates of the replay", fontsize=9)
    bottom.set_ylabel("drawdown (%)")
    _dates(bottom, _x(replay.times or paper.times))
    return _png(fig)


def risk_history(data: RiskData) -> bytes:
    """Each risk limit over its change history, against its hard ceiling."""
    assert data.limits is not None
    history = data.history
    x = _x([c.at for c in history]) if history else np.array([0])
    steps = np.diff(x)
    by_number = bool(history) and not bool(np.all(steps > np.zeros_like(steps)))
    if by_number:  # several changes within one second (a burst of cycles): number them
        x = np.arange(1, len(history) + 1)
    names = list(CEILINGS)
    fig, axes = _figure(len(names), 6.6)
    if by_number:
        axes[-1].set_xlabel("change number (times in the table below)")
    if not history:
        axes[-1].set_xticks([0], [f"in force since {data.updated_at or 'the first risk step'}"])
        axes[-1].set_xlim(-1.0, 1.0)
    for ax, name in zip(axes, names, strict=True):
        if history:
            values = [getattr(history[0].before, name)] + [getattr(c.after, name) for c in history]
            xs = np.concatenate([x[:1], x])
            ax.step(xs, values, where="post", color="#1f77b4", lw=1.8, marker="o", ms=4,
                    label="limit in force")
        else:
            ax.plot(x, [getattr(data.limits, name)], "o", color="#1f77b4", label="limit in force")
        ceiling = CEILINGS[name]
        if ceiling is not None:
            ax.axhline(ceiling, color="#d62728", lw=1.6, label=f"hard ceiling {ceiling:g}")
        if name == "max_position_fraction" and data.min_floor > 0:
            ax.axhline(data.min_floor, color="grey", ls=":", lw=1.2,
                       label=f"floor {data.min_floor:g}")
        ax.set_ylabel(name.replace("max_", "").replace("_", " "), fontsize=9)
        ax.set_ylim(bottom=0.0)
        ax.legend(loc="lower left", fontsize=8)
    axes[0].set_title("risk limits (step = change) vs hard ceilings", fontsize=10)
    _dates(axes[-1], x)
    return _png(fig)


def regime_timeline(data: RegimeData) -> bytes:
    """The equal-weight index with each bar's regime as a coloured band."""
    from matplotlib.patches import Patch

    times = data.times
    codes = np.asarray(data.codes, dtype=np.int64)
    fig, (ax,) = _figure(1, 3.8)
    ax.plot(times, data.index, color="black", lw=1.2)
    starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
    ends = np.concatenate((starts[1:], [codes.size]))
    seen: dict[str, str] = {}
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        name = REGIME_NAMES.get(int(codes[lo]), REGIME_NAMES[UNKNOWN])
        right = times[hi] if hi < codes.size else times[-1]
        ax.axvspan(times[lo], right, color=REGIME_COLORS[name], alpha=0.3, lw=0)
        seen[name] = REGIME_COLORS[name]
    ax.set_ylabel("equal-weight index")
    _dates(ax, times)
    handles = [Patch(color=c, alpha=0.5, label=n) for n, c in REGIME_COLORS.items() if n in seen]
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=8,
              ncols=len(handles), frameon=False)
    return _png(fig)


def cost_scatter(data: CostData) -> bytes:
    """Predicted against realised cost of every fill, in bps (on the diagonal = calibrated)."""
    predicted = np.array([f.predicted_cost_bps for f in data.fills], dtype=float)
    realised = np.array([f.realised_cost_bps for f in data.fills], dtype=float)
    buys = np.array([f.quantity > 0 for f in data.fills], dtype=bool)
    fig, (ax,) = _figure(1, 4.6, sharex=False)
    for mask, color, label in ((buys, "#1f77b4", "buy"), (~buys, "#ff7f0e", "sell")):
        if mask.any():
            ax.scatter(predicted[mask], realised[mask], s=28, alpha=0.75, color=color,
                       label=f"{label} ({int(mask.sum())})")
    lo = float(min(predicted.min(), realised.min(), 0.0))
    hi = float(max(predicted.max(), realised.max())) or 1.0
    pad = (hi - lo) * 0.05 or 1.0
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], ls="--", color="grey", lw=1,
            label="realised = predicted")
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_xlabel("predicted cost (bps)")
    ax.set_ylabel("realised cost (bps); < 0 = price improvement")
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)
