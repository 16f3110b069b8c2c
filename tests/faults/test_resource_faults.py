"""A state directory that becomes full or read-only.

Required: a critical ``state_write_failed`` alert (logged at CRITICAL on stderr while the alert
file itself cannot be written), a halt of kind ``resource`` that holds in memory at once (no
further side effects; ``/healthz`` 503; the kill switch still works) and is persisted as soon as
writes work again, the process stays up, and no file is ever half-written (the previous version
still loads). An actor's own write failure is a failed step (a ``StepFailed`` or a crash and a
restart), never a dead supervisor.

Two ways to break the disk, both real code paths up to the write:

- a stub at the store boundary (``store.atomic._write_replace`` and ``AuditLog.append`` raise
  ``OSError(ENOSPC)`` / ``OSError(EROFS)`` for paths under a chosen root) -- always runs;
- a real tmpfs mounted on ``state/`` (we run as root: ``chmod`` would not stop root), filled up
  or remounted read-only under a live daemon subprocess -- skipped where mounting is refused.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _support.fault_harness import (
    FIRST_BARS,
    STEP_OF,
    check_state,
    copy_prepared,
    reliability_config,
    write_bars,
)
from _support.forkserver import ForkServer
from _support.lifecycle_support import pointer, step
from _support.opsupport import http_get, metric_samples
from _support.support import alert_codes, audit_actions, pump_until
from _support.waiting import wait_until

from aistock_actors.config import load_config
from aistock_actors.runtime.child_specs import default_specs
from aistock_actors.runtime.supervisor import STATE_WRITE_FAILED, WRITE_RETRY_SECONDS, Supervisor
from aistock_actors.store import atomic
from aistock_actors.store.atomic import atomic_write_json
from aistock_actors.store.audit import AuditLog, verify_audit_log
from aistock_actors.store.ledger import PaperPerformance


class BrokenDisk:
    """While :attr:`error` is set, atomic writes and audit appends to paths matching
    :attr:`match` raise ``OSError(error)``; everything else is the real file system."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, match: Callable[[Path], bool]) -> None:
        self.error: int | None = None
        self.match = match
        self.refused = 0
        real_replace = atomic._write_replace
        real_append = AuditLog.append

        def write_replace(path: Path, data: bytes) -> None:
            self.check(path)
            real_replace(path, data)

        def append(log: AuditLog, action: str, actor: str,
                   details: dict[str, Any] | None = None) -> Any:
            self.check(log.path)
            return real_append(log, action, actor, details)

        monkeypatch.setattr(atomic, "_write_replace", write_replace)
        monkeypatch.setattr(AuditLog, "append", append)

    def check(self, path: Path) -> None:
        if self.error is not None and self.match(Path(path)):
            self.refused += 1
            raise OSError(self.error, os.strerror(self.error), str(path))


def under(root: Path) -> Callable[[Path], bool]:
    resolved = root.resolve()
    return lambda path: path.resolve().is_relative_to(resolved)


def healthz(sup: Supervisor) -> int:
    return http_get(f"http://127.0.0.1:{sup.net.bound_port}/healthz")[0]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["full", "read-only"])
