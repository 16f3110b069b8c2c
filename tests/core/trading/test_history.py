"""#18: the ledger's bounded history, pure: the fill window (split_history) and the per-bar applied
ids (forget_applied) change nothing a paper run does: same fills, same account, no id twice."""

from __future__ import annotations

import math
from collections.abc import Mapping

import msgspec
from _support.frames_support import bar_arrays
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from aistock_actors.core.risk.policy import RiskLimits
from aistock_actors.core.trading.costs import CostModel
from aistock_actors.core.trading.cycle import (
    BarArrays,
    advance,
    new_bars,
    plan_cycle,
    signal_weights,
    track_model,
)
from aistock_actors.core.trading.history import (
    ARCHIVE_BATCH,
    RECENT_FILLS,
    fill_count,
    split_history,
)
from aistock_actors.core.trading.ledger import (
    Fill,
    LedgerState,
    Order,
    Position,
    ledger_equity,
    new_ledger,
    performance_snapshot,
    reconcile,
)

DAY = 86_400 * 10**9
SYMBOLS = ("A", "B", "C")
COSTS = CostModel(commission_rate=0.001, half_spread_bps=2.0, impact_bps=10.0)
LIMITS = RiskLimits(max_position_fraction=0.3, max_notional_per_symbol=1e6, max_gross_exposure=1.0)



def _cycle(state: LedgerState, data: Mapping[str, BarArrays], directions: tuple[int, ...],
           *, share: float) -> tuple[LedgerState, list[Fill], list[str]]:
    """One trade step as the PaperTrader runs it: fill + mark, then plan on the newest bar."""
    bars = new_bars(data, state.as_of_ns)
    adv = advance(state, bars, COSTS, halted=lambda: False, limits=LIMITS,
                  max_volume_share=share, remainder_policy="carry")
    assert adv.report.duplicates == []
    weights = signal_weights(dict(zip(SYMBOLS, directions, strict=True)), LIMITS)
    planned, fresh = plan_cycle(track_model(adv.state, "m"), weights, bars.latest_closes,
                                min_order_notional=1.0)
    return planned, adv.fills, [o.order_id for o in fresh]


def _cancel_open(state: LedgerState) -> LedgerState:
    """A halt's freeze (PaperBook.apply_halt_action): the open orders are cancelled, applied."""
    ids = [o.order_id for o in state.open_orders]
    return msgspec.structs.replace(
        state, open_orders=[], applied_order_ids=[*state.applied_order_ids, *ids])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    days=st.lists(
        st.tuples(
            st.tuples(*(st.integers(-1, 1),) * 3),  # directions
            st.tuples(*(st.floats(0.8, 1.25),) * 3),  # price moves
            st.tuples(*(st.booleans(),) * 3),  # which symbols' bars arrived (late bars)
            st.sampled_from(["trade", "replan", "halt_then_replan"]),
        ),
        min_size=2, max_size=24,
    ),
    share=st.floats(0.05, 1.0),
)
def test_bounded_history_changes_no_fill_and_never_fills_an_id_twice(
    days: list[tuple[tuple[int, ...], tuple[float, ...], tuple[bool, ...], str]], share: float,
) -> None:
    """The production ledger (applied ids forgotten once ``as_of`` moves, fills beyond the window
    moved out) against a reference that keeps every applied id and every fill forever: the same
    fills, the same account, the same risk inputs; no order id fills twice over the whole run,
    and no id once applied is ever planned again."""
    rows: dict[str, list[tuple[int, float, float, float]]] = {s: [] for s in SYMBOLS}
    price = {"A": 100.0, "B": 20.0, "C": 5.0}
    bounded = reference = new_ledger(1e6)
    ever_applied: set[str] = set()
    filled: list[str] = []
    archived: list[Fill] = []
    for day, (directions, moves, arrived, action) in enumerate(days, start=1):
        for symbol, move, came in zip(SYMBOLS, moves, arrived, strict=True):
            if came or day == 1:
                open_ = price[symbol]
                price[symbol] *= move
                rows[symbol].append((day, open_, price[symbol], 1e4))
        data = bar_arrays(rows)
        bounded, fills, fresh = _cycle(bounded, data, directions, share=share)
        reference, ref_fills, ref_fresh = _cycle(reference, data, directions, share=share)
        if action != "trade":  # a second plan against the same bar (a model activated since)
            cancelled = {o.order_id for o in bounded.open_orders}
            if action == "halt_then_replan":
                bounded, reference = _cancel_open(bounded), _cancel_open(reference)
            bounded, _, again = _cycle(bounded, data, directions, share=share)
            reference, _, ref_again = _cycle(reference, data, directions, share=share)
            assert not cancelled & set(again)  # open or cancelled: never planned twice
            fresh, ref_fresh = fresh + again, ref_fresh + ref_again
        assert fills == ref_fills and fresh == ref_fresh
        assert not ever_applied & set(fresh)
        filled += [f.order_id for f in fills]
        ever_applied |= set(reference.applied_order_ids)
        # the reference never forgets: put back every id the bounded ledger dropped
        reference = msgspec.structs.replace(
            reference, applied_order_ids=sorted(ever_applied | set(reference.applied_order_ids)))
        bounded, moved = split_history(bounded, keep_closing=5, recent=3, batch=2)
        archived += moved
        assert reconcile(bounded) == [] and reconcile(reference) == []
        assert [*archived, *bounded.fills] == reference.fills
        assert fill_count(bounded) == len(reference.fills)
        assert math.isclose(ledger_equity(bounded), ledger_equity(reference), rel_tol=1e-12)
        assert bounded.positions == reference.positions
        assert bounded.open_orders == reference.open_orders
        assert performance_snapshot(bounded, 5) == performance_snapshot(reference, 5)
        assert len(bounded.fills) <= 3 + 2
    assert len(filled) == len(set(filled))
    event(f"fills archived: {'some' if archived else 'none'}")


