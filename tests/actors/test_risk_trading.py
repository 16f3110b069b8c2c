"""RiskGovernor and PaperTrader as real actors under a real supervisor, on real files."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from _support.opsupport import alerts_of
from _support.paper_support import Rig, activate_model, head, read_json, step_data, trained_model
from _support.support import audit_actions

from aistock_actors.cli import app as cli
from aistock_actors.core.trading.costs import CostModel
from aistock_actors.core.trading.ledger import (
    Bar,
    Order,
    execute_orders,
    ledger_equity,
    new_ledger,
    portfolio_weights,
    reconcile,
)
from aistock_actors.services import operator_actions as operator
from aistock_actors.store.ledger import PaperStore, calibrated_costs

SMALL_WINDOW = {"min_observations": 3, "performance_window": 20}


def audit_records(state_dir: Path, action: str) -> list[dict[str, object]]:
    lines = (state_dir / "audit" / "log.jsonl").read_text().splitlines()
    return [r["details"] for r in map(json.loads, lines) if r["action"] == action]


def seed_equity(rig: Rig, values: list[float], winning_trades: int = 0) -> None:
    """A ledger whose equity curve is ``values``, after ``winning_trades`` profitable round trips
    (real fills, so the ledger reconciles and the PaperTrader accepts it)."""
    state = new_ledger(100_000.0)
    for i in range(winning_trades):
        for qty, price in ((10.0, 100.0 + i), (-10.0, 102.0 + i)):
            order = Order(order_id=f"seed-{i}-{qty}", symbol="SEED", quantity=qty,
                          decision_price=price, cycle_id="seed", model_id="seed")
            bar = Bar(open=price, high=price, low=price, close=price, volume=1e6)
            state, _, _ = execute_orders(state, [order], {"SEED": bar}, CostModel(),
                                         timestamp=f"seed-{i}", halted=lambda: False)
    scale = ledger_equity(state) / values[-1]  # the trader's next mark continues the curve
    curve = [(f"2015-01-{i + 1:02d}", v * scale) for i, v in enumerate(values)]
    state = msgspec.structs.replace(state, equity_curve=curve)
    assert reconcile(state) == []
    PaperStore(rig.state_dir, None, 0.0).save_ledger(state)


def test_without_an_active_model_the_trade_step_holds_and_succeeds(tmp_path: Path) -> None:
    rig = Rig(tmp_path, model=False)
    summary = rig.once()
    assert summary.outcome == "succeeded"
    trade, risk = step_data(summary, "trade"), step_data(summary, "risk")
    assert trade["step_status"] == "ok" and trade["status"] == "no active model: holding"
    assert trade["fills"] == 0 and trade["equity"] == 100_000.0
    assert risk["step_status"] == "ok" and risk["max_position_fraction"] == 0.2
    assert (tmp_path / "state" / "risk" / "limits.json").exists()


def test_a_model_activated_after_the_last_bar_trades_without_waiting_for_a_new_one(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, model=False)
    rig.once()
    activate_model(tmp_path / "models", trained_model(head(rig.frames, 200)))
    trade = step_data(rig.once(), "trade")
    assert trade["status"] == "traded" and trade["orders_planned"] > 0
    again = step_data(rig.once(), "trade")  # same bar, same model: nothing twice
    assert again["status"] == "no new bar: holding" and again["orders_planned"] == 0
    assert len(rig.ledger().open_orders) == trade["orders_planned"]


def test_orders_fill_at_the_next_bars_open_and_a_restart_resumes_exactly(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    first = rig.once()
    planned = rig.ledger().open_orders
    assert step_data(first, "trade")["fills"] == 0 and planned
    assert {o.cycle_id for o in planned} == {rig.ledger().as_of}  # decided on the latest bar
    rig.grow(201)
    second = step_data(rig.once(), "trade")
    state = rig.ledger()
    fills = state.fills
    assert second["fills"] == len(fills) > 0
    for fill in fills:
        bar = rig.frames[fill.symbol].iloc[200]  # the first bar after the decision bar
        assert fill.reference_price == bar["open"]
        assert fill.decision_price == rig.frames[fill.symbol].iloc[199]["close"]
        assert abs(fill.quantity) <= 0.1 * bar["volume"] + 1e-9  # paper.max_volume_share
    for pos in state.positions.values():
        assert pos.last_price == rig.frames[pos.symbol].iloc[200]["close"]
    assert reconcile(state) == []
    costs = read_json(tmp_path / "state" / "paper" / "costs.json")
    assert costs["fills_recorded"] == len(fills)
    perf = read_json(tmp_path / "state" / "paper" / "performance.json")
    assert perf["model_id"] == "m-test" and len(perf["returns"]) == 1
    # A new process (new actors) loads exactly the same account and carries on from it.
    before = rig.ledger_bytes()
    rig.grow(202)
    third = step_data(rig.once(), "trade")
    after = rig.ledger()
    assert after.fills[: len(fills)] == fills and third["as_of"] == after.as_of
    assert before != rig.ledger_bytes() and reconcile(after) == []


def test_weights_use_last_price_after_a_price_move_t3(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.once()
    rig.grow(201)
    rig.once()
    held = rig.ledger().positions
    assert held
    closes = {s: rig.frames[s].iloc[rig.shown - 1]["close"] for s in rig.frames}
    rig.append_bar({s: {"open": c, "high": c * 1.1, "low": c, "close": c * 1.1, "volume": 1e9}
                    for s, c in closes.items()})
    rig.once()
    state = rig.ledger()
    weights, warnings = portfolio_weights(state)
    assert warnings == []
    equity = ledger_equity(state)
    assert state.positions
    for symbol, now in state.positions.items():
        assert now.last_price == pytest.approx(closes[symbol] * 1.1)
        assert now.last_price != pytest.approx(now.entry_price)
        assert weights[symbol] == pytest.approx(now.quantity * now.last_price / equity)
        assert weights[symbol] != pytest.approx(now.quantity * now.entry_price / equity)
    status = operator.status(rig.loaded)
    assert status.paper is not None
    views = {v.symbol: v for v in status.paper.positions}
    for symbol, w in weights.items():
        assert views[symbol].weight == pytest.approx(w)


def test_price_improvement_reaches_the_calibrator_unclipped_t4(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.once()
    orders = rig.ledger().open_orders
    assert orders
    # The next bar gaps 5 % in each order's favour: below the decision price for a buy.
    rows = {}
    for symbol in rig.frames:
        close = rig.frames[symbol].iloc[199]["close"]
        side = next((o.quantity for o in orders if o.symbol == symbol), 1.0)
        open_ = close * (0.95 if side > 0 else 1.05)
        rows[symbol] = {"open": open_, "high": open_ * 1.01, "low": open_ * 0.99,
                        "close": open_, "volume": 1e9}
    rig.append_bar(rows)
    rig.once()
    fills = rig.ledger().fills
    assert fills and all(f.realised_cost_bps < -400.0 for f in fills)
    stats = read_json(tmp_path / "state" / "paper" / "costs.json")["calibrator"]["stats"]
    for fill in fills:
        first = stats[fill.symbol]
        assert first["count"] == 1 and first["price_improvements"] == 1
        assert first["last_realised_bps"] == pytest.approx(fill.realised_cost_bps)
        assert first["ewma_surprise_bps"] == pytest.approx(
            fill.realised_cost_bps - fill.predicted_cost_bps)  # the first fill seeds it: unclipped
    book = read_json(tmp_path / "state" / "paper" / "costs.json")
    assert book["price_improvements"] == len(fills)
    # What the backtester can read: base bps plus the learned (negative) surprise, unfloored.
    calibrated = calibrated_costs(rig.state_dir, 2.0, min_count=1, floor_bps=None)
    for fill in fills:
        surprise = stats[fill.symbol]["ewma_surprise_bps"]
        assert calibrated[fill.symbol] == pytest.approx(2.0 + surprise)
    assert any(key.startswith("liq") for key in calibrated)


def test_signals_are_filtered_at_the_models_own_threshold_t6(tmp_path: Path) -> None:
    strict = Rig(tmp_path / "strict", threshold=1.0)  # its meta-labeler never reaches 1.0
    assert step_data(strict.once(), "trade")["status"] == "no orders: holding"
    loose = Rig(tmp_path / "loose", threshold=0.0)
    assert step_data(loose.once(), "trade")["orders_planned"] == len(loose.frames)


@pytest.mark.parametrize("mode", ["shadow", "full"])
def test_allocator_shadow_audits_only_and_full_applies_t8(tmp_path: Path, mode: str) -> None:
    half = {"position_size_multiplier": 0.5}
    profiles = dict.fromkeys(["calm_up", "calm_down", "volatile_up", "volatile_down"], half)
    rig = Rig(tmp_path, allocator={"mode": mode, "profiles": profiles, "default_profile": half})
    summary = rig.once()
    limits = read_json(tmp_path / "state" / "risk" / "limits.json")
    (decision,) = audit_records(rig.state_dir, f"allocator{'_shadow' if mode == 'shadow' else ''}"
                                "_decision")
    assert decision["would_change"] is True
    assert decision["proposed"]["max_position_fraction"] == 0.1  # type: ignore[index]
    assert limits["limits"]["max_position_fraction"] == 0.2  # never fed back into the policy
    effective = limits["effective"]["max_position_fraction"]
    assert effective == (0.2 if mode == "shadow" else 0.1)
    assert decision["changed"] is (mode == "full")
    assert step_data(summary, "risk")["effective_limits"]["max_position_fraction"] == effective
    state = rig.ledger()
    equity = ledger_equity(state)
    sizes = [abs(o.quantity * o.decision_price) / equity for o in state.open_orders]
    assert sizes and max(sizes) == pytest.approx(effective, rel=1e-6)


def test_poor_performance_tightens_at_once_and_is_audited(tmp_path: Path) -> None:
    rig = Rig(tmp_path, model=False, mode="supervised", risk=SMALL_WINDOW)
    seed_equity(rig, [100_000.0 * (1 - 0.02 * i) for i in range(10)])
    summary = rig.once()
    (change,) = audit_records(rig.state_dir, "risk_limits_adjusted")
    assert change["reason"] == "tightened_on_poor_performance"
    assert change["before"]["max_position_fraction"] == 0.2  # type: ignore[index]
    # Two triggers (Sharpe < 0.5, drawdown 18 % > 15 %) multiply: 0.2 x 0.8 x 0.8.
    assert change["after"]["max_position_fraction"] == pytest.approx(0.128)  # type: ignore[index]
    assert {"sharpe_below_0.5", "drawdown_above_0.15"} <= set(change["reasons"])  # type: ignore[arg-type]
    risk = step_data(summary, "risk")
    assert risk["outcome"] == "tightened" and risk["adjustments"] == 1
    (alert,) = alerts_of(rig.state_dir, "warning", "risk_limits_adjusted")  # notified
    assert alert["message"] == ("risk_limits_adjusted: tightened_on_poor_performance: "
                                "max_position_fraction 0.2 -> 0.128"), alert["message"]
    history = read_json(tmp_path / "state" / "risk" / "limits.json")["history"]
    assert history[-1]["reason"] == "tightened_on_poor_performance"
    # The trade step of that cycle marked the newest bar: one more equity point to judge. After
    # that no new bar arrives, so the same evidence is never judged twice.
    rig.once()
    judged = len(audit_records(rig.state_dir, "risk_limits_adjusted"))
    third = rig.once()
    assert step_data(third, "risk")["outcome"] == "no_new_observations"
    assert len(audit_records(rig.state_dir, "risk_limits_adjusted")) == judged


def test_auto_adjustment_off_keeps_the_config_limits(tmp_path: Path) -> None:
    rig = Rig(tmp_path, model=False, risk=SMALL_WINDOW,
              headless={"enable_auto_risk_adjustment": False})
    seed_equity(rig, [100_000.0 * (1 - 0.02 * i) for i in range(10)])
    summary = rig.once()
    assert step_data(summary, "risk")["max_position_fraction"] == 0.2
    assert audit_records(rig.state_dir, "risk_limits_adjusted") == []


def test_supervised_expansion_waits_for_approve_by_cli(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    rig = Rig(tmp_path, model=False, mode="supervised", risk=SMALL_WINDOW)
    seed_equity(rig, [100_000.0 * (1 + 0.01 * i + 0.002 * (i % 2)) for i in range(10)],
                winning_trades=4)
    summary = rig.once()
    risk = step_data(summary, "risk")
    assert risk["outcome"] == "pending" and risk["pending_id"] == "risk-1"
    assert risk["max_position_fraction"] == 0.2
    assert "risk_change_pending" in audit_actions(rig.state_dir)
    (pending,) = alerts_of(rig.state_dir, "warning", "risk_change_pending")
    assert pending["message"].endswith("(waits for --approve risk-1)"), pending["message"]
    assert "risk-1" in operator.render_status(operator.status(rig.loaded))
    assert cli.main([str(rig.config), "--approve", "risk-9"]) == 2
    assert cli.main([str(rig.config), "--approve", "risk-1"]) == 0
    assert "approved" in capsys.readouterr().out
    summary = rig.once()
    assert step_data(summary, "risk")["max_position_fraction"] == pytest.approx(0.2 * 1.03)
    (change,) = audit_records(rig.state_dir, "risk_limits_adjusted")
    assert change["reason"] == "expansion_approved_by_operator"
    assert "risk_change_approved_by_operator" in audit_actions(rig.state_dir)
    assert not list((tmp_path / "state" / "risk" / "decisions").glob("*.json"))


def test_status_shows_positions_equity_drawdown_and_limits_against_ceilings(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path)
    rig.once()
    rig.grow(201)
    rig.once()
    text = operator.render_status(operator.status(rig.loaded))
    assert "paper equity:" in text and "drawdown" in text
    for symbol in rig.ledger().positions:
        assert f"  {symbol}" in text
    assert "max_position_fraction" in text and "ceiling 0.3" in text
    assert "max_notional_per_symbol" in text and "ceiling 500000" in text
    assert "not built yet:        nothing" in text or "risk" not in text.split("not built")[-1]
    data = json.loads(msgspec.json.encode(operator.status(rig.loaded)))
    assert data["paper"]["equity"] > 0 and data["risk"]["limits"][0]["ceiling"] == 0.3


def test_the_supervisor_reports_limits_equity_drawdown_and_trades_in_telemetry(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path)
    sup = rig.supervisor()
    try:
        rig.cycle(sup)
        rig.grow(201)
        summary = rig.cycle(sup)
        snap = sup.telemetry.snapshot()
    finally:
        sup.stop()
    trade = step_data(summary, "trade")
    assert snap.equity == trade["equity"] and snap.drawdown == trade["drawdown"]
    assert snap.trades_executed == trade["fills"] > 0
    assert snap.risk_limits == {"max_position_fraction": 0.2,
                                "max_notional_per_symbol": 100_000.0, "max_gross_exposure": 1.0}