def test_state_dir_refusing_writes_halts_in_memory_then_persists_the_halt(
    prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, code: int,
) -> None:
    copy_prepared(prepared, tmp_path)  # one cycle done; a new bar to ingest and trade
    cfg = reliability_config(tmp_path, monitoring={"listen_port": 0})
    state_dir = tmp_path / "state"
    disk = BrokenDisk(monkeypatch, under(state_dir))
    sup = Supervisor(load_config(cfg), default_specs())
    sup.start()
    try:
        saved = (state_dir / "supervisor.json").read_bytes()
        ledger = (state_dir / "paper" / "ledger.json").read_bytes()
        disk.error = code
        with caplog.at_level(logging.CRITICAL):
            second = sup.run_once()  # used to end the process (exit 6) at the first write
        assert second is not None and disk.refused > 0
        assert sup.halted and sup.halt is not None
        assert (sup.halt.kind, sup.halt.reason) == ("resource", STATE_WRITE_FAILED)
        assert sup.halt.details["errno"] == code
        critical = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
        assert any("alert NOT written" in m and STATE_WRITE_FAILED in m for m in critical)
        assert any(m.startswith("cannot write") for m in critical)
        # Halted in memory: no further cycle, /healthz says 503, nothing half-written on disk.
        assert not (state_dir / "HALTED").exists()
        assert sup.begin_cycle() is False
        assert healthz(sup) == 503
        assert (state_dir / "supervisor.json").read_bytes() == saved
        assert (state_dir / "paper" / "ledger.json").read_bytes() == ledger
        assert check_state(tmp_path).problems == []
        if code == errno.ENOSPC:  # creating an empty file needs no space: the switch works
            (state_dir / "KILL_SWITCH").touch()
            pump_until(sup, lambda: sup.telemetry.snapshot().kill_switch)
        sup.pump(2 * WRITE_RETRY_SECONDS)  # retries keep failing; the loop keeps running
        assert not (state_dir / "HALTED").exists()

        disk.error = None  # space freed / remounted read-write
        pump_until(sup, lambda: (state_dir / "HALTED").exists(), timeout=5 * WRITE_RETRY_SECONDS)
        pump_until(sup, lambda: STATE_WRITE_FAILED in alert_codes(state_dir, "critical"))
        assert healthz(sup) == 503  # still halted: the operator decides (--resume)
    finally:
        sup.stop()
    halt = json.loads((state_dir / "HALTED").read_text())
    assert halt["kind"] == "resource" and halt["reason"] == STATE_WRITE_FAILED
    actions = audit_actions(state_dir)
    assert STATE_WRITE_FAILED in actions and "actor_crashed" in actions
    if code == errno.ENOSPC:
        assert actions.index("kill_switch_activated") > actions.index(STATE_WRITE_FAILED)
    assert verify_audit_log(state_dir / "audit" / "log.jsonl").ok
    assert check_state(tmp_path).problems == []
    saved_state = json.loads((state_dir / "supervisor.json").read_text())
    assert saved_state["cycles_total"] == 2  # the halted cycle was counted once written


@pytest.mark.parametrize(
    ("actor", "pattern", "statuses"),
    [
        ("data_ingestor", r"/state/bars/", ("failed",)),
        ("trainer", r"/models/m-", ("crashed",)),
        # the judge's files (the backtester writes state/promotion/trials.json before it)
        ("promotion_judge", r"/promotion/(?!trials)", ("crashed",)),
        ("risk_governor", r"/risk/limits\.json$", ("crashed",)),
        ("paper_trader", r"/paper/ledger\.json$", ("crashed",)),
    ],
)
def test_an_actors_own_write_failure_is_a_failed_step(
    prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, actor: str, pattern: str,
    statuses: tuple[str, ...],
) -> None:
    stepname = STEP_OF[actor]
    copy_prepared(prepared, tmp_path)
    cfg = reliability_config(tmp_path)
    state_dir = tmp_path / "state"
    regex = re.compile(pattern)
    disk = BrokenDisk(monkeypatch, lambda p: bool(regex.search(p.as_posix())))
    sup = Supervisor(load_config(cfg), default_specs())
    sup.start()
    try:
        files = {p: p.read_bytes() for p in [*state_dir.rglob("*.json"),
                                             *(tmp_path / "models").rglob("*.json")]
                 if regex.search(p.as_posix())}
        disk.error = errno.ENOSPC
        second = sup.run_once()
        disk.error = None
        assert second is not None and second.outcome == "failed", second
        record = step(second, stepname)
        assert record.status in statuses, record
        assert disk.refused > 0 and not sup.halted  # the supervisor's own writes still work
        if record.status == "crashed":
            pump_until(sup, lambda: sup.children[actor].generation == 2
                       and sup.children[actor].ref is not None)
        for path, data in files.items():  # the previous version is intact
            assert path.read_bytes() == data, path
        assert check_state(tmp_path).problems == []
        third = sup.run_once()
        assert third is not None and third.outcome == "succeeded", third
    finally:
        sup.stop()
    assert verify_audit_log(state_dir / "audit" / "log.jsonl").ok


