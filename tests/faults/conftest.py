"""Fixtures of the reliability tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from _support.fault_harness import prepare_state


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Planted data, one cycle run: a promoted active model that has placed paper orders
    (copy it with ``faults.harness.copy_prepared``)."""
    return prepare_state(tmp_path_factory.mktemp("prepared"))