def _fill(i: int, *, closing: bool) -> Fill:
    qty = -1.0 if closing else 2.0
    return Fill(order_id=f"o{i}", symbol="A", quantity=qty, price=10.0, reference_price=10.0,
                decision_price=10.0, commission=0.01, realised_pnl=0.5 if closing else 0.0,
                closed_quantity=1.0 if closing else 0.0, predicted_cost_bps=1.0,
                realised_cost_bps=1.0, timestamp=f"2024-01-{i % 28 + 1:02d}",
                position_after=0.0, equity_after=0.0)


def test_fills_move_out_only_in_batches_and_the_base_keeps_the_account() -> None:
    state = new_ledger(1_000.0)
    fills = [_fill(i, closing=i % 2 == 1) for i in range(RECENT_FILLS + ARCHIVE_BATCH)]
    state = msgspec.structs.replace(state, fills=fills)
    same, moved = split_history(state, keep_closing=3)
    assert same is state and moved == []  # exactly a batch beyond the window: nothing moves yet
    state = msgspec.structs.replace(state, fills=[*fills, _fill(99, closing=True)])
    kept, moved = split_history(state, keep_closing=3)
    assert len(moved) == ARCHIVE_BATCH + 1 and moved == state.fills[: ARCHIVE_BATCH + 1]
    assert kept.fills == state.fills[ARCHIVE_BATCH + 1 :] and kept.fills_archived == len(moved)
    assert fill_count(kept) == fill_count(state)
    base = kept.history_base
    assert base is not None and base.closing_pnl == [0.49] * 3
    spent = sum(f.quantity * f.price + f.commission for f in moved)
    assert math.isclose(base.cash, 1_000.0 - spent)
    assert base.positions["A"].quantity == sum(f.quantity for f in moved)
    assert performance_snapshot(kept, 3) == performance_snapshot(state, 3)


def test_reconcile_names_a_fill_whose_order_is_still_open_and_an_archive_without_base() -> None:
    fill = _fill(0, closing=False)
    state = msgspec.structs.replace(
        new_ledger(1_000.0), cash=1_000.0 - 20.01, commissions_paid=0.01, fills=[fill],
        positions={"A": Position(symbol="A", quantity=2.0, entry_price=10.0, last_price=10.0)})
    assert reconcile(state) == []
    still_open = Order(order_id="o0", symbol="A", quantity=2.0, decision_price=10.0,
                       cycle_id="2024-01-01", model_id="m")
    assert reconcile(msgspec.structs.replace(state, open_orders=[still_open])) == [
        "fill of o0: its order is still open"]
    assert reconcile(msgspec.structs.replace(state, fills_archived=5)) == [
        "fills_archived 5 without a matching history_base"]
