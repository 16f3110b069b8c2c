"""Paper ledger (T3): last-price weights, idempotent fills, volume caps, halts and ceilings."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aistock_actors.core.risk.ceilings import (
    HARD_CEILING_NOTIONAL_CAP,
    HARD_CEILING_POSITION_FRACTION,
)
from aistock_actors.core.risk.policy import RiskLimits, cap_target_weights, clamp_to_ceilings
from aistock_actors.core.trading.costs import CostCalibratorState, CostModel, record_fill
from aistock_actors.core.trading.ledger import (
    Bar,
    ExecutionReport,
    Fill,
    LedgerState,
    Order,
    Position,
    RemainderPolicy,
    execute_orders,
    flatten_orders,
    ledger_equity,
    mark_to_market,
    new_ledger,
    order_id,
    performance_snapshot,
    plan_orders,
    portfolio_weights,
    reconcile,
)

FREE = CostModel(commission_rate=0.0, half_spread_bps=0.0, impact_bps=0.0)
MODEL = CostModel(commission_rate=0.001, half_spread_bps=5.0, impact_bps=50.0)


def bar(open_: float, volume: float = 1e9, close: float | None = None) -> Bar:
    last = open_ if close is None else close
    return Bar(open=open_, high=max(open_, last), low=min(open_, last), close=last, volume=volume)


def never() -> bool:
    return False


def run(
    state: LedgerState,
    orders: list[Order],
    bars: Mapping[str, Bar],
    timestamp: str,
    *,
    model: CostModel = FREE,
    halted: Callable[[], bool] = never,
    policy: RemainderPolicy = "carry",
    limits: RiskLimits | None = None,
) -> tuple[LedgerState, list[Fill], ExecutionReport]:
    return execute_orders(
        state,
        orders,
        bars,
        model,
        timestamp=timestamp,
        halted=halted,
        remainder_policy=policy,
        limits=limits,
    )


def bought(weights: dict[str, float], prices: dict[str, float]) -> LedgerState:
    state = new_ledger(100_000.0, "t0")
    orders = plan_orders(state, weights, prices, cycle_id="c1", model_id="m1")
    state, _, _ = run(state, orders, {s: bar(p) for s, p in prices.items()}, "t1")
    return state


def test_order_ids_are_deterministic_and_distinct() -> None:
    assert order_id("c1", "AAA", "m1") == order_id("c1", "AAA", "m1")
    ids = {order_id("c1", "AAA", "m1"), order_id("c2", "AAA", "m1"), order_id("c1", "AA", "Am1")}
    assert len(ids) == 3


def test_weights_use_last_price_after_a_price_move() -> None:
    state = bought({"AAA": 0.2}, {"AAA": 100.0})
    assert state.positions["AAA"].quantity == pytest.approx(200.0)
    state, warnings = mark_to_market(state, {"AAA": 150.0}, "t2")
    assert warnings == []
    weights, warnings = portfolio_weights(state)
    assert warnings == []
    assert state.positions["AAA"].entry_price == pytest.approx(100.0)
    assert weights["AAA"] == pytest.approx(200 * 150.0 / 110_000.0)
    assert state.equity_curve[-1] == ("t2", pytest.approx(110_000.0))


def test_position_without_last_price_is_skipped_not_priced_at_entry() -> None:
    stale = Position(symbol="OLD", quantity=10.0, entry_price=50.0, last_price=None)
    state = msgspec.structs.replace(new_ledger(1_000.0), positions={"OLD": stale})
    weights, warnings = portfolio_weights(state)
    assert weights == {}
    assert warnings == ["missing_last_price:OLD: skipped from weights"]
    assert any("no valid last_price" in p for p in reconcile(state))


def test_missing_price_keeps_the_most_recent_last_price() -> None:
    state = bought({"AAA": 0.2}, {"AAA": 100.0})
    state, _ = mark_to_market(state, {"AAA": 120.0}, "t2")
    state, warnings = mark_to_market(state, {}, "t3")
    assert state.positions["AAA"].last_price == 120.0
    assert warnings == ["no_price:AAA: kept last_price from t2"]


def test_plan_orders_trades_the_difference_and_sells_dropped_symbols() -> None:
    state = bought({"AAA": 0.2, "BBB": 0.1}, {"AAA": 100.0, "BBB": 50.0})
    orders = plan_orders(
        state, {"AAA": 0.3, "CCC": 0.1}, {"AAA": 100.0, "BBB": 50.0}, cycle_id="c2", model_id="m"
    )
    by_symbol = {o.symbol: o for o in orders}
    assert set(by_symbol) == {"AAA", "BBB"}  # CCC has no price: left alone
    assert by_symbol["AAA"].quantity == pytest.approx(100.0)
    assert by_symbol["BBB"].quantity == pytest.approx(-200.0)
    assert orders[0].symbol == "BBB"  # reducing orders first
    assert by_symbol["AAA"].order_id == order_id("c2", "AAA", "m")


def test_fill_at_next_open_with_costs_and_commission() -> None:
    state = new_ledger(100_000.0)
    orders = plan_orders(state, {"AAA": 0.1}, {"AAA": 100.0}, cycle_id="c1", model_id="m")
    state, fills, _ = run(state, orders, {"AAA": bar(101.0, volume=1e6)}, "t1", model=MODEL)
    (fill,) = fills
    expected = MODEL.fill_price("buy", 101.0, 100 * 101.0, 1e6 * 101.0)
    assert fill.price == pytest.approx(expected)
    assert fill.price > 101.0
    assert fill.commission == pytest.approx(0.001 * 100 * fill.price)
    assert state.cash == pytest.approx(100_000.0 - 100 * fill.price - fill.commission)
    assert state.positions["AAA"].last_price == 101.0
    assert reconcile(state) == []


def test_a_replayed_order_id_never_fills_twice() -> None:
    state = new_ledger(100_000.0)
    orders = plan_orders(state, {"AAA": 0.2}, {"AAA": 100.0}, cycle_id="c1", model_id="m")
    bars = {"AAA": bar(100.0)}
    once, fills, _ = run(state, orders, bars, "t1")
    assert len(fills) == 1
    twice, fills, report = run(once, orders, bars, "t1")
    assert fills == []
    assert report.duplicates == [orders[0].order_id]
    assert twice.positions == once.positions
    assert twice.cash == once.cash
    doubled, fills, _ = run(state, [*orders, *orders], bars, "t1")
    assert len(fills) == 1
    assert reconcile(twice) == [] and reconcile(doubled) == []


def test_partial_fills_honour_the_volume_cap_and_carry() -> None:
    state = new_ledger(100_000.0)
    orders = plan_orders(state, {"AAA": 0.25}, {"AAA": 100.0}, cycle_id="c1", model_id="m")
    thin = {"AAA": bar(100.0, volume=1_000.0)}
    state, fills, report = run(state, orders, thin, "t1")
    assert [f.quantity for f in fills] == [pytest.approx(100.0)]
    assert report.partially_filled == [orders[0].order_id]
    (child,) = state.open_orders
    assert child.quantity == pytest.approx(150.0)
    assert report.carried == [child.order_id]
    replay, fills, report = run(state, [], thin, "t1")
    assert fills == [] and report.deferred == [child.order_id]
    assert replay.open_orders == state.open_orders
    assert plan_orders(state, {"AAA": 0.25}, {"AAA": 100.0}, cycle_id="c2", model_id="m") == []
    state, fills, _ = run(state, [], thin, "t2")
    state, fills, _ = run(state, [], thin, "t3")
    assert fills[0].quantity == pytest.approx(50.0)
    assert state.open_orders == []
    assert state.positions["AAA"].quantity == pytest.approx(250.0)
    assert reconcile(state) == []


def test_partial_fill_remainder_can_be_cancelled() -> None:
    state = new_ledger(100_000.0)
    orders = plan_orders(state, {"AAA": 0.25}, {"AAA": 100.0}, cycle_id="c1", model_id="m")
    state, fills, report = run(state, orders, {"AAA": bar(100.0, 1_000.0)}, "t1", policy="cancel")
    assert fills[0].quantity == pytest.approx(100.0)
    assert state.open_orders == []
    assert report.cancelled == [orders[0].order_id]


def test_no_bar_means_no_fill() -> None:
    state = new_ledger(100_000.0)
    orders = plan_orders(state, {"AAA": 0.1}, {"AAA": 100.0}, cycle_id="c1", model_id="m")
    state, fills, report = run(state, orders, {}, "t1", policy="cancel")
    assert fills == [] and report.cancelled == [orders[0].order_id]
    assert report.warnings == ["no_volume_or_bar:AAA"]


def test_a_halt_set_between_two_fills_stops_the_second() -> None:
    state = new_ledger(100_000.0)
    prices = {"AAA": 100.0, "BBB": 50.0}
    orders = plan_orders(state, {"AAA": 0.1, "BBB": 0.1}, prices, cycle_id="c1", model_id="m")
    calls: list[int] = []

    def halted() -> bool:
        calls.append(1)
        return len(calls) >= 2  # the flag is set right after the first fill

    thin = {s: bar(p, volume=100.0) for s, p in prices.items()}  # partial: carries AAA
    state, fills, report = run(state, orders, thin, "t1", halted=halted)
    assert len(calls) == 2
    assert [f.symbol for f in fills] == ["AAA"]
    assert report.halted is True
    assert orders[1].order_id in report.cancelled
    assert state.open_orders == []
    assert "BBB" not in state.positions
    assert reconcile(state) == []


def test_halted_from_the_start_fills_nothing() -> None:
    state = new_ledger(100_000.0)
    orders = plan_orders(state, {"AAA": 0.1}, {"AAA": 100.0}, cycle_id="c1", model_id="m")
    after, fills, report = run(state, orders, {"AAA": bar(100.0)}, "t1", halted=lambda: True)
    assert fills == [] and report.halted
    assert after.cash == state.cash and after.positions == {}


def test_limits_are_enforced_again_at_the_fill_price() -> None:
    state = new_ledger(100_000.0)
    limits = RiskLimits(max_position_fraction=0.3, max_notional_per_symbol=500_000.0)
    weights = cap_target_weights({"AAA": 0.9}, 100_000.0, {"AAA": 100.0}, limits)
    orders = plan_orders(state, weights, {"AAA": 100.0}, cycle_id="c1", model_id="m")
    state, fills, report = run(state, orders, {"AAA": bar(130.0)}, "t1", limits=limits)
    assert report.capped_by_limits == [orders[0].order_id]
    assert report.cancelled == [orders[0].order_id]
    assert fills[0].position_after * 130.0 <= 0.3 * fills[0].equity_after
    assert fills[0].position_after * 130.0 == pytest.approx(0.3 * fills[0].equity_after)


def test_hard_notional_ceiling_applies_without_limits() -> None:
    state = new_ledger(10_000_000.0)
    orders = plan_orders(state, {"AAA": 0.3}, {"AAA": 100.0}, cycle_id="c1", model_id="m")
    state, fills, _ = run(state, orders, {"AAA": bar(100.0)}, "t1")
    assert fills[0].position_after * 100.0 == pytest.approx(HARD_CEILING_NOTIONAL_CAP)
    assert fills[0].position_after * 100.0 <= HARD_CEILING_NOTIONAL_CAP


def test_flatten_closes_everything_and_cancels_open_orders() -> None:
    state = bought({"AAA": 0.2, "BBB": 0.1}, {"AAA": 100.0, "BBB": 50.0})
    more = plan_orders(state, {"AAA": 0.3, "BBB": 0.1}, {"AAA": 100.0}, cycle_id="c2", model_id="m")
    state, _, _ = run(state, more, {"AAA": bar(100.0, volume=10.0)}, "t2")
    assert state.open_orders
    state, orders = flatten_orders(state, {"AAA": 100.0}, cycle_id="c3")
    assert state.open_orders == []
    assert {o.reason for o in orders} == {"flatten"}
    bars = {"AAA": bar(99.0), "BBB": bar(51.0)}
    state, _, report = run(state, orders, bars, "t3")
    assert len(report.filled) == 2
    assert state.positions == {}
    assert ledger_equity(state) == pytest.approx(state.cash)
    assert reconcile(state) == []
    assert msgspec.json.decode(msgspec.json.encode(state), type=LedgerState) == state


def test_price_improvement_flows_unclipped_to_the_calibrator() -> None:
    state = new_ledger(100_000.0)
    orders = plan_orders(state, {"AAA": 0.1}, {"AAA": 100.0}, cycle_id="c1", model_id="m")
    _, (fill,), _ = run(state, orders, {"AAA": bar(98.0)}, "t1", model=MODEL)
    assert fill.realised_cost_bps < 0.0
    calibrator, note = record_fill(
        CostCalibratorState(), "AAA", fill.predicted_cost_bps, fill.realised_cost_bps, 0.2
    )
    assert note.price_improvement
    assert calibrator.stats["AAA"].ewma_surprise_bps == pytest.approx(
        fill.realised_cost_bps - fill.predicted_cost_bps
    )


def test_performance_snapshot_feeds_the_risk_policy() -> None:
    state = bought({"AAA": 0.2}, {"AAA": 100.0})
    state, _ = mark_to_market(state, {"AAA": 100.0}, "t1")
    for i, price in enumerate([104.0, 101.0, 108.0, 110.0]):
        state, _ = mark_to_market(state, {"AAA": price}, f"t{i + 2}")
    sell = plan_orders(state, {}, {"AAA": 110.0}, cycle_id="c9", model_id="m")
    state, _, _ = run(state, sell, {"AAA": bar(110.0)}, "t9")
    snap = performance_snapshot(state, window=10)
    assert snap.observations == 4
    assert snap.win_rate == 1.0
    assert snap.sharpe > 0.0
    assert snap.drawdown == pytest.approx(1 - 100_200.0 / 100_800.0)
    assert state.realised_pnl == pytest.approx(200 * 10.0)


def test_reconcile_detects_tampering() -> None:
    state = bought({"AAA": 0.2}, {"AAA": 100.0})
    assert reconcile(state) == []
    assert reconcile(msgspec.structs.replace(state, cash=state.cash + 1.0))
    assert reconcile(msgspec.structs.replace(state, fills=[*state.fills, state.fills[0]]))
    assert reconcile(msgspec.structs.replace(state, positions={}))


SYMBOLS = ("A", "B", "C")
triples = st.tuples(*(st.floats(0.0, 1.0),) * 3)


def _independent_equity(cash: float, qty: dict[str, float], marks: dict[str, float]) -> float:
    return cash + sum(q * marks[s] for s, q in qty.items())


def _assert_fills_within_ceilings(
    before: LedgerState, fills: list[Fill], limits: RiskLimits
) -> None:
    """Replay the fills independently; every exposure-adding fill must respect the ceilings."""
    eff = clamp_to_ceilings(limits)
    cash = before.cash
    qty = {s: p.quantity for s, p in before.positions.items()}
    marks = {s: p.last_price or 0.0 for s, p in before.positions.items()}
    for fill in fills:
        old = qty.get(fill.symbol, 0.0)
        cash -= fill.quantity * fill.price + fill.commission
        qty[fill.symbol] = old + fill.quantity
        marks[fill.symbol] = fill.reference_price
        new = qty[fill.symbol]
        if old * new >= 0.0 and abs(new) <= abs(old):
            continue  # a pure reduction is always allowed
        equity = _independent_equity(cash, qty, marks)
        notional = abs(new) * fill.reference_price
        assert notional <= HARD_CEILING_NOTIONAL_CAP * (1 + 1e-9)
        assert notional <= eff.max_notional_per_symbol * (1 + 1e-9) + 1e-9
        assert notional <= HARD_CEILING_POSITION_FRACTION * equity * (1 + 1e-9) + 1e-6
        assert notional <= eff.max_position_fraction * equity * (1 + 1e-9) + 1e-6


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cash=st.floats(1e3, 5e7),
    limits=st.builds(
        RiskLimits,
        max_position_fraction=st.floats(0.0, 2.0),
        max_notional_per_symbol=st.floats(0.0, 2e6),
        max_gross_exposure=st.floats(0.0, 3.0),
    ),
    model=st.builds(
        CostModel,
        commission_rate=st.floats(0.0, 0.01),
        half_spread_bps=st.floats(0.0, 50.0),
        impact_bps=st.floats(0.0, 500.0),
    ),
    steps=st.lists(
        st.tuples(
            st.tuples(*(st.floats(-0.5, 1.0),) * 3),
            st.tuples(*(st.floats(0.5, 1.6),) * 3),
            st.tuples(*(st.floats(0.7, 1.4),) * 3),
            st.tuples(*(st.floats(0.0, 1e6),) * 3),
        ),
        min_size=1,
        max_size=8,
    ),
    policy=st.sampled_from(["carry", "cancel"]),
)
def test_simulated_run_never_breaches_ceilings_and_always_reconciles(
    cash: float,
    limits: RiskLimits,
    model: CostModel,
    steps: list[tuple[tuple[float, ...], ...]],
    policy: RemainderPolicy,
) -> None:
    closes = {"A": 100.0, "B": 20.0, "C": 5.0}
    state, _ = mark_to_market(new_ledger(cash, "t000"), closes, "t000")
    for i, (targets, gaps, moves, volumes) in enumerate(steps):
        weights = cap_target_weights(
            dict(zip(SYMBOLS, targets, strict=True)), ledger_equity(state), closes, limits
        )
        orders = plan_orders(state, weights, closes, cycle_id=f"c{i}", model_id="m")
        bars = {
            s: bar(closes[s] * g, volume=v, close=closes[s] * g * m)
            for s, g, m, v in zip(SYMBOLS, gaps, moves, volumes, strict=True)
        }
        ts = f"t{i + 1:03d}"
        before = state
        state, fills, _ = run(state, orders, bars, ts, model=model, policy=policy, limits=limits)
        _assert_fills_within_ceilings(before, fills, limits)
        _, replayed, _ = run(state, orders, bars, ts, model=model, policy=policy, limits=limits)
        assert replayed == []
        closes = {s: b.close for s, b in bars.items()}
        state, _ = mark_to_market(state, closes, ts)
        assert reconcile(state) == []
        assert math.isfinite(ledger_equity(state))
    assert msgspec.json.decode(msgspec.json.encode(state), type=LedgerState) == state
