"""#17: duplicate keys are an error (never silently last-wins) and a NaN / Infinity literal is
reported with its key path."""

from __future__ import annotations

import pytest

from aistock_actors.config.loading import parse_config
from aistock_actors.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"risk": {"max_gross_exposure": 1, "max_gross_exposure": 3}}',
         "c.json: risk.max_gross_exposure: duplicate key (a JSON object may name each key once)"),
        ('{"mode": "headless", // comment\n "mode": "manual"}',
         "c.json: mode: duplicate key (a JSON object may name each key once)"),
        ('{"risk": {"max_gross_exposure": NaN}}',
         "c.json: risk.max_gross_exposure: NaN is not a number JSON allows "
         "(use a finite value or null)"),
        ('{"headless": {"degradation_threshold_pct": -Infinity}}',
         "c.json: headless.degradation_threshold_pct: -Infinity is not a number JSON allows "
         "(use a finite value or null)"),
    ],
)
def test_duplicate_keys_and_non_finite_literals_name_their_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="c.json")
    assert str(info.value) == message


def test_the_same_key_in_different_objects_is_fine() -> None:
    config, _ = parse_config('{"risk": {"max_gross_exposure": 1}, "paper": {"initial_cash": 5}}')
    assert config.risk.max_gross_exposure == 1 and config.paper.initial_cash == 5
