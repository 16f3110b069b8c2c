"""The paper-trading cycle (core/trading.py): the next-bar rule, sizing, drawdown, halt races."""

from __future__ import annotations

import math
import random
import sys
import threading
import time
from collections.abc import Iterator, Mapping

import msgspec
import pytest
from _support.frames_support import bar_arrays as arrays
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aistock_actors.core.data.bars import format_timestamp
from aistock_actors.core.risk.ceilings import (
    HARD_CEILING_NOTIONAL_CAP,
    HARD_CEILING_POSITION_FRACTION,
)
from aistock_actors.core.risk.policy import RiskLimits, cap_target_weights, clamp_to_ceilings
from aistock_actors.core.trading.costs import CostModel
from aistock_actors.core.trading.cycle import (
    BarArrays,
    advance,
    current_drawdown,
    model_returns,
    new_bars,
    plan_cycle,
    rebase_drawdown,
    signal_weights,
    track_model,
)
from aistock_actors.core.trading.execution import execute_orders
from aistock_actors.core.trading.ledger import (
    Bar,
    LedgerState,
    Order,
    ledger_equity,
    new_ledger,
    portfolio_weights,
    reconcile,
)

DAY = 86_400 * 10**9
FREE = CostModel(commission_rate=0.0, half_spread_bps=0.0, impact_bps=0.0)
NEVER = lambda: False  # noqa: E731



def cut(data: Mapping[str, BarArrays], day: int) -> dict[str, BarArrays]:
    """What the bar store held after day ``day`` was ingested."""
    return {s: (ts[ts <= day * DAY], v[ts <= day * DAY]) for s, (ts, v) in data.items()}


def step(state: LedgerState, data: Mapping[str, BarArrays], *, limits: RiskLimits | None = None,
         model: CostModel = FREE, share: float = 1.0, policy: str = "carry"):  # type: ignore[no-untyped-def]
    bars = new_bars(data, state.as_of_ns)
    return bars, advance(state, bars, model, halted=NEVER, limits=limits, max_volume_share=share,
                         remainder_policy=policy)  # type: ignore[arg-type]


def test_first_run_marks_only_the_newest_bar_and_fills_nothing() -> None:
    data = arrays({"A": [(1, 10, 11, 1e6), (2, 11, 12, 1e6)], "B": [(1, 5, 5, 1e6)]})
    bars = new_bars(data, None)
    assert bars.fill_ts is None and bars.fill_bars == {}
    assert bars.marks == [(2 * DAY, {"A": 12.0, "B": 5.0})]
    assert bars.latest_closes == {"A": 12.0}  # B has no bar on the latest day: no decision price


def test_orders_planned_on_a_bar_fill_at_the_next_bars_open_then_every_close_is_marked() -> None:
    data = arrays({"A": [(1, 10, 10, 1e6), (2, 12, 13, 1e6), (3, 13, 15, 1e6), (4, 15, 14, 1e6)]})
    _, adv = step(new_ledger(1_000.0), cut(data, 1))
    state = track_model(adv.state, "m1")
    assert state.as_of == format_timestamp(DAY)
    state, orders = plan_cycle(state, {"A": 0.5}, {"A": 10.0}, min_order_notional=0.0)
    (order,) = orders
    assert order.quantity == pytest.approx(50.0) and order.decision_price == 10.0
    assert state.open_orders == [order] and state.positions == {}
    # The next cycle sees three new bars: the fill uses the FIRST one's open, marks use each close.
    bars, adv = step(state, cut(data, 4))
    assert bars.fill_ts == 2 * DAY
    (fill,) = adv.fills
    assert fill.reference_price == 12.0 and fill.timestamp == format_timestamp(2 * DAY)
    assert fill.realised_cost_bps == pytest.approx(2_000.0)  # vs the 10.0 decision price
    stamps = [format_timestamp(d * DAY) for d in (1, 2, 3, 4)]
    assert [t for t, _ in adv.state.equity_curve] == stamps
    assert adv.state.positions["A"].last_price == 14.0
    assert adv.state.as_of == format_timestamp(4 * DAY) and adv.state.open_orders == []
    # Nothing new: nothing happens. The next plan is against the new bar (new ids), so the filled
    # id can never come back, and the ledger has forgotten it (#18: applied ids are per bar).
    again, adv2 = step(adv.state, cut(data, 4))
    assert again.marks == [] and adv2.fills == [] and adv2.state == adv.state
    _, fresh = plan_cycle(adv.state, {"A": 0.9}, {"A": 14.0}, min_order_notional=0.0)
    assert fresh and fill.order_id not in {o.order_id for o in fresh}
    assert adv.state.applied_order_ids == [] and reconcile(adv.state) == []


