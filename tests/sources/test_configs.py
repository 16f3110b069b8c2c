"""The shipped provider configs load, and start-up names a missing key variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from aistock_actors.config import load_config
from aistock_actors.errors import ConfigError
from aistock_actors.sources import check_source

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_crypto_config_needs_no_key() -> None:
    data = load_config(CONFIGS / "crypto.json").config.data
    assert data.source == "ccxt" and data.symbols[0] == "BTC/USDT"
    check_source(data, {})


def test_alpaca_config_names_its_key_variables() -> None:
    data = load_config(CONFIGS / "alpaca.json").config.data
    with pytest.raises(ConfigError, match="APCA_API_KEY_ID is not set"):
        check_source(data, {})
    check_source(data, {"APCA_API_KEY_ID": "k" * 20, "APCA_API_SECRET_KEY": "s" * 40})
