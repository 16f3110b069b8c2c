"""``--status`` for people: a one-screen rich view on a terminal, plain lines anywhere else.

On a terminal the :class:`~aistock_actors.services.operator_actions.Status` is drawn as panels and
tables with
colour: halted or running and why, the kill switch, failures against the cap, the last cycle's
steps with outcome and duration, the active model and its backtest, pending approvals, the paper
account and its positions, the risk limits against the hard ceilings, and the newest critical and
error alerts. Anywhere else (a pipe, a file, cron mail, ``grep``) it prints
:func:`~aistock_actors.services.operator_actions.render_status`'s plain lines: no ANSI codes,
one fact per line, the lines the runbook and the tests grep for. ``--status --json`` prints the
same data as JSON.
"""

from __future__ import annotations

import sys
from typing import IO, TYPE_CHECKING, Any

import msgspec

from aistock_actors.runtime.redaction import escape_control
from aistock_actors.services.operator_actions import (
    Status,
    degraded_suffix,
    render_status,
    replay_line,
    step_detail,
)

if TYPE_CHECKING:  # rich loads only when a terminal gets the rich view
    from rich.console import RenderableType
    from rich.table import Table

STEP_STYLES = {"ok": "green", "failed": "bold red", "timeout": "bold red", "crashed": "bold red"}
SEVERITY_STYLES = {"critical": "bold red", "error": "red", "warning": "yellow", "info": "dim"}
NUMERIC = frozenset({"time", "quantity", "last", "entry", "value", "weight", "sharpe", "in force",
                     "trading at", "hard ceiling", "use of ceiling"})
METRICS = ("sharpe", "max_drawdown", "win_rate", "total_return", "trade_count",
           "transition_drawdown")


