"""#17: ``--drop-bars SYMBOL --after DATE`` removes stored bars that should never have been stored,
audited, under the state lock; the CSV is then re-read whole."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from aistock_actors.store.bars import BarStore
from aistock_actors.store.ingest import ingest_directory
from aistock_actors.store.lock import DaemonLock

SUPERVISOR = Path(__file__).resolve().parents[2] / "supervisor.py"
CSV = ("timestamp,open,high,low,close,volume\n2024-01-02,10,11,9,10.5,1000\n"
       "2024-01-03,10.5,11,10,10.8,1200\n2099-01-01,10,11,9,10.5,1000\n")


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SUPERVISOR), str(config), *args],
                          cwd=config.parent, capture_output=True, text=True, timeout=120,
                          check=False)


def poisoned(tmp_path: Path) -> tuple[Path, BarStore]:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "AAA.csv").write_text(CSV)
    store = BarStore(tmp_path / "state" / "bars")
    ingest_directory(tmp_path / "data", store)  # no limits: how a pre-#17 store got poisoned
    assert store.count("AAA") == 3
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"state_dir": str(tmp_path / "state"),
                                  "models_dir": str(tmp_path / "models")}))
    return config, store


def test_drop_bars_removes_the_future_bar_audited(tmp_path: Path) -> None:
    config, store = poisoned(tmp_path)
    done = cli(config, "--drop-bars", "aaa", "--after", "2024-12-31")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("dropped 1 stored bar(s) of AAA after 2024-12-31 (2 kept")
    assert store.count("AAA") == 2 and "AAA" not in store.cursors()
    log = (tmp_path / "state" / "audit" / "log.jsonl").read_text().splitlines()
    record = json.loads(log[-1])
    assert record["action"] == "bars_dropped"
    assert record["details"] == {"symbol": "AAA", "after": "2024-12-31", "removed": 1, "kept": 2}
    assert cli(config, "--audit-verify").returncode == 0


def test_drop_bars_is_refused_while_a_daemon_holds_the_state(tmp_path: Path) -> None:
    config, store = poisoned(tmp_path)
    with DaemonLock(tmp_path / "state", "daemon"):
        done = cli(config, "--drop-bars", "AAA", "--after", "2024-12-31")
    assert done.returncode == 4 and "already running" in done.stderr
    assert store.count("AAA") == 3


def test_drop_bars_needs_a_valid_date_and_its_partner_flag(tmp_path: Path) -> None:
    config, _ = poisoned(tmp_path)
    bad = cli(config, "--drop-bars", "AAA", "--after", "yesterday")
    assert bad.returncode == 2 and "--after: not an ISO date or datetime: 'yesterday'" in bad.stderr
    alone = cli(config, "--drop-bars", "AAA")
    assert alone.returncode == 2 and "go together" in alone.stderr
