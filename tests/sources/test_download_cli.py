"""``supervisor.py CONFIG --download`` through the real CLI against a fake provider on 127.0.0.1:
backfill, re-run, ``--csv``, SIGKILL mid-backfill, and keys that never leak."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _support.fake_markets import FakeMarket
from _support.support import write_config
from _support.waiting import wait_until

from aistock_actors.core.data.bars import parse
from aistock_actors.store.bars import BarStore

REPO = Path(__file__).resolve().parents[2]
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
KEY, SECRET = "PKTEST0123456789ABCD", "s3cr3t-0123456789-abcdefghij"


@pytest.fixture
def market() -> Iterator[FakeMarket]:
    # The provider's own clock: real time (every bar of January 2026 is long closed).
    server = FakeMarket(lambda: int(time.time() * 1000), START, "1h", page_max=24).start()
    yield server
    server.stop()


def ccxt_config(tmp: Path, url: str) -> Path:
    return write_config(
        tmp,
        data={"source": "ccxt", "symbols": PAIRS, "timeframe": "1h",
              "history_start": "2026-01-01", "base_url": url, "calendar": "24/7"},
    )


def cli(config: Path, *args: str, cwd: Path, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "supervisor.py"), str(config), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300, check=False,
                          env=env)


def stored(state: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    store = BarStore(state / "bars")
    return {s: tuple(np.array(a) for a in store.arrays(s)) for s in store.symbols()}  # type: ignore[misc]


def test_download_fills_the_store_and_a_rerun_fetches_only_what_is_missing(
    market: FakeMarket, tmp_path: Path
) -> None:
    config = ccxt_config(tmp_path, market.url())
    first = cli(config, "--download", "--to", "2026-01-08", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "BTC-USDT: +168 bar(s), 168 stored" in first.stdout
    requests = market.bar_requests
    again = cli(config, "--download", "--to", "2026-01-08", "--csv", str(tmp_path / "csv"),
                cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "BTC-USDT: +0 bar(s), 168 stored" in again.stdout
    assert market.bar_requests - requests == len(PAIRS)  # one short request each (the overlap)
    more = cli(config, "--download", "--to", "2026-01-09", cwd=tmp_path)
    assert "ETH-USDT: +24 bar(s), 192 stored" in more.stdout
    text = (tmp_path / "csv" / "BTC-USDT.csv").read_text()
    parsed = parse(text)
    assert parsed.ok and len(parsed.timestamps) == 168
    assert np.array_equal(parsed.timestamps, stored(tmp_path / "state")["BTC-USDT"][0][:168])


def test_download_needs_a_provider_and_valid_dates(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    out = cli(config, "--download", cwd=tmp_path)
    assert out.returncode == 2 and "--download needs data.source ccxt or alpaca" in out.stderr
    config = ccxt_config(tmp_path, "http://127.0.0.1:9")
    out = cli(config, "--download", "--from", "01/02/2026", cwd=tmp_path)
    assert out.returncode == 2 and "--from '01/02/2026' is not an ISO date" in out.stderr


def test_sigkill_during_a_backfill_then_a_restart_gives_the_uninterrupted_store(
    market: FakeMarket, tmp_path: Path
) -> None:
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    for folder in (reference_dir, killed_dir):
        folder.mkdir()
    args = ("--download", "--to", "2026-01-15")
    reference = cli(ccxt_config(reference_dir, market.url()), *args, cwd=reference_dir)
    assert reference.returncode == 0, reference.stderr

    market.delay = 0.15  # slow pages: the kill lands mid-backfill
    config = ccxt_config(killed_dir, market.url())
    proc = subprocess.Popen([sys.executable, str(REPO / "supervisor.py"), str(config), *args],
                            cwd=killed_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        bars = killed_dir / "state" / "bars"
        wait_until(lambda: (bars / "ETH-USDT.npz").exists(), 60, "a stored page of ETH")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    partial = stored(killed_dir / "state")
    assert 0 < sum(len(ts) for ts, _ in partial.values()) < 3 * 14 * 24  # really mid-backfill
    market.delay = 0.0
    again = cli(config, *args, cwd=killed_dir)
    assert again.returncode == 0, again.stderr
    expected, got = stored(reference_dir / "state"), stored(killed_dir / "state")
    assert sorted(expected) == sorted(got) == ["BTC-USDT", "ETH-USDT", "SOL-USDT"]
    for symbol in expected:
        assert np.array_equal(expected[symbol][0], got[symbol][0])
        assert np.array_equal(expected[symbol][1], got[symbol][1])


def test_alpaca_keys_never_appear_in_output_alerts_audit_or_status(
    market: FakeMarket, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path,
        data={"source": "alpaca", "symbols": ["AAPL"], "timeframe": "1h",
              "history_start": "2026-01-01", "base_url": market.url(), "calendar": "XNYS",
              "api_key_env": "TEST_ALPACA_KEY", "api_secret_env": "TEST_ALPACA_SECRET"},
    )
    env = {**os.environ, "TEST_ALPACA_KEY": KEY, "TEST_ALPACA_SECRET": SECRET}
    missing = cli(config, "--run-once", cwd=tmp_path)  # without the variables
    assert missing.returncode == 2
    assert "data.api_key_env: environment variable TEST_ALPACA_KEY is not set" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1

    market.echo_key = True  # the provider puts the key it was sent in its error message
    outputs = [
        cli(config, "--download", cwd=tmp_path, env=env),
        cli(config, "--run-once", "--log-level", "DEBUG", cwd=tmp_path, env=env),
        cli(config, "--status", cwd=tmp_path, env=env),
        cli(config, "--status", "--json", cwd=tmp_path, env=env),
    ]
    assert outputs[0].returncode == 1 and "***" in outputs[0].stderr
    assert [r for r in market.requests if r[2].get("APCA-API-KEY-ID") == KEY]  # the key was sent
    assert outputs[1].returncode == 1  # the ingest step failed: nothing fetched
    texts = [o.stdout + o.stderr for o in outputs]
    texts += [p.read_text() for p in (tmp_path / "state").rglob("*") if p.is_file()
              and p.suffix in (".json", ".jsonl", ".log", ".txt")]
    alerts = [json.loads(p.read_text()) for p in (tmp_path / "state" / "alerts").rglob("*.json")]
    assert any(a.get("code") == "data_fetch_failed" for a in alerts)
    for text in texts:
        assert KEY not in text and SECRET not in text


def test_keys_never_reach_metrics_or_the_cycle_summary(
    market: FakeMarket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process: a cycle whose provider echoes the key fails; /metrics' exposition, the
    summary and the alert files hold no key."""
    from prometheus_client import generate_latest

    from aistock_actors.config import load_config
    from aistock_actors.runtime.child_specs import default_specs
    from aistock_actors.runtime.supervisor import Supervisor

    monkeypatch.setenv("TEST_ALPACA_KEY", KEY)
    monkeypatch.setenv("TEST_ALPACA_SECRET", SECRET)
    market.echo_key = True
    config = write_config(
        tmp_path,
        data={"source": "alpaca", "symbols": ["AAPL"], "timeframe": "1h",
              "history_start": "2026-01-01", "base_url": market.url(), "calendar": "XNYS",
              "api_key_env": "TEST_ALPACA_KEY", "api_secret_env": "TEST_ALPACA_SECRET"},
    )
    sup = Supervisor(load_config(config), default_specs())
    sup.start()
    try:
        summary = sup.run_once()
        metrics = generate_latest(sup.telemetry.registry).decode()
    finally:
        sup.stop()
    assert summary is not None and summary.steps[0].status == "failed"
    assert "***" in repr(summary) and "aistock_" in metrics
    for text in (repr(summary), metrics,
                 *(p.read_text() for p in (tmp_path / "state").rglob("*.json*"))):
        assert KEY not in text and SECRET not in text


def test_csv_without_download_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from aistock_actors.cli.app import main

    assert main([str(tmp_path / "none.json"), "--status", "--csv", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "aistock: --csv goes with --download"


def test_download_on_a_terminal_shows_a_progress_bar(market: FakeMarket, tmp_path: Path) -> None:
    from _support.operator_support import run_in_pty

    config = ccxt_config(tmp_path, market.url())
    code, out = run_in_pty([sys.executable, str(REPO / "supervisor.py"), str(config),
                            "--download", "--to", "2026-01-03"], cwd=tmp_path)
    assert code == 0, out
    assert "download ccxt" in out and "144/144 bars" in out.replace("\x1b", ""), out
    assert "SOL-USDT: +48 bar(s), 48 stored" in out
