"""#17: a hand-edited ``state/risk/limits.json`` above the config's gross exposure is not traded
at: the config's value applies and an error alert names the file and the key."""

from __future__ import annotations

from pathlib import Path

from aistock_actors.core.risk.governor import RiskState
from aistock_actors.core.risk.policy import RiskLimits
from aistock_actors.store.alerts import AlertSink, list_alerts
from aistock_actors.store.atomic import atomic_write_json
from aistock_actors.store.risk import limits_path, trading_limits

CONFIG = RiskLimits(max_position_fraction=0.1, max_notional_per_symbol=100_000.0,
                    max_gross_exposure=1.0)


def write(state_dir: Path, effective: RiskLimits) -> None:
    atomic_write_json(limits_path(state_dir),
                      RiskState(limits=effective, baseline=CONFIG, effective=effective))


def test_a_tampered_gross_exposure_is_capped_at_the_config_with_an_alert(tmp_path: Path) -> None:
    write(tmp_path, RiskLimits(max_position_fraction=0.1, max_notional_per_symbol=100_000.0,
                               max_gross_exposure=3.0))
    alerts = AlertSink(tmp_path / "alerts")
    limits = trading_limits(tmp_path, CONFIG, alerts)
    assert limits.max_gross_exposure == 1.0
    (alert,) = list_alerts(tmp_path / "alerts", "error")
    text = alert.read_text()
    assert "risk_limits_above_config" in text and "max_gross_exposure 3" in text
    assert "limits.json" in text


def test_limits_inside_the_config_pass_silently(tmp_path: Path) -> None:
    tighter = RiskLimits(max_position_fraction=0.05, max_notional_per_symbol=50_000.0,
                         max_gross_exposure=0.6)
    write(tmp_path, tighter)
    alerts = AlertSink(tmp_path / "alerts")
    assert trading_limits(tmp_path, CONFIG, alerts) == tighter
    assert list_alerts(tmp_path / "alerts", "error") == []
