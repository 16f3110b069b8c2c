"""The figures of a replay's summary (core/replay/summary.py)."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from _support.manifest_support import entry

from aistock_actors.core.replay.account import buy_and_hold, paper_account
from aistock_actors.core.replay.plan import DAY_NS, parse_date
from aistock_actors.core.replay.summary import cycle_date, cycle_time_ns, lifecycle, market_date

T0 = parse_date("2020-01-01")


def record(action: str, as_of: str = "2020-03-02T00:00:00Z", **details: Any) -> Any:
    return SimpleNamespace(action=action, as_of=as_of, details=details)


def test_market_dates_from_cycle_ids_and_as_of() -> None:
    assert cycle_date("c20200302T000000Z-0042") == "2020-03-02"
    assert cycle_date("c20200302T153000Z-0042") == "2020-03-02T15:30:00Z"
    assert cycle_date("not-a-cycle") is None
    assert cycle_time_ns("c20200302T000000Z-0001") == parse_date("2020-03-02")
    assert market_date("2020-03-02T00:00:00Z") == "2020-03-02"


def test_lifecycle_counts_promotions_rejections_risk_rollbacks_halts() -> None:
    records = [
        record("model_trained", model_id="m-1"),
        record("model_trained", model_id="m-1"),  # an interrupted cycle trained it again
        record("model_trained", model_id="m-2"),
        record("risk_limits_adjusted", reason="tightened_on_poor_performance"),
        record("risk_limits_adjusted", reason="tightened_on_poor_performance"),
        record("auto_rollback_on_degradation", model_id="m-1", rolled_back_to=None),
        record("strategy_removed", model_id="m-2"),
        record("kill_switch_activated", message="kill switch activated (file)"),
        record("kill_switch_activated", already_halted="max_failures_reached"),
    ]
    manifest = [
        entry("m-1", "rolled_back", action="promote", cycle_id="c20200302T000000Z-0001",
              id="m-1@x"),
        entry("m-2", "rejected", action="reject", cycle_id="c20200402T000000Z-0021",
              reasons=["stage1_failed_policy_gates", "x"]),
        entry("m-3", "pending", action="pending"),
    ]
    counts = lifecycle(records, manifest)
    assert counts["candidates"] == 2
    assert [(e.date, e.what) for e in counts["promotions"]] == [("2020-03-02", "m-1")]
    assert counts["pending"] == 1
    assert counts["rejections"] == {"stage1_failed_policy_gates": 1}
    assert counts["risk_changes"] == {"tightened_on_poor_performance": 2}
    assert counts["rollbacks"][0].detail == "back to no model"
    assert [e.what for e in counts["retirements"]] == ["m-2"]
    assert len(counts["halts"]) == 1 and counts["halts"][0].date == "2020-03-02"


def test_paper_account_figures() -> None:
    times = [T0 + i * DAY_NS for i in range(366)]
    curve = [(t, 100_000.0 * (1.0 + 0.1 * i / 365)) for i, t in enumerate(times)]
    fills = [(10.0, 101.0, 100.0, 2.0), (-10.0, 99.0, 100.0, 2.0)]
    account = paper_account(curve, 100_000.0, fills)
    assert account is not None
    assert account.final_equity == pytest.approx(110_000.0)
    assert account.total_return == pytest.approx(0.1)
    assert account.cagr == pytest.approx(0.1, rel=0.01)  # one calendar year
    assert account.max_drawdown == 0.0 and account.sharpe > 0
    assert account.costs == pytest.approx(4.0 + 10.0 + 10.0)
    assert account.trades == 2
    assert paper_account([], 1.0, []) is None


def test_buy_and_hold_holds_equal_weights_of_the_symbols_at_the_first_bar() -> None:
    times = np.array([T0 + i * DAY_NS for i in range(3)], dtype=np.int64)
    closes = np.array([[10.0, 20.0, np.nan],
                       [11.0, np.nan, 5.0],   # BBB has no bar: its last close marks it
                       [12.0, 30.0, 6.0]])    # CCC came later: not held
    account = buy_and_hold(times, closes, 1000.0, entry_cost=0.0)
    assert account is not None
    assert account.final_equity == pytest.approx(500 * 12 / 10 + 500 * 30 / 20)
    assert account.trades == 2 and account.turnover == 1.0
    costly = buy_and_hold(times, closes, 1000.0, entry_cost=0.01)
    assert costly is not None and costly.costs == pytest.approx(10.0)
    assert costly.final_equity == pytest.approx(account.final_equity * 0.99)
    assert math.isnan(buy_and_hold(times[:1], closes[:1], 1000.0, 0.0).cagr)  # type: ignore[union-attr]