def is_terminal(stream: IO[str]) -> bool:
    """Whether ``stream`` is an interactive terminal."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def print_status(st: Status, file: IO[str] | None = None) -> None:
    """Print ``st``: the rich view on a terminal, plain text otherwise.

    Control characters in any text (an alert message naming a file with a newline or ESC in its
    name) are shown escaped, never sent to the terminal (#17).
    """
    out = file if file is not None else sys.stdout
    st = escaped_status(st)
    if not is_terminal(out):
        out.write(render_status(st) + "\n")
        return
    from rich.console import Console

    Console(file=out).print(build_view(st))


def _escape(value: Any) -> Any:
    if isinstance(value, str):
        return escape_control(value)
    if isinstance(value, msgspec.Struct):
        fields = {name: _escape(getattr(value, name)) for name in value.__struct_fields__}
        return msgspec.structs.replace(value, **fields)
    if isinstance(value, dict):
        return {_escape(k): _escape(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_escape(v) for v in value)
    return value


def escaped_status(st: Status) -> Status:
    """``st`` with every control character in its texts escaped (``\\x1b``, ``\\n``)."""
    escaped = _escape(st)
    assert isinstance(escaped, Status)
    return escaped


def build_view(st: Status) -> RenderableType:
    """The whole rich view of ``st`` (a group of panels)."""
    from rich.console import Group

    parts: list[RenderableType] = [_overview(st), _last_cycle(st), _model(st), _paper(st)]
    parts.extend([_risk(st), _alerts(st)])
    return Group(*parts)


def _panel(body: RenderableType, title: str, style: str = "blue") -> RenderableType:
    from rich.panel import Panel

    return Panel(body, title=f"[bold]{title}[/]", title_align="left", border_style=style)


def _grid() -> Table:
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    return grid


def _table(*headers: str) -> Table:
    from rich.table import Table

    table = Table(expand=False, header_style="bold", pad_edge=False, box=None)
    for header in headers:
        table.add_column(header, justify="right" if header in NUMERIC else "left")
    return table


def _e(value: object) -> str:
    """``value`` as text with rich markup escaped (state files hold ``[...]`` in messages)."""
    from rich.markup import escape

    return escape(str(value))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "n/a" if value is None else str(value)


def _overview(st: Status) -> RenderableType:
    grid = _grid()
    if st.halt is not None:
        grid.add_row("state", f"[bold red]HALTED[/] {_e(st.halt.reason)} since {st.halt.halted_at}")
        grid.add_row("", _e(st.halt.message))
    else:
        grid.add_row("state", "not halted")
    if st.daemon is not None:
        style = {"running": "bold green", "stale_lock": "bold yellow"}.get(st.daemon.state, "red")
        grid.add_row("process", f"[{style}]{_e(st.daemon.summary)}[/]")
    grid.add_row("kill switch", "[bold red]ACTIVE[/]" if st.kill_switch else "[green]off[/]")
    failures = f"{st.consecutive_failures} / {st.max_consecutive_failures} before a halt"
    grid.add_row("consecutive failures",
                 f"[yellow]{failures}[/]" if st.consecutive_failures else failures)
    last = st.last_success_at or "never"
    grid.add_row("cycles", f"{st.cycles_total} total, {st.cycles_succeeded} ok, "
                           f"{st.cycles_failed} failed{degraded_suffix(st.cycles_degraded)}; "
                           f"last success {last}")
    grid.add_row("mode", st.mode)
    grid.add_row("state dir", _e(st.state_dir))
    restarts = ", ".join(f"{k}={v}" for k, v in sorted(st.restarts.items())) or "none"
    grid.add_row("actor restarts", _e(restarts))
    grid.add_row("not built yet", ", ".join(st.not_built) or "nothing")
    replay = replay_line(st)
    if replay is not None:
        grid.add_row("replay", _e(replay))
    return _panel(grid, "aistock", "red" if st.halted or st.kill_switch else "green")


def _last_cycle(st: Status) -> RenderableType:
    lc = st.last_cycle
    if lc is None:
        return _panel("no cycle has run yet", "last cycle")
    table = _table("step", "status", "time", "detail")
    for step in lc.steps:
        style = STEP_STYLES.get(step.status, "yellow")
        table.add_row(_e(step.name), f"[{style}]{_e(step.status)}[/]",
                      f"{step.duration_s:.2f}s", _e(step_detail(step)))
    outcome = {"succeeded": "green", "degraded": "yellow"}.get(lc.outcome, "red")
    title = f"last cycle {_e(lc.cycle_id)}: {_e(lc.outcome)} (finished {lc.finished_at})"
    return _panel(table, title, outcome)


def _model(st: Status) -> RenderableType:
    from rich.console import Group

    grid = _grid()
    active = st.active_model
    if active is None:
        grid.add_row("active model", "none")
    else:
        grid.add_row("active model", f"[bold]{_e(active['id'])}[/] since {active['activated_at']}")
        grid.add_row("threshold", _fmt(active.get("threshold")))
        grid.add_row("accuracy", f"train {_fmt(active.get('train_accuracy'))}, "
                                 f"test {_fmt(active.get('test_accuracy'))}")
        backtest = active.get("backtest") or {}
        metrics = ", ".join(f"{k}={_fmt(backtest.get(k))}" for k in METRICS if k in backtest)
        grid.add_row("backtest", metrics or "no backtest metrics recorded")
    if st.active_model_why:
        grid.add_row("why", _e(st.active_model_why))
    parts: list[RenderableType] = [grid]
    if st.pending_approvals:
        table = _table("pending approval", "sharpe", "decide with")
        for entry in st.pending_approvals:
            table.add_row(_e(entry["id"]), _fmt(entry.get("sharpe")),
                          "--approve ID / --reject ID")
        parts.append(table)
    else:
        grid.add_row("pending approvals", "none")
    return _panel(Group(*parts), "model")


def _paper(st: Status) -> RenderableType:
    from rich.console import Group

    paper = st.paper
    if paper is None:
        return _panel("none yet (no trade step has run)", "paper account")
    grid = _grid()
    grid.add_row("equity", f"${paper.equity:,.2f} (cash ${paper.cash:,.2f}, "
                           f"start ${paper.initial_cash:,.2f})")
    dd_style = "red" if paper.drawdown_halt is not None else "default"
    grid.add_row("drawdown", f"[{dd_style}]{paper.drawdown:.2%}[/]")
    if paper.drawdown_halt is not None:
        h = paper.drawdown_halt
        state = "acknowledged" if h.acknowledged else "[bold red]IN FORCE[/]"
        grid.add_row("drawdown halt", f"{state}: {h.drawdown:.2%} > {h.threshold:.2%} "
                                      f"at {h.tripped_at}")
    grid.add_row("as of", _e(f"{paper.as_of or 'never'}, model {paper.model_id or 'none'}"))
    grid.add_row("orders", f"{paper.open_orders} open, {paper.fills} fill(s) in the ledger")
    if not paper.positions:
        grid.add_row("positions", "none")
        return _panel(grid, "paper account")
    table = _table("symbol", "quantity", "last", "entry", "value", "weight")
    for pos in paper.positions:
        last = f"{pos.last_price:.2f}" if pos.last_price is not None else "?"
        table.add_row(_e(pos.symbol), f"{pos.quantity:,.2f}", last, f"{pos.entry_price:.2f}",
                      f"${pos.value:,.2f}", f"{pos.weight:.2%}")
    return _panel(Group(grid, table), "paper account")


def _risk(st: Status) -> RenderableType:
    from rich.console import Group

    risk = st.risk
    if risk is None:
        return _panel("config values (no risk step has run)", "risk limits")
    table = _table("limit", "in force", "trading at", "hard ceiling", "use of ceiling")
    for view in risk.limits:
        if view.ceiling:
            share = view.value / view.ceiling
            style = "red" if share > 1.0 + 1e-9 else "yellow" if share > 0.9 else "green"
            use = f"[{style}]{share:.0%}[/]"
        else:
            use = "no ceiling"
        ceiling = f"{view.ceiling:g}" if view.ceiling is not None else "none"
        table.add_row(view.name, f"{view.value:g}", f"{view.effective:g}", ceiling, use)
    lines: list[RenderableType] = [
        _e(f"regime {risk.regime}, allocator {risk.allocator_mode}; {risk.changes} change(s), "
           f"last: {risk.last_change or 'none'}"),
        table,
    ]
    if risk.pending is not None:
        p = risk.pending
        lines.append(f"[yellow]pending {p.id}[/]: max_position_fraction "
                     f"{p.before.max_position_fraction:g} -> {p.after.max_position_fraction:g} "
                     f"(--approve {p.id} / --reject {p.id})")
    return _panel(Group(*lines), "risk limits")


def _alerts(st: Status) -> RenderableType:
    from rich.console import Group

    acked = ", ".join(f"{k} {v}" for k, v in st.alerts_acknowledged.items() if v) or "none"
    counts = ", ".join(
        f"[{SEVERITY_STYLES.get(k, 'default')}]{k} {v}[/]" for k, v in st.alerts.items()
    ) + f" open; acknowledged: {acked}"
    if not st.recent_alerts:
        return _panel(Group(counts, "no open critical or error alert"), "alerts")
    table = _table("when", "severity", "code", "actor", "message", "--ack")
    for alert in st.recent_alerts:
        style = SEVERITY_STYLES.get(alert.severity, "default")
        table.add_row(alert.ts, f"[{style}]{_e(alert.severity)}[/]", _e(alert.code),
                      _e(alert.actor), _e(" ".join(alert.message.split())), _e(alert.id))
    critical = any(a.severity == "critical" for a in st.recent_alerts)
    return _panel(Group(counts, table), "recent alerts", "red" if critical else "yellow")