# --- a real tmpfs under a live daemon ---------------------------------------------------------


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=False)


@contextlib.contextmanager
def tmpfs(*paths: Path, size: str = "16m") -> Iterator[None]:
    """A fresh tmpfs mounted on each of ``paths`` (unmounted at exit)."""
    mounted: list[Path] = []
    try:
        for path in paths:
            path.mkdir(parents=True, exist_ok=True)
            result = _run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
            if result.returncode != 0:
                pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
            mounted.append(path)
        yield
    finally:
        for path in reversed(mounted):
            if _run("umount", str(path)).returncode != 0:
                _run("umount", "-l", str(path))


def remount(path: Path, flag: str) -> None:
    """``mount -o remount,<flag>``; retried while a write is in flight (EBUSY), bounded."""
    problems = []
    for _ in range(200):
        result = _run("mount", "-o", f"remount,{flag}", str(path))
        if result.returncode == 0:
            return
        problems.append(result.stderr.strip())
    raise AssertionError(f"cannot remount {path} {flag}: {problems[-1]}")


def fill(folder: Path) -> Path:
    """Write a file until the file system is full; return it."""
    filler = folder / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as out:
        with contextlib.suppress(OSError):
            while True:
                out.write(chunk)
        for size in (4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    out.write(chunk[:size])
    return filler


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["full", "read-only"])
def test_live_daemon_on_a_tmpfs_that_fills_up_or_turns_read_only(
    tmp_path: Path, mode: str, fork_server: ForkServer
) -> None:
    """``full``: ``state/`` is a 16 MB tmpfs, filled up under the daemon (ENOSPC), then freed.
    ``read-only``: ``state/audit`` and ``state/alerts`` are tmpfs mounts remounted read-only
    (EROFS), then read-write. (``state/`` itself cannot be remounted read-only while the daemon
    holds its lock file open for writing: the kernel answers EBUSY.)"""
    state_dir = tmp_path / "state"
    write_bars(tmp_path, FIRST_BARS)
    cfg = reliability_config(tmp_path, monitoring={"listen_port": 0})
    log = tmp_path / "daemon.log"
    mounts = [state_dir] if mode == "full" else [state_dir / "audit", state_dir / "alerts"]
    with tmpfs(*mounts):
        # supervisor.py's main, forked from the session's fork server (no interpreter start)
        proc = fork_server.spawn([str(cfg), "--daemon", "--interval-minutes", "0.01",
                                  "--log-format", "text"], tmp_path, log)
        try:
            text = lambda: log.read_text(errors="replace")  # noqa: E731
            wait_until(lambda: "succeeded" in text() or proc.poll() is not None, 60,
                       "a successful cycle")
            assert proc.poll() is None, text()[-3000:]
            port = int(re.findall(r"http://127\.0\.0\.1:(\d+)", text())[0])
            url = f"http://127.0.0.1:{port}"
            assert http_get(url + "/healthz")[0] == 200

            filler = fill(state_dir) if mode == "full" else None
            for mount in mounts if mode == "read-only" else []:
                remount(mount, "ro")
            halted = f"halted: {STATE_WRITE_FAILED}"
            wait_until(lambda: halted in http_get(url + "/healthz")[1].decode(), 30,
                       "/healthz to report the resource halt")
            assert http_get(url + "/healthz")[0] == 503
            assert proc.poll() is None  # halted, not dead
            # the halt is served before its alert line is logged: wait for the line, bounded
            wait_until(lambda: "CRITICAL" in text() and f"[{STATE_WRITE_FAILED}]" in text(), 10,
                       "the critical state_write_failed line in the daemon log")
            if filler is not None:
                assert not (state_dir / "HALTED").exists()
                (state_dir / "KILL_SWITCH").touch()  # an empty file needs no space: it works
                wait_until(lambda: metric_samples(http_get(url + "/metrics")[1].decode())[
                    ("aistock_kill_switch_active", ())] == 1.0, 10, "the kill switch")
                filler.unlink()
            for mount in mounts if mode == "read-only" else []:
                remount(mount, "rw")
            wait_until(lambda: STATE_WRITE_FAILED in alert_codes(state_dir, "critical"), 10,
                       "the halt's alert to be written")
            assert http_get(url + "/healthz")[0] == 503
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
        assert code == 0, text()[-3000:]
        halt = json.loads((state_dir / "HALTED").read_text())
        assert halt["kind"] == "resource" and halt["reason"] == STATE_WRITE_FAILED
        actions = audit_actions(state_dir)
        assert STATE_WRITE_FAILED in actions
        assert verify_audit_log(state_dir / "audit" / "log.jsonl").ok
        assert check_state(tmp_path).problems == []


