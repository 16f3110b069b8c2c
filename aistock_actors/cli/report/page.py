"""The report's HTML: one page, inline CSS, plots as base64 PNG ``data:`` URIs, no script.

Every section renders something: a plot and a table when there is data, a "No data yet" panel
that says what would fill it when there is none, and the reading error when a file is damaged.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aistock_actors.cli.report import plots
from aistock_actors.cli.report.data import CEILINGS, ModelData, ReportData
from aistock_actors.core.market.regimes import REGIME_NAMES, UNKNOWN
from aistock_actors.core.promotion.manifest import ManifestStage

MAX_TABLE_ROWS = 50
"""Tables show the newest rows only; a daemon adds a verdict every cycle."""
FLOAT = re.compile(r"-?\d+\.\d{5,}(?:e-?\d+)?")

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0;
       color: #1d2330; background: #f4f6f9; }
header { background: #1d2330; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px 0; font-size: 24px; }
header p { margin: 0; color: #c9d1e0; font-size: 13px; }
nav { padding: 10px 32px; background: #e6eaf1; font-size: 13px; }
nav a { margin-right: 14px; color: #1d4ed8; text-decoration: none; }
main { padding: 8px 32px 40px 32px; max-width: 1180px; }
section { background: #fff; border-radius: 8px; padding: 14px 20px; margin: 18px 0;
          box-shadow: 0 1px 3px rgba(0,0,0,.12); }
h2 { margin: 0 0 10px 0; font-size: 19px; }
img.plot { width: 100%; max-width: 1000px; display: block; margin: 8px 0; }
table { border-collapse: collapse; font-size: 12px; margin: 8px 0; }
th, td { border-bottom: 1px solid #e1e5ec; padding: 4px 8px; text-align: left;
         vertical-align: top; }
th { background: #f0f2f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.passed { background: #dcfce7; } .failed { background: #fee2e2; } .skipped { color: #8a93a3; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; }
.ok { background: #dcfce7; color: #166534; } .bad { background: #fee2e2; color: #991b1b; }
.warn { background: #fef3c7; color: #92400e; }
.empty { border: 2px dashed #c3cad6; border-radius: 8px; padding: 18px; color: #4b5563;
         background: #fafbfc; }
.problem { border: 2px solid #f87171; border-radius: 8px; padding: 12px; color: #991b1b; }
.note { color: #4b5563; font-size: 13px; }
.scroll { overflow-x: auto; }
small { color: #6b7280; }
"""


@dataclass(frozen=True)
class Rendered:
    """One section's HTML and whether it had data to show."""

    id: str
    title: str
    body: str
    has_data: bool


def e(value: Any) -> str:
    """HTML-escaped text."""
    return html.escape(str(value), quote=True)