def test_a_symbol_without_a_bar_at_the_fill_time_waits_for_its_own_next_bar() -> None:
    """B has no bar on day 2 (a gap): its order decided on day 1 stays open, same id, under
    either remainder policy (it is not a remainder), and fills at B's first bar after day 1."""
    data = arrays({"A": [(1, 10, 10, 1e6), (2, 10, 10, 1e6)],
                   "B": [(1, 5, 5, 1e6), (3, 6, 6, 1e6)]})
    _, adv = step(new_ledger(1_000.0), cut(data, 1))
    state, planned = plan_cycle(adv.state, {"A": 0.2, "B": 0.2}, {"A": 10.0, "B": 5.0},
                                min_order_notional=0.0)
    b_order = next(o for o in planned if o.symbol == "B")
    for policy in ("carry", "cancel"):
        _, waited = step(state, cut(data, 2), policy=policy)
        assert [f.symbol for f in waited.fills] == ["A"]
        assert waited.state.open_orders == [b_order]
        assert waited.report.deferred == [b_order.order_id]
        assert any(w.startswith("late_bar:B") for w in waited.report.warnings)
        _, later = step(waited.state, cut(data, 3), policy=policy)
        (fill,) = later.fills
        assert (fill.order_id, fill.timestamp, fill.reference_price, fill.decision_price) == (
            b_order.order_id, format_timestamp(3 * DAY), 6.0, 5.0)
        assert later.state.open_orders == [] and reconcile(later.state) == []


def staggered(data: Mapping[str, BarArrays], days: Mapping[str, int]) -> dict[str, BarArrays]:
    """The bar store while symbols arrive at different times: ``symbol`` up to ``days[symbol]``."""
    return {s: cut({s: a}, days[s])[s] for s, a in data.items()}


def test_a_late_bar_fills_the_order_at_the_open_of_the_bar_after_its_decision_bar() -> None:
    """The flaky crash test's mechanism, deterministic: the CSVs are rewritten one by one while
    the daemon ingests, so a cycle sees day 2 for A and still day 1 for B. B's order decided on
    day 1 must fill at B's day-2 open (not at day 3 with day 1's close as decision price); B is
    not traded on day 1's stale close; a held B is not closed because its bar is late."""
    flat = [(d, 20, 20, 1e6) for d in (1, 2, 3, 4)]
    data = arrays({"A": [(1, 10, 10, 1e6), (2, 10, 10, 1e6), (3, 11, 12, 1e6), (4, 13, 14, 1e6)],
                   "B": [(1, 5, 5, 1e6), (2, 5, 5, 1e6), (3, 6, 7, 1e6), (4, 8, 9, 1e6)],
                   "C": flat})
    _, adv = step(new_ledger(3_000.0), cut(data, 1))
    state, _ = plan_cycle(adv.state, {"C": 0.2}, {"C": 20.0}, min_order_notional=1.0)
    bars, adv = step(state, cut(data, 2))  # C is held from day 2 on
    state, orders = plan_cycle(adv.state, {"A": 0.2, "B": 0.2, "C": 0.2}, bars.latest_closes,
                               min_order_notional=1.0)
    assert [o.symbol for o in orders] == ["A", "B"] and state.positions["C"].quantity == 30.0
    bars, early = step(state, staggered(data, {"A": 3, "B": 2, "C": 2}))
    assert [f.symbol for f in early.fills] == ["A"]
    assert early.state.as_of == format_timestamp(3 * DAY)
    assert bars.latest_closes == {"A": 12.0}  # no decision on B's or C's stale day-2 close
    after, orders = plan_cycle(early.state, {"A": 0.2}, bars.latest_closes,
                               min_order_notional=1.0)
    assert "C" not in {o.symbol for o in orders}  # held, its bar late: not closed
    assert [o.symbol for o in after.open_orders] == ["B", *(o.symbol for o in orders)]
    _, late = step(after, cut(data, 4))
    b_fill = next(f for f in late.fills if f.symbol == "B")
    assert (b_fill.timestamp, b_fill.reference_price, b_fill.decision_price) == (
        format_timestamp(3 * DAY), 6.0, 5.0)  # B's day-3 open, decided on B's day-2 close
    assert late.state.positions["C"].quantity == 30.0
    assert late.state.open_orders == [] and reconcile(late.state) == []


