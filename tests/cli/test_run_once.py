"""``--run-once``, ``--status`` and the CSV rejection path through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from _support.support import write_config

from aistock_actors.core.data.sample_data import generate_universe, write_universe_csvs
from aistock_actors.store.bars import BarStore

REPO = Path(__file__).resolve().parents[2]


def cli(config: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "supervisor.py"), str(config), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def test_run_once_ingests_sample_data_and_writes_runbook_files(tmp_path: Path) -> None:
    write_universe_csvs(tmp_path / "data", generate_universe(5, 200, seed=11))
    config = write_config(tmp_path)
    first = cli(config, "--run-once", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "SUCCEEDED" in first.stdout
    ingest = next(line for line in first.stdout.splitlines() if line.strip().startswith("ingest"))
    assert " ok " in ingest and "bars_added=1000" in ingest
    state = tmp_path / "state"
    assert (state / "audit" / "log.jsonl").exists()
    for severity in ("info", "warning", "error", "critical"):
        assert (state / "alerts" / severity).is_dir()
    status = cli(config, "--status", cwd=tmp_path)
    assert "not built yet:" in status.stdout and "halted:               no" in status.stdout

    again = cli(config, "--run-once", cwd=tmp_path)
    assert "bars_added=0" in again.stdout  # incremental: nothing new, nothing re-added
    data = json.loads(cli(config, "--status", "--json", cwd=tmp_path).stdout)
    assert data["cycles_total"] == 2 and data["consecutive_failures"] == 0
    assert data["last_cycle"]["steps"][0]["data"]["total_bars"] == 1000


def test_bad_csv_is_rejected_with_file_row_reason_and_good_symbols_ingest(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    write_universe_csvs(data_dir, generate_universe(3, 50, seed=5))
    config = write_config(tmp_path)
    assert cli(config, "--run-once", cwd=tmp_path).returncode == 0
    bad = data_dir / "SYM001.csv"
    lines = bad.read_text().splitlines()
    # The next business day (a 2099 bar is now refused as a bar from the future, #17), priced
    # like the last bar so no jump check fires.
    nxt = "2015-03-13"
    assert lines[-1].split(",")[0] < nxt
    close = lines[-1].split(",")[4]
    # Append a new bar whose high is below its low: SYM001's update must be rejected whole.
    bad.write_text("\n".join([*lines, f"{nxt},{close},{close},{float(close) * 1.01},{close},100"])
                   + "\n")
    good = data_dir / "SYM000.csv"
    good_close = good.read_text().splitlines()[-1].split(",")[4]
    good.write_text(good.read_text() + f"{nxt},{good_close},{good_close},{good_close},"
                    f"{good_close},100\n")

    result = cli(config, "--run-once", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "bars_added=1" in result.stdout
    errors = [json.loads(p.read_text())
              for p in (tmp_path / "state" / "alerts" / "error").glob("*csv_rejected*")]
    assert len(errors) == 1
    message = errors[0]["message"]
    assert "SYM001.csv" in message and f"row {len(lines) + 1}" in message
    assert "earlier bars of SYM001 kept" in message
    store = BarStore(tmp_path / "state" / "bars")
    assert store.count("SYM001") == 50 and store.count("SYM000") == 51


def test_no_csv_folder_fails_the_cycle_with_a_clear_alert(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = cli(config, "--run-once", cwd=tmp_path)
    assert result.returncode == 1
    assert "FAILED" in result.stdout
    errors = [json.loads(p.read_text())
              for p in (tmp_path / "state" / "alerts" / "error").glob("*.json")]
    assert any(e["code"] == "data_ingestion_failed" and str(tmp_path / "data") in e["message"]
               for e in errors)


def test_config_error_is_one_line_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.json"
    config.write_text('{"headless": {"max_consecutive_failures": 0}}')
    result = cli(config, "--run-once", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "headless.max_consecutive_failures" in result.stderr and ">= 1" in result.stderr
    assert not (tmp_path / "state").exists()
