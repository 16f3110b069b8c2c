"""Operator commands must start fast: they may not load the training or network stack.

``--kill`` is the emergency stop; bench/bench_kill_switch.py measures its end-to-end latency
(target p99 within 1 s) and found that importing scikit-learn, pandas and aiohttp alone took
over a second. This test keeps the operator commands' import graph light.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _support.support import write_config

RUNTIME = ("sklearn", "aiohttp", "scipy", "joblib", "pykka")


@pytest.mark.parametrize(("flag", "heavy"), [
    ("--kill", (*RUNTIME, "pandas")),  # the emergency stop: nothing but the state files
    ("--audit-verify", (*RUNTIME, "pandas")),
    ("--unkill", RUNTIME),  # reads the paper ledger to acknowledge a drawdown halt
    ("--resume", RUNTIME),
])
def test_operator_command_does_not_import_the_runtime(
        tmp_path: Path, flag: str, heavy: tuple[str, ...]) -> None:
    config = write_config(tmp_path)
    code = (
        "import sys\n"
        "from aistock_actors.cli.app import main\n"
        f"code = main([{str(config)!r}, {flag!r}])\n"
        f"heavy = [m for m in {heavy!r} if m in sys.modules]\n"
        "print(code, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True, cwd=tmp_path)
    assert out.stdout.strip().splitlines()[-1].endswith("[]"), out.stdout
