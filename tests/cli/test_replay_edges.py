"""Two rough edges of ``--replay`` (issue #13): the health report judges bar age in market time,
and the default ``--from`` leaves the walk-forward backtest enough history."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _support.fault_harness import reliability_config, write_bars
from _support.lifecycle_support import planted_frames
from _support.localhttp import Answer, LocalServer
from _support.opsupport import http_get
from _support.support import probe_class, write_config

from aistock_actors.cli.app import main
from aistock_actors.config import load_config
from aistock_actors.core.data.sample_data import write_universe_csvs
from aistock_actors.core.model.models import ModelParams
from aistock_actors.core.model.pipeline import min_history_bars
from aistock_actors.core.replay.history import history_needed, splits_hold
from aistock_actors.core.supervision.health import health_issues
from aistock_actors.messages.data import IngestBars
from aistock_actors.runtime.clock import FakeClock, from_epoch_ns, iso_utc
from aistock_actors.runtime.replay import plan
from aistock_actors.runtime.supervisor import ChildSpec, Supervisor
from aistock_actors.runtime.telemetry import TelemetrySnapshot
from aistock_actors.store.audit import read_audit
from aistock_actors.store.ingest import csv_timestamps

WALL = 1_790_000_000.0
"""A wall time years after the market times below (a replay of old data)."""
MARKET = 1_420_000_000.0
DAY = 86400.0


def test_in_a_replay_the_bar_age_is_market_time_since_the_last_bar() -> None:
    fresh = TelemetrySnapshot(started_at=WALL - 10, last_bar_added_at=WALL - 3600,
                              last_bar_market_at=MARKET)
    # an hour of wall time since the last bar, none of market time: nothing stale
    assert health_issues(fresh, WALL, 60.0, market_now=MARKET) == []
    assert any(i.startswith("data_stale") for i in health_issues(fresh, WALL, 60.0))  # wall
    # four market days with no bar while the replay clock moved on: stale, said in market time
    [issue] = health_issues(fresh, WALL, 3 * DAY, market_now=MARKET + 4 * DAY)
    assert issue == "data_stale: no new bar for 345600s of market time (limit 259200s)"
    before_first_step = TelemetrySnapshot(started_at=WALL - 3600)
    assert health_issues(before_first_step, WALL, 60.0, market_now=MARKET) == []


def _report(sup: Supervisor) -> dict[str, Any]:
    assert sup.net is not None
    status, body = http_get(f"http://127.0.0.1:{sup.net.bound_port}/report")
    assert status == 200, body
    report: dict[str, Any] = json.loads(body)
    return report


def test_a_supervisor_on_a_replay_clock_judges_bar_age_in_market_time(tmp_path: Path) -> None:
    """A real supervisor, a real cycle adding a bar, the real ``/report`` endpoint (the report
    the HealthReporter POSTs), on a clock whose wall time runs far ahead of the market."""
    market = dt.datetime(2015, 3, 2, 21, tzinfo=dt.UTC)
    clock = FakeClock(dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    clock.set_market_time(market)
    config = write_config(tmp_path, monitoring={"listen_port": 0,
                                                "max_data_age_seconds": 3 * DAY})
    spec = ChildSpec(name="probe", actor_class=probe_class(["ok"]), step="ingest",
                     make_request=lambda rid, _cycle: IngestBars(request_id=rid))
    sup = Supervisor(load_config(config), [spec], clock=clock)
    sup.start()
    try:
        summary = sup.run_once()
        assert summary is not None and summary.outcome == "succeeded"
        clock.advance(10 * DAY)  # a step that takes long in wall time: the market stood still
        assert _report(sup)["issues"] == []
        clock.set_market_time(market + dt.timedelta(days=4))  # four market days, no new bar
        assert _report(sup)["issues"] == [
            "data_stale: no new bar for 345600s of market time (limit 259200s)"]
        clock.set_market_time(None)  # live: wall time, as before
        [issue] = _report(sup)["issues"]
        assert issue == "data_stale: no new bar for 864000s (limit 259200s)"
    finally:
        sup.stop()


def test_a_replay_of_daily_bars_raises_no_data_stale(tmp_path: Path) -> None:
    """A real replay POSTing reports to a real server: a weekend is within the limit in market
    time, and nothing is judged against the wall clock."""
    server = LocalServer(lambda _request: Answer(202, {})).start()
    try:
        write_bars(tmp_path, 150)
        config = reliability_config(
            tmp_path, training={"retrain_every_bars": 20},
            monitoring={"max_data_age_seconds": 3 * DAY},
            headless={"external_health_report_url": server.url("/health"),
                      "health_report_interval_seconds": 0.2})
        assert main([str(config), "--replay"]) == 0
        reports = [r.json for r in server.requests if r.path == "/health"]
    finally:
        server.stop()
    assert len(reports) >= 2 and reports[-1]["bars_added"] > 0, reports
    stale = [issue for r in reports for issue in r["issues"] if issue.startswith("data_stale")]
    assert stale == [], stale


# --- the default --from -------------------------------------------------------------------------

SMALL = ModelParams(horizon=1, n_splits=2, embargo=1)
"""The small lifecycle's model (tests/_support/fault_harness.py): 2 outer backtest splits."""


