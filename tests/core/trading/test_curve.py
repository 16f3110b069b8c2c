"""#18: the bounded equity curve gives the drawdown halt and the rollback rule exactly what the
whole curve gave (Hypothesis: random equity paths, re-bases, model changes and window moves)."""

from __future__ import annotations

import math

import msgspec
import pytest
from _support.curve_reference import old_drawdown, old_model_returns, same
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.core.promotion.rollback import (
    LivePerformance,
    expected_from_backtest,
    should_rollback,
)
from aistock_actors.core.trading.curve import (
    CURVE_BATCH,
    RECENT_POINTS,
    model_record,
    model_returns,
    model_started,
    rebase_drawdown,
    split_curve,
    track_model,
)
from aistock_actors.core.trading.ledger import current_drawdown, new_ledger
from aistock_actors.core.trading.orders import LedgerState

# --- the property ------------------------------------------------------------------------------

_equity = st.one_of(
    st.floats(min_value=1.0, max_value=1e6),
    st.sampled_from([0.0, -5.0, math.nan, math.inf, 1e-300]),
)
_step = st.one_of(
    st.tuples(st.just("mark"), _equity),
    st.tuples(st.just("rebase"), st.just(0.0)),
    st.tuples(st.just("model"), st.just(0.0)),
    st.tuples(st.just("split"), st.just(0.0)),
)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(_step, max_size=80), recent=st.integers(1, 6), batch=st.integers(0, 5))
def test_the_bounded_drawdown_and_model_record_equal_the_whole_curves(
    steps: list[tuple[str, float]], recent: int, batch: int
) -> None:
    state = new_ledger(100.0)
    whole: list[tuple[str, float]] = []
    archived: list[tuple[str, float]] = []
    base = since = 0  # the old indexes into the whole curve
    models = 0
    for kind, value in steps:
        if kind == "mark":
            point = (f"t{len(whole)}", value)
            whole.append(point)
            state = msgspec.structs.replace(state, equity_curve=[*state.equity_curve, point])
        elif kind == "rebase":
            base = max(len(whole) - 1, 0)
            state = rebase_drawdown(state)
        elif kind == "model":
            models += 1
            since = max(len(whole) - 1, 0)
            state = track_model(state, f"m{models}")
        else:
            state, moved = split_curve(state, recent=recent, batch=batch)
            archived += moved
        assert [*archived, *state.equity_curve] == whole
        want, got = old_drawdown(whole, base), current_drawdown(state)
        assert all(same(a, b) for a, b in zip(got, want, strict=True)), (got, want)
        returns = old_model_returns(whole, since)
        record = model_record(state)
        assert record.count == len(returns)
        assert record.growth == math.prod(1.0 + r for r in returns)
        assert record.valid == all(math.isfinite(r) and r >= -1.0 for r in returns)
        if models:  # the rollback rule's verdict, bounded vs whole
            expected = expected_from_backtest(f"m{models}", 0.2, 100)
            old = should_rollback(expected, LivePerformance(model_id=f"m{models}",
                                                            bar_returns=returns), 0.05, 3)
            new = should_rollback(expected, LivePerformance(
                model_id=f"m{models}", bar_returns=model_returns(state),
                earlier=state.model_archived), 0.05, 3)
            assert new == old


def test_points_move_in_batches_and_the_window_keeps_the_newest() -> None:
    state = msgspec.structs.replace(
        new_ledger(100.0),
        equity_curve=[(f"t{i}", 100.0 + i) for i in range(RECENT_POINTS + CURVE_BATCH)])
    assert split_curve(state) == (state, [])  # not yet more than a batch beyond the window
    grown = msgspec.structs.replace(
        state, equity_curve=[*state.equity_curve, ("t+", 1.0)], model_id="m", model_since=10)
    kept, moved = split_curve(grown)
    assert len(moved) == CURVE_BATCH + 1 and len(kept.equity_curve) == RECENT_POINTS
    assert kept.curve_archived == CURVE_BATCH + 1 and kept.equity_curve[-1] == ("t+", 1.0)
    assert kept.model_archived is not None and kept.model_archived.count == CURVE_BATCH + 1 - 10
    assert model_started(kept) == "t10" and model_started(grown) == "t10"
    assert kept.drawdown_archived is not None
    assert kept.drawdown_archived.peak == 100.0 + CURVE_BATCH
    with pytest.raises(ValueError, match="recent must be >= 1"):
        split_curve(grown, recent=0)


def test_rebase_and_a_new_model_forget_what_was_folded() -> None:
    state = LedgerState(initial_cash=100.0, cash=100.0,
                        equity_curve=[(f"t{i}", 100.0 - i) for i in range(8)], model_id="a")
    kept, _ = split_curve(state, recent=3, batch=1)
    assert current_drawdown(kept).peak == 100.0 and kept.model_archived is not None
    rebased = rebase_drawdown(kept)
    assert rebased.drawdown_base == 7 and current_drawdown(rebased).value == 0.0
    moved_on = track_model(kept, "b")
    assert moved_on.model_since == 7 and moved_on.model_archived is None
    assert model_record(moved_on).count == 0 and model_started(moved_on) == "t7"
