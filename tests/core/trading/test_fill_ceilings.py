"""#17: the hard ceilings hold AT THE FILL PRICE (Hypothesis): whatever the orders, prices, volumes
and costs, no fill that adds exposure leaves a position above $500,000 or 30 % of equity when
valued at the price it was filled at."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aistock_actors.core.risk.ceilings import (
    HARD_CEILING_NOTIONAL_CAP,
    HARD_CEILING_POSITION_FRACTION,
)
from aistock_actors.core.risk.policy import RiskLimits
from aistock_actors.core.trading.costs import CostModel
from aistock_actors.core.trading.execution import execute_orders
from aistock_actors.core.trading.ledger import new_ledger
from aistock_actors.core.trading.orders import Bar, Order

SYMBOLS = ("AAA", "BBB", "CCC")
prices = st.floats(0.5, 5_000.0)
step = st.tuples(
    st.dictionaries(st.sampled_from(SYMBOLS), prices, min_size=1),
    st.lists(st.tuples(st.sampled_from(SYMBOLS), st.floats(-1e6, 1e6)), max_size=4),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cash=st.floats(1e5, 2e7),
    steps=st.lists(step, min_size=1, max_size=6),
    costs=st.builds(CostModel, commission_rate=st.floats(0.0, 0.01),
                    half_spread_bps=st.floats(0.0, 100.0), impact_bps=st.floats(0.0, 2_000.0)),
    volume=st.floats(1e3, 1e9),
    limits=st.builds(RiskLimits, max_position_fraction=st.floats(0.01, 0.9),
                     max_notional_per_symbol=st.floats(1e4, 5e6)),
)
def test_no_fill_adding_exposure_passes_a_ceiling_at_its_fill_price(
    cash: float, steps: list[tuple[dict[str, float], list[tuple[str, float]]]],
    costs: CostModel, volume: float, limits: RiskLimits,
) -> None:
    state = new_ledger(cash)
    for n, (opens, wanted) in enumerate(steps):
        bars = {s: Bar(open=p, high=p, low=p, close=p, volume=volume) for s, p in opens.items()}
        orders = [Order(order_id=f"o{n}.{k}", symbol=s, quantity=q, decision_price=0.0,
                        cycle_id=str(n), model_id="m") for k, (s, q) in enumerate(wanted)]
        before = {s: p.quantity for s, p in state.positions.items()}
        state, fills, _ = execute_orders(state, orders, bars, costs, timestamp=f"t{n}",
                                         halted=lambda: False, max_volume_share=1.0,
                                         limits=limits)
        for fill in fills:
            held_before = before.get(fill.symbol, 0.0)
            before[fill.symbol] = fill.position_after
            if abs(fill.position_after) <= abs(held_before):
                continue  # reducing is always allowed, even above a limit after a price move
            notional = abs(fill.position_after) * fill.price
            assert notional <= HARD_CEILING_NOTIONAL_CAP * (1 + 1e-9), (fill, notional)
            assert notional <= limits.max_notional_per_symbol * (1 + 1e-9) + 1e-6, fill
            if fill.equity_after > 0:
                weight = notional / fill.equity_after
                assert weight <= HARD_CEILING_POSITION_FRACTION + 1e-9, (fill, weight)
