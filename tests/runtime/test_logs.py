"""Logs: text on a terminal, JSON lines for the daemon, every actor line names its actor, and
secrets are masked in ``--run-once`` and ``--daemon`` alike."""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from _support.lifecycle_support import lifecycle_config, planted_frames
from _support.support import write_config

from aistock_actors.cli import app as cli
from aistock_actors.core.data.sample_data import generate_universe, write_universe_csvs
from aistock_actors.runtime import logs
from aistock_actors.runtime.supervisor import Supervisor

SECRET = "tokenFAKEsecret98765"


@pytest.fixture(autouse=True)
def _restore_signals_and_logging() -> Iterator[None]:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    yield
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    root.handlers[:] = saved
    root.setLevel(level)


def json_lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_json_lines_name_the_actor_of_every_actor_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_universe_csvs(tmp_path / "data", planted_frames(n_symbols=4, n_bars=560))
    (tmp_path / "data" / "BAD.csv").write_text("timestamp,open,high,low,close,volume\nx\n")
    config = lifecycle_config(tmp_path)
    assert cli.main([str(config), "--run-once", "--log-format", "json"]) == 0
    records = json_lines(capsys.readouterr().err)
    assert records and all({"ts", "level", "logger", "message"} <= r.keys() for r in records)
    started = [r for r in records if str(r["message"]).startswith("started ")]
    assert len(started) == 8 and all(r["message"] == f"started {r['actor']} gen 1"
                                     for r in started)
    rejected = next(r for r in records if "[csv_rejected]" in str(r["message"]))
    assert rejected["actor"] == "data_ingestor"
    # Logged on the trainer's thread by the model store, which knows no actor: bound by thread.
    stored = next(r for r in records if str(r["message"]).startswith("stored model"))
    assert stored["actor"] == "trainer" and stored["logger"] == "aistock_actors.store.models"


def test_text_lines_show_the_actor_or_the_thread(capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup_logging("INFO", "text")
    log = logging.getLogger("aistock_actors.test")
    log.info("from the main thread")
    log.info("about a child", extra={"actor": "paper_trader"})

    def in_actor_thread() -> None:
        logs.bind_actor("risk_governor")
        log.warning("from an actor's own thread")

    thread = threading.Thread(target=in_actor_thread, name="RiskGovernor-9")
    thread.start()
    thread.join(timeout=10)
    lines = capsys.readouterr().err.splitlines()
    assert "[MainThread] aistock_actors.test: from the main thread" in lines[0]
    assert "[paper_trader] aistock_actors.test: about a child" in lines[1]
    assert "WARNING [risk_governor] aistock_actors.test: from an actor's own thread" in lines[2]
    assert logs.current_actor() is None  # the binding belongs to that thread only


def _secret_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AISTOCK_TEST_TOKEN", SECRET)
    write_universe_csvs(tmp_path / "data", generate_universe(3, 60, seed=5))
    return write_config(tmp_path, headless={"kill_switch_token_env": "AISTOCK_TEST_TOKEN"})


@pytest.mark.parametrize(("mode", "method"), [("--run-once", "run_once"),
                                               ("--daemon", "run_daemon")])
def test_secrets_are_masked_in_log_records(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        mode: str, method: str) -> None:
    config = _secret_config(tmp_path, monkeypatch)
    original = getattr(Supervisor, method)

    def careless(self: Supervisor, *args: object, **kwargs: object) -> object:
        logging.getLogger("aistock_actors.careless").error("calling with token %s", SECRET)
        if method == "run_daemon":
            return None  # one loop is enough: the filter is what is under test
        return original(self, *args)

    monkeypatch.setattr(Supervisor, method, careless)
    assert cli.main([str(config), mode, "--log-format", "json"]) == 0
    err = capsys.readouterr().err
    assert "calling with token ***" in err
    assert SECRET not in err