def img(png: bytes, alt: str) -> str:
    """An ``<img>`` with the PNG inline."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="plot" alt="{e(alt)}" src="data:image/png;base64,{data}">'


def empty(text: str) -> str:
    """The "no data yet" panel."""
    return f'<div class="empty"><strong>No data yet.</strong> {e(text)}</div>'


def problem(text: str) -> str:
    """A section whose files could not be read."""
    return f'<div class="problem"><strong>Unreadable.</strong> {e(text)}</div>'


def num(value: Any, fmt: str = ".4g") -> str:
    """A number for a table cell (``n/a`` for missing or non-finite)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "n/a" if value is None else e(value)
    return format(value, fmt) if math.isfinite(value) else "n/a"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table; cells are trusted HTML (escape before)."""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(cell: str) -> str:
    return cell if cell.startswith(("<td", "<th")) else f"<td>{cell}</td>"


def kv_table(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column key/value table; keys are plain text, values trusted HTML."""
    body = "".join(f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table><tbody>{body}</tbody></table>"


def _badge(text: str, kind: str) -> str:
    return f'<span class="badge {kind}">{e(text)}</span>'


def summary(data: ReportData) -> Rendered:
    """Mode, halt, kill switch, failures, cycles, equity, active model (from ``--status``)."""
    st = data.status
    if st is None:
        return Rendered("summary", "Summary", problem(data.status_problem or "no status"), False)
    halt = st.get("halt")
    state = _badge(f"HALTED: {halt['reason']}", "bad") if halt else _badge("running", "ok")
    kill = _badge("ACTIVE", "bad") if st["kill_switch"] else _badge("off", "ok")
    paper = st.get("paper") or {}
    active = st.get("active_model") or {}
    rows = [
        ("mode", e(st["mode"])),
        ("state", state + (f" <small>{e(halt['message'])}</small>" if halt else "")),
        ("kill switch", kill),
        ("consecutive failures", f"{st['consecutive_failures']} / "
                                 f"{st['max_consecutive_failures']}"),
        ("cycles", f"{st['cycles_total']} total, {st['cycles_succeeded']} ok, "
                   f"{st['cycles_failed']} failed, {st.get('cycles_degraded', 0)} degraded; "
                   f"last success {e(st['last_success_at'])}"),
        ("active model", e(active.get("id", "none"))),
        ("paper equity", f"${paper['equity']:,.2f}, drawdown {paper['drawdown']:.2%}"
                         if paper else "no trade step yet"),
        ("alerts", e(", ".join(f"{k} {v}" for k, v in st["alerts"].items()))),
    ]
    body = kv_table(rows)
    alerts = st.get("recent_alerts") or []
    if alerts:
        body += "<p class='note'>Newest critical and error alerts:</p>" + table(
            ["time", "severity", "code", "actor", "message"],
            [(e(a["ts"]), e(a["severity"]), e(a["code"]), e(a["actor"]), e(a["message"]))
             for a in alerts],
        )
    return Rendered("summary", "Summary", body, True)


def replay(data: ReportData) -> Rendered:
    """A replay: what the autopilot did over the market period, and its paper account against
    an equal-weight buy-and-hold of the same symbols (every time in this report is a market
    date)."""
    rp, title = data.replay, "Replay"
    if rp.problem:
        return Rendered("replay", title, problem(rp.problem), False)
    state = rp.state
    if state is None or state.summary is None:
        return Rendered("replay", title, empty(
            "The replay has not finished a run yet: its summary is written when it ends, "
            "stops or halts."), False)
    s = state.summary

    def events(items: list[Any]) -> str:
        return e(", ".join(f"{x.what} on {x.date}" for x in items) or "none")

    rows = [
        ("market period", f"{e(s.period_start)} .. {e(s.period_end)} "
                          f"({s.steps_done} of {s.steps_total} bars, {e(state.status)})"),
        ("cycles", f"{s.cycles} ({s.cycles_failed} failed, {s.cycles_degraded} degraded)"),
        ("candidates trained", str(s.candidates)),
        ("promotions", events(s.promotions) if s.promotions else
         "none: no candidate passed the promotion gate"),
        ("rejections", e(", ".join(f"{k} {v}" for k, v in s.rejections.items()) or "none")),
        ("risk changes", e(", ".join(f"{k} {v}" for k, v in s.risk_changes.items()) or "none")),
        ("rollbacks", events(s.rollbacks)),
        ("retirements", events(s.retirements)),
        ("halts", events(s.halts)),
    ]
    accounts = [("paper account", s.account), ("equal-weight buy-and-hold", s.benchmark)]
    figures = table(
        ["", "final equity", "total return", "CAGR", "Sharpe", "max drawdown", "turnover",
         "costs", "trades"],
        [(e(name), f"${a.final_equity:,.0f}", f"{a.total_return:.2%}", f"{a.cagr:.2%}",
          f"{a.sharpe:.2f}", f"{a.max_drawdown:.2%}", f"{a.turnover:.1f}x", f"${a.costs:,.0f}",
          str(a.trades)) for name, a in accounts if a is not None],
    )
    note = ("<p class='note'>Every time in this report is a market date: verdicts and risk "
            "changes are placed at the bar their cycle ran on.</p>")
    plot = img(plots.replay_equity(rp, data.equity), title) if rp.times else ""
    return Rendered("replay", title, note + kv_table(rows) + figures + plot, True)


def equity(data: ReportData) -> Rendered:
    """Paper equity and drawdown."""
    eq = data.equity
    title = "Paper equity and drawdown"
    if eq.problem:
        return Rendered("equity", title, problem(eq.problem), False)
    if len(eq.equity) < 2:
        return Rendered("equity", title, empty(
            "The paper account has fewer than two equity points: the trade step marks one per "
            "new bar once a model is active."), False)
    last, peak = eq.equity[-1], max(eq.equity)
    note = (f"<p class='note'>{len(eq.equity)} equity points from {e(eq.times[0])} to "
            f"{e(eq.times[-1])}; last ${last:,.2f} ({last / eq.initial_cash - 1:+.2%} since "
            f"the start), peak ${peak:,.2f}.</p>")
    return Rendered("equity", title, note + img(plots.equity_drawdown(eq), title), True)


def model(data: ReportData) -> Rendered:
    """The active model's backtest equity and metrics, and every verdict's backtest."""
    md, title = data.model, "Active model backtest"
    if md.problem:
        return Rendered("model", title, problem(md.problem), False)
    parts = []
    active = md.active
    if active is None:
        parts.append(empty("No model is active yet: a candidate becomes active when it passes "
                           "every promotion stage (or is approved with --approve)."))
    else:
        parts.append(_backtest_curve(md))
        bt = active.get("backtest") or {}
        rows = [("model", e(active["id"])), ("active since", e(active.get("activated_at"))),
                ("threshold", num(active.get("threshold"))),
                ("train / test accuracy", f"{num(active.get('train_accuracy'))} / "
                                          f"{num(active.get('test_accuracy'))}")]
        rows += [(f"backtest {k}", num(v)) for k, v in bt.items()]
        parts.append(kv_table(rows))
    if any(isinstance(x.backtest, dict) for x in md.manifest):
        parts.append("<p class='note'>Every judged candidate's out-of-sample Sharpe and maximum "
                     "drawdown against the stage-1 thresholds:</p>")
        parts.append(img(plots.verdict_backtests(md), "every verdict's backtest"))
    return Rendered("model", title, "".join(parts), active is not None or bool(md.manifest))


def _backtest_curve(md: ModelData) -> str:
    """The active model's backtest equity plot, or why there is none."""
    if md.active_curve is None and md.curve_problem:
        return (f"<p class='note'>The active model's backtest equity curve cannot be drawn: "
                f"{e(md.curve_problem)}. Its out-of-sample metrics are below.</p>")
    if md.active_curve is None:
        return ("<p class='note'>No backtest equity curve is stored for the active model: it "
                "was promoted before backtest equity curves were stored (in "
                "state/promotion/curves/), so there is no curve to draw. Its out-of-sample "
                "metrics are below.</p>")
    curve = md.active_curve
    window = (f" from {e(md.active_window[0])} to {e(md.active_window[1])}"
              if md.active_window else "")
    drawn = f"{len(curve)} points" + (f" of {md.active_bars} bars" if md.active_bars else "")
    return (f"<p class='note'>The active model's walk-forward out-of-sample backtest{window}, "
            f"as judged when it was promoted: ${curve[0][1]:,.2f} &rarr; ${curve[-1][1]:,.2f}. "
            f"{drawn} drawn; the first and last bar and the largest drawdown are exact.</p>"
            + img(plots.backtest_equity(md), plots.BACKTEST_TITLE))


def promotions(data: ReportData) -> Rendered:
    """Every verdict with each stage's value against its threshold."""
    md, title = data.model, "Promotion history"
    if md.problem:
        return Rendered("promotions", title, problem(md.problem), False)
    if not md.manifest:
        return Rendered("promotions", title, empty(
            "No verdict yet: the judge step records one per trained and backtested candidate "
            "in state/promotion/manifest.json."), False)
    entries = list(reversed(md.manifest))[:MAX_TABLE_ROWS]
    numbers = sorted({s.stage for x in entries for s in x.stages})
    names = {s.stage: s.name for x in entries for s in x.stages}
    headers = ["time", "model", "status", *[f"{n} {names[n]}" for n in numbers], "reasons"]
    rows = []
    for entry in entries:
        stages = {s.stage: s for s in entry.stages}
        status = entry.status
        kind = {"approved": "ok", "rejected": "bad"}.get(status, "warn")
        rows.append([e(entry.time), e(entry.model_id), _badge(status, kind),
                     *[_stage_cell(stages.get(n)) for n in numbers],
                     e(", ".join(entry.reasons) or "-")])
    shown = f"the newest {len(entries)} of {len(md.manifest)}" if len(md.manifest) > len(
        entries) else f"all {len(entries)}"
    note = (f"<p class='note'>Showing {shown} verdicts, newest first. Each stage cell: measured "
            "value / threshold (green passed, red failed, grey skipped).</p>")
    body = f'<div class="scroll">{table(headers, rows)}</div>'
    return Rendered("promotions", title, note + body, True)


def _short_numbers(text: str) -> str:
    """``max_drawdown=0.0216567814638281`` as ``max_drawdown=0.02166``."""
    return FLOAT.sub(lambda m: format(float(m.group(0)), ".4g"), text)


def _stage_cell(stage: ManifestStage | None) -> str:
    if stage is None:
        return "<td>-</td>"
    text = f"{num(stage.value)} <small>/ {e(stage.threshold)}</small>"
    if stage.note:
        text += f"<br><small>{e(_short_numbers(stage.note))}</small>"
    return f'<td class="{e(stage.status)}">{text}</td>'


def risk(data: ReportData) -> Rendered:
    """Risk-limit history against the hard ceilings."""
    rd, title = data.risk, "Risk limits against the hard ceilings"
    if rd.problem:
        return Rendered("risk", title, problem(rd.problem), False)
    limits = rd.limits or rd.config_limits
    rows = [(e(name), num(getattr(limits, name), ",.6g") if limits else "n/a",
             num(getattr(rd.effective, name), ",.6g") if rd.effective else "n/a",
             num(ceiling, ",.6g") if ceiling is not None else "none")
            for name, ceiling in CEILINGS.items()]
    current = table(["limit", "in force", "trading at", "hard ceiling"], rows)
    if rd.limits is None:
        return Rendered("risk", title, empty(
            "No risk step has run yet: the config's limits (below) apply, clamped to the "
            "ceilings.") + current, False)
    changes = table(
        ["time", "cycle", "reason", "by", "max_position_fraction", "max_notional_per_symbol"],
        [(e(c.at), e(c.cycle_id), e(c.reason), e(c.applied_by),
          f"{c.before.max_position_fraction:g} &rarr; {c.after.max_position_fraction:g}",
          f"{c.before.max_notional_per_symbol:g} &rarr; {c.after.max_notional_per_symbol:g}")
         for c in reversed(rd.history[-MAX_TABLE_ROWS:])],
    ) if rd.history else "<p class='note'>No change of the limits yet.</p>"
    note = (f"<p class='note'>{len(rd.history)} change(s) kept in state/risk/limits.json; "
            f"regime {e(rd.regime)}.</p>")
    return Rendered("risk", title, note + img(plots.risk_history(rd), title) + current + changes,
                    True)


def regimes(data: ReportData) -> Rendered:
    """The regime timeline of the stored bars."""
    rg, title = data.regimes, "Market regimes"
    if rg.problem:
        return Rendered("regimes", title, problem(rg.problem), False)
    if rg.codes is None or len(rg.codes) == 0:
        return Rendered("regimes", title, empty(
            "No bars are stored yet: the ingest step fills state/bars/ from the CSV folder."),
            False)
    counts = {REGIME_NAMES.get(int(c), REGIME_NAMES[UNKNOWN]): 0 for c in rg.codes}
    for code in rg.codes:
        counts[REGIME_NAMES.get(int(code), REGIME_NAMES[UNKNOWN])] += 1
    total = len(rg.codes)
    shares = table(["regime", "bars", "share"],
                   [(e(n), str(c), f"{c / total:.1%}") for n, c in sorted(counts.items())])
    latest = REGIME_NAMES.get(int(rg.codes[-1]), REGIME_NAMES[UNKNOWN])
    note = (f"<p class='note'>{total} bars of {rg.symbols} symbols, labelled by "
            f"core.regimes.market_regimes on their equal-weight index; newest bar: "
            f"<strong>{e(latest)}</strong>.</p>")
    return Rendered("regimes", title, note + img(plots.regime_timeline(rg), title) + shares, True)


def costs(data: ReportData) -> Rendered:
    """Cost calibration: predicted against realised bps."""
    cd, title = data.costs, "Cost calibration"
    if cd.problem:
        return Rendered("costs", title, problem(cd.problem), False)
    if not cd.fills:
        return Rendered("costs", title, empty(
            "No fill yet: every paper fill records its predicted and realised cost in bps."),
            False)
    surprise = [f.realised_cost_bps - f.predicted_cost_bps for f in cd.fills]
    note = (f"<p class='note'>{len(cd.fills)} fills; mean predicted "
            f"{sum(f.predicted_cost_bps for f in cd.fills) / len(cd.fills):.2f} bps, mean "
            f"realised {sum(f.realised_cost_bps for f in cd.fills) / len(cd.fills):.2f} bps, "
            f"mean surprise {sum(surprise) / len(surprise):+.2f} bps; "
            f"{cd.price_improvements} price improvement(s).</p>")
    stats = table(
        ["key", "fills", "EWMA surprise (bps)", "min", "max", "price improvements"],
        [(e(k), str(s.count), _bps(s.ewma_surprise_bps), _bps(s.min_surprise_bps),
          _bps(s.max_surprise_bps), str(s.price_improvements))
         for k, s in sorted(cd.stats.items())],
    ) if cd.stats else ""
    return Rendered("costs", title, note + img(plots.cost_scatter(cd), title) + stats, True)


def _bps(value: float) -> str:
    """Basis points to two decimals, without a ``-0.00``."""
    return num(round(value, 2) + 0.0, ".2f") if math.isfinite(value) else "n/a"


SECTIONS: tuple[Callable[[ReportData], Rendered], ...] = (
    summary, equity, model, promotions, risk, regimes, costs,
)


def page(data: ReportData, sections: Sequence[Rendered]) -> str:
    """The whole HTML document."""
    nav = "".join(f'<a href="#{s.id}">{e(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{s.id}"><h2>{e(s.title)}</h2>{s.body}</section>'
                   for s in sections)
    when = data.generated_at.isoformat(timespec="seconds")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>aistock report {e(when)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>aistock report</h1><p>generated {e(when)} &middot; config "
        f"{e(data.config_path)} &middot; state {e(data.state_dir)}</p></header>"
        f"<nav>{nav}</nav><main>{body}</main></body></html>\n"
    )