def test_the_history_a_replay_needs_covers_the_backtests_and_meta_labelers_splits() -> None:
    floor = min_history_bars(SMALL, 2)
    assert floor == 124
    # at 124-141 bars the trainer could train, but a backtest fold's meta-labeler has a split
    # with no training data (each tradable label spans 2 bars, which the purge removes): the
    # walk-forward fails with insufficient_data
    assert [b for b in range(floor, floor + 30) if not splits_hold(b, SMALL, 2, 1)] == list(
        range(124, 142))
    assert history_needed(SMALL, 2, 1, floor=floor) == 142
    defaults = ModelParams()
    assert history_needed(defaults, 4, defaults.embargo, floor=496) == 501


def test_the_default_from_is_the_first_bar_where_train_and_backtest_both_have_history(
    tmp_path: Path,
) -> None:
    write_bars(tmp_path, 150)
    config = reliability_config(tmp_path, training={"retrain_every_bars": 20})
    assert main([str(config), "--replay"]) == 0
    first_step = json.loads((tmp_path / "state" / "replay.json").read_text())["first_step"]
    stamps = sorted(int(ts[141]) for ts in csv_timestamps(tmp_path / "data").values())
    assert first_step == iso_utc(from_epoch_ns(stamps[0]))  # the 142nd bar, not the 124th
    records, _ = read_audit(tmp_path / "state" / "audit" / "log.jsonl")
    failed = [r.details for r in records if r.action in ("cycle_failed", "step_failed")]
    assert failed == []
    alerts = [json.loads(p.read_text()) for p in (tmp_path / "state" / "alerts").rglob("*.json")]
    assert not [a for a in alerts if a["code"] == "backtest_failed"], alerts
    [verdict] = json.loads((tmp_path / "state" / "promotion" / "manifest.json").read_text())
    assert verdict["backtest"]["folds"] == 2  # the first step's candidate was backtested


def test_the_default_from_waits_for_a_year_of_the_datas_own_bars(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Hourly 24/7 bars: the splits' 142 bars are 6 days; the default --from also waits for
    training.min_history_years of hourly bars, and says so when the data has too few."""
    hours = pd.date_range("2024-01-01", periods=600, freq="h", tz="UTC")
    frames = {s: f.set_axis(hours) for s, f in planted_frames(n_symbols=2, n_bars=600).items()}
    write_universe_csvs(tmp_path / "data", frames)
    config = reliability_config(tmp_path, training={"min_history_years": 0.05})  # ~438 hours
    window = plan(load_config(config), None, None)
    assert window.steps[0] == hours[438].value  # 0.05 x 8,766 = 438.3 -> the 439th bar
    config = reliability_config(tmp_path, training={"min_history_years": 1.0})
    assert main([str(config), "--replay"]) == 2
    err = capsys.readouterr().err
    assert "no symbol has the 8766 bars a candidate needs (the longest has 600)" in err, err
    assert not (tmp_path / "state" / "replay.json").exists()