@settings(max_examples=60, deadline=None)
@given(lags=st.lists(st.lists(st.booleans(), min_size=3, max_size=3), min_size=6, max_size=6),
       signs=st.lists(st.sampled_from([-1.0, 0.0, 1.0]), min_size=18, max_size=18))
def test_with_any_late_bars_every_fill_is_at_the_bar_right_after_its_decision_bar(
    lags: list[list[bool]], signs: list[float]
) -> None:
    """Safety property of the late-bar rule: whichever bars arrive a cycle late, every order is
    decided on its symbol's close at the decision bar and fills at the open of that symbol's very
    next bar; nothing is lost (all orders fill once the data is complete)."""
    names = ("A", "B", "C")
    data = arrays({s: [(d, 10 + d + k, 10.5 + d + k, 1e6) for d in range(1, 9)]
                   for k, s in enumerate(names)})
    state, planned = new_ledger(10_000.0), {}
    seen = dict.fromkeys(names, 0)
    for cycle, late in enumerate(lags, start=2):  # day `cycle` is out; a late symbol lags by one
        seen = {s: max(seen[s], cycle - int(lag)) for s, lag in zip(names, late, strict=True)}
        bars, adv = step(state, staggered(data, seen))
        weights = {s: 0.2 * signs[(cycle - 2) * 3 + i] for i, s in enumerate(names)
                   if s in bars.latest_closes}
        state, orders = plan_cycle(adv.state, weights, bars.latest_closes,
                                   min_order_notional=1.0)
        planned |= {o.order_id: o for o in orders}
    _, final = step(state, data)
    fills = final.state.fills
    assert final.state.open_orders == [] and reconcile(final.state) == []
    assert {f.order_id for f in fills} == set(planned)
    for fill in fills:
        order = planned[fill.order_id]
        ts, values = data[fill.symbol]
        decided = next(i for i, t in enumerate(ts) if format_timestamp(int(t)) == order.cycle_id)
        assert order.decision_price == values[decided, 3]
        assert fill.timestamp == format_timestamp(int(ts[decided + 1]))
        assert fill.reference_price == values[decided + 1, 0]


def test_weights_after_a_price_move_use_the_last_price_never_the_entry_price() -> None:
    data = arrays({"A": [(1, 10, 10, 1e6), (2, 10, 10, 1e6), (3, 20, 20, 1e6)]})
    _, adv = step(new_ledger(1_000.0), cut(data, 1))
    state, _ = plan_cycle(adv.state, {"A": 0.25}, {"A": 10.0}, min_order_notional=0.0)
    _, adv = step(state, cut(data, 2))
    _, adv = step(adv.state, cut(data, 3))
    pos = adv.state.positions["A"]
    assert pos.entry_price == 10.0 and pos.last_price == 20.0
    weights, _ = portfolio_weights(adv.state)
    assert weights["A"] == pytest.approx(25 * 20.0 / 1_250.0)  # at entry it would be 0.2


def test_signal_weights_are_fixed_per_name_like_the_backtest() -> None:
    limits = RiskLimits(max_position_fraction=0.2, max_gross_exposure=1.0)
    assert signal_weights({"A": 1, "B": -1, "C": 0}, limits) == {"A": 0.2, "B": -0.2}
    many = signal_weights({f"S{i}": 1 for i in range(8)}, limits)
    assert set(many.values()) == {0.125}
    # The weight depends on the universe (8 symbols), not on how many are signalled: a held
    # position keeps its size when another signal goes away.
    fewer = signal_weights({**{f"S{i}": 0 for i in range(7)}, "S7": 1}, limits)
    assert fewer == {"S7": 0.125}
    loose = RiskLimits(max_position_fraction=0.9, max_gross_exposure=3.0)
    assert signal_weights({"A": 1}, loose) == {"A": HARD_CEILING_POSITION_FRACTION}