@pytest.mark.parametrize("failing_write", [2, 3], ids=["verdict", "after-activation"])
def test_a_manifest_write_failing_during_a_promotion_never_activates_an_unapproved_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_write: int
) -> None:
    """The judge writes the manifest (1) before the verdict, (2) with the ``approved`` verdict
    before it moves the pointer (write-ahead), (3) after. Whichever of 2 and 3 fails, no model
    the manifest does not approve is active. (Before the write-ahead change, 3b6cf29, the
    pointer moved first: this test and the SIGKILL loop caught it.)"""
    write_bars(tmp_path, FIRST_BARS)  # no model yet: the first candidate gets promoted
    cfg = reliability_config(tmp_path)
    manifest = (tmp_path / "state" / "promotion" / "manifest.json").resolve()
    writes = {"n": 0}

    def nth_manifest_write(path: Path) -> bool:
        if path.resolve() != manifest:
            return False
        writes["n"] += 1
        return writes["n"] == failing_write

    disk = BrokenDisk(monkeypatch, nth_manifest_write)
    disk.error = errno.ENOSPC
    sup = Supervisor(load_config(cfg), default_specs())
    sup.start()
    try:
        summary = sup.run_once()
    finally:
        sup.stop()
    assert summary is not None and step(summary, "judge").status == "crashed"
    assert disk.refused == 1
    problems = check_state(tmp_path).problems
    assert not any("never approved" in p or "rolled back or retired" in p for p in problems)
    if failing_write == 2:  # nothing recorded, nothing moved
        assert problems == [] and pointer(tmp_path) is None


def test_a_manifest_write_failing_during_a_rollback_keeps_pointer_and_manifest_in_step(
    prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A degradation rollback whose manifest write fails moves nothing. (Before 17f9e25 the
    pointer moved first and the rolled-back model stayed ``approved`` and out of
    ``rolled_back_models``; the 200-kill run then picked it again as a rollback target.)"""
    copy_prepared(prepared, tmp_path)
    active = json.loads((tmp_path / "models" / "active" / "model.json").read_text())["id"]
    # Its paper record falls far short of the backtest's promise: the judge rolls it back.
    atomic_write_json(tmp_path / "state" / "paper" / "performance.json",
                      PaperPerformance(model_id=active, returns=[-0.01] * 30))
    cfg = reliability_config(tmp_path, headless={"auto_rollback_on_degradation": True,
                                                 "degradation_threshold_pct": 0.0})
    manifest = (tmp_path / "state" / "promotion" / "manifest.json").resolve()
    disk = BrokenDisk(monkeypatch, lambda path: path.resolve() == manifest)
    disk.error = errno.ENOSPC  # the first manifest write of the step: right after the pointer
    sup = Supervisor(load_config(cfg), default_specs())
    sup.start()
    try:
        summary = sup.run_once()
    finally:
        sup.stop()
    assert summary is not None and step(summary, "judge").status == "crashed"
    assert disk.refused == 1
    assert check_state(tmp_path).problems == []