def test_drawdown_from_the_running_peak_and_rebase() -> None:
    curve = [("d1", 100.0), ("d2", 120.0), ("d3", 90.0)]
    state = msgspec.structs.replace(new_ledger(100.0), equity_curve=curve)
    assert current_drawdown(state).value == pytest.approx(0.25)
    assert current_drawdown(rebase_drawdown(state)).value == 0.0


def test_model_returns_start_when_the_model_started_trading() -> None:
    state = msgspec.structs.replace(new_ledger(100.0), equity_curve=[("d1", 100.0), ("d2", 110.0)])
    state = track_model(state, "m1")
    assert model_returns(state) == []
    state = msgspec.structs.replace(state, equity_curve=[*state.equity_curve, ("d3", 121.0)])
    assert model_returns(state) == [pytest.approx(0.1)]
    assert track_model(state, "m1") is state
    assert track_model(state, "m2").model_since == 2


# --- a whole simulated run through the PaperTrader's own code path ---------------------------

SYMBOLS = ("A", "B", "C")


def _check_fill_ceilings(before: LedgerState, state: LedgerState, limits: RiskLimits) -> None:
    """Replay the new fills independently: no exposure-adding fill breaches a ceiling."""
    eff = clamp_to_ceilings(limits)
    cash = before.cash
    qty = {s: p.quantity for s, p in before.positions.items()}
    marks = {s: p.last_price or 0.0 for s, p in before.positions.items()}
    for fill in state.fills[len(before.fills):]:
        old = qty.get(fill.symbol, 0.0)
        cash -= fill.quantity * fill.price + fill.commission
        qty[fill.symbol] = new = old + fill.quantity
        marks[fill.symbol] = fill.reference_price
        if old * new >= 0.0 and abs(new) <= abs(old):
            continue
        equity = cash + sum(q * marks[s] for s, q in qty.items())
        notional = abs(new) * fill.reference_price
        assert notional <= HARD_CEILING_NOTIONAL_CAP * (1 + 1e-9)
        assert notional <= eff.max_notional_per_symbol * (1 + 1e-9) + 1e-9
        assert notional <= HARD_CEILING_POSITION_FRACTION * equity * (1 + 1e-9) + 1e-6
        assert notional <= eff.max_position_fraction * equity * (1 + 1e-9) + 1e-6


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cash=st.floats(1e4, 5e7),
    limits=st.builds(RiskLimits, max_position_fraction=st.floats(0.0, 2.0),
                     max_notional_per_symbol=st.floats(0.0, 3e6),
                     max_gross_exposure=st.floats(0.0, 3.0)),
    model=st.builds(CostModel, commission_rate=st.floats(0.0, 0.01),
                    half_spread_bps=st.floats(0.0, 50.0), impact_bps=st.floats(0.0, 500.0)),
    days=st.lists(st.tuples(st.tuples(*(st.sampled_from([-1, 0, 0, 1]),) * 3),
                            st.tuples(*(st.floats(0.6, 1.5),) * 3),
                            st.tuples(*(st.floats(0.0, 1e6),) * 3),
                            st.integers(1, 3)),
                  min_size=2, max_size=10),
    share=st.floats(0.01, 1.0),
    policy=st.sampled_from(["carry", "cancel"]),
)
def test_a_whole_paper_run_never_breaches_the_ceilings_and_always_reconciles(
    cash: float, limits: RiskLimits, model: CostModel,
    days: list[tuple[tuple[int, ...], tuple[float, ...], tuple[float, ...], int]],
    share: float, policy: str,
) -> None:
    """new_bars -> advance -> signal_weights -> cap_target_weights -> plan_cycle, as the actor."""
    rows: dict[str, list[tuple[int, float, float, float]]] = {s: [] for s in SYMBOLS}
    price = {"A": 100.0, "B": 20.0, "C": 5.0}
    day, state = 0, new_ledger(cash)
    for directions, moves, volumes, new_days in days:
        for _ in range(new_days):  # a cycle may find several new bars (the daemon was down)
            day += 1
            for s, m, v in zip(SYMBOLS, moves, volumes, strict=True):
                open_ = price[s] * math.sqrt(m)
                price[s] = price[s] * m
                rows[s].append((day, open_, price[s], v))
        data = arrays(rows)
        before = state
        bars, adv = step(state, data, limits=limits, model=model, share=share, policy=policy)
        _check_fill_ceilings(before, adv.state, limits)
        assert step(before, data, limits=limits, model=model, share=share,
                    policy=policy)[1] == adv  # a re-run after a crash computes the same fills
        weights = signal_weights(dict(zip(SYMBOLS, directions, strict=True)), limits)
        equity = ledger_equity(adv.state)
        weights = cap_target_weights(weights, equity, bars.latest_closes, limits)
        eff = clamp_to_ceilings(limits)
        for w in weights.values():
            assert abs(w) <= eff.max_position_fraction + 1e-12
            assert abs(w) * equity <= eff.max_notional_per_symbol * (1 + 1e-9) + 1e-9
        state, _ = plan_cycle(adv.state, weights, bars.latest_closes, min_order_notional=1.0)
        assert reconcile(state) == []
        assert len(set(state.applied_order_ids)) == len(state.applied_order_ids)
    assert msgspec.json.decode(msgspec.json.encode(state), type=LedgerState) == state


# --- halt races -------------------------------------------------------------------------------


@pytest.fixture()
def fast_switching() -> Iterator[None]:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # let the two threads interleave inside one execution
    yield
    sys.setswitchinterval(old)


def _open_book(n: int) -> tuple[LedgerState, dict[str, Bar]]:
    orders = [Order(order_id=f"o{i}", symbol=f"S{i:03d}", quantity=1.0, decision_price=10.0,
                    cycle_id="d0", model_id="m") for i in range(n)]
    bars = {o.symbol: Bar(open=10.0, high=10.0, low=10.0, close=10.0, volume=1e9) for o in orders}
    return msgspec.structs.replace(new_ledger(1e9), open_orders=orders), bars


@pytest.mark.usefixtures("fast_switching")
def test_halt_set_from_another_thread_means_zero_fills_after_the_halt() -> None:
    """A fill happens at its halt check: a check that starts after ``flag.set()`` returned sees
    the flag, so every fill's check must start before the halt time, and nothing follows."""
    rng = random.Random(7)
    state, bars = _open_book(150)
    mid_run = 0
    for _ in range(150):
        flag = threading.Event()
        checks: list[tuple[int, bool]] = []

        def halted(flag: threading.Event = flag, checks: list[tuple[int, bool]] = checks) -> bool:
            started = time.perf_counter_ns()
            result = flag.is_set()
            checks.append((started, result))
            return result

        result: list[tuple[LedgerState, list[object], object]] = []
        go = threading.Barrier(2)

        def trade(go: threading.Barrier = go, result: list = result,  # type: ignore[type-arg]
                  halted=halted) -> None:  # type: ignore[no-untyped-def]
            go.wait()
            result.append(execute_orders(state, [], bars, FREE, timestamp="d1", halted=halted))

        worker = threading.Thread(target=trade)
        worker.start()
        go.wait()
        for _ in range(rng.randrange(0, 300_000)):  # 0 to ~6 ms, an execution's length
            pass
        flag.set()
        halt_time = time.perf_counter_ns()
        worker.join(timeout=30)
        assert not worker.is_alive()
        after, fills, report = result[0]
        passed = [t for t, r in checks if not r]
        assert len(fills) == len(passed)
        assert all(t < halt_time for t in passed), "a fill whose halt check began after the halt"
        assert sum(1 for _, r in checks if r) <= 1  # the first refusal stops everything
        if len(fills) < len(state.open_orders):
            assert report.halted and after.open_orders == []  # type: ignore[attr-defined]
            mid_run += len(fills) > 0
        assert reconcile(after) == []  # type: ignore[arg-type]
    assert mid_run > 0, "the halt never landed in the middle of an execution"
