"""#17: the audit chain is anchored by a keyed head outside state/: a cut tail, a deleted log and
an edited-then-recomputed chain fail ``--audit-verify`` (exit 5) and halt the daemon at start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from _support.paper_support import Rig
from _support.support import alert_codes

from aistock_actors.store.audit import GENESIS, AuditLog, line_hash, verify_audit_log
from aistock_actors.store.audit_anchor import AuditAnchor
from aistock_actors.store.signing import IntegrityKey
from aistock_actors.store.state import read_halt

SUPERVISOR = Path(__file__).resolve().parents[2] / "supervisor.py"


def anchored(tmp_path: Path, count: int = 6) -> tuple[Path, AuditAnchor]:
    path = tmp_path / "state" / "audit" / "log.jsonl"
    anchor = AuditAnchor(IntegrityKey(tmp_path / "integrity.key"), path)
    log = AuditLog(path, anchor=anchor)
    for n in range(count):
        log.append("test_action", "tester", {"n": n})
    return path, anchor


def rechain(path: Path, lines: list[bytes]) -> None:
    """What an attacker with write access to state/ does: edit, then recompute every prev."""
    prev, out = GENESIS, []
    for line in lines:
        record = json.loads(line)
        record["prev"] = prev
        raw = msgspec.json.encode(record)
        out.append(raw)
        prev = line_hash(raw)
    path.write_bytes(b"".join(raw + b"\n" for raw in out))


def test_an_intact_anchored_log_verifies_and_the_head_is_outside_state(tmp_path: Path) -> None:
    path, anchor = anchored(tmp_path)
    assert verify_audit_log(path, anchor).ok
    assert not anchor.path.is_relative_to(tmp_path / "state")
    head, problem = anchor.read()
    assert problem is None and head is not None and head.records == 6


def test_a_cut_tail_is_detected(tmp_path: Path) -> None:
    path, anchor = anchored(tmp_path)
    path.write_bytes(b"".join(line + b"\n" for line in path.read_bytes().split(b"\n")[:4]))
    assert verify_audit_log(path).ok  # the bare chain cannot tell
    result = verify_audit_log(path, anchor)
    assert not result.ok and result.reason == (
        "the log was cut: it holds 4 records, its anchored head 6")


def test_a_deleted_log_is_detected(tmp_path: Path) -> None:
    path, anchor = anchored(tmp_path)
    path.unlink()
    result = verify_audit_log(path, anchor)
    assert not result.ok and "missing but its anchored head records 6" in str(result.reason)


def test_an_edited_and_recomputed_chain_is_detected(tmp_path: Path) -> None:
    path, anchor = anchored(tmp_path)
    lines = path.read_bytes().split(b"\n")[:-1]
    lines[1] = lines[1].replace(b'"n":1', b'"n":99')
    rechain(path, lines)
    assert verify_audit_log(path).ok
    result = verify_audit_log(path, anchor)
    assert not result.ok and "chain was rewritten" in str(result.reason)


def test_a_forged_head_fails_its_keyed_check(tmp_path: Path) -> None:
    path, anchor = anchored(tmp_path)
    path.write_bytes(b"".join(line + b"\n" for line in path.read_bytes().split(b"\n")[:4]))
    head = json.loads(anchor.path.read_text())
    head["records"], head["last_hash"] = 4, line_hash(path.read_bytes().split(b"\n")[3])
    anchor.path.write_text(json.dumps(head))
    result = verify_audit_log(path, anchor)
    assert not result.ok and "fails its keyed check" in str(result.reason)


def test_a_log_longer_than_its_head_still_verifies(tmp_path: Path) -> None:
    """A crash between the append and the head write, or an unanchored writer."""
    path, anchor = anchored(tmp_path)
    AuditLog(path).append("late", "tester")
    assert verify_audit_log(path, anchor).ok


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"state_dir": str(tmp_path / "state"),
                                "models_dir": str(tmp_path / "models")}))
    return path


@pytest.mark.parametrize("attack", ["cut", "delete", "rechain"])
def test_cli_audit_verify_exits_5_on_each_attack(
    tmp_path: Path, config: Path, attack: str
) -> None:
    path, _ = anchored(tmp_path)
    lines = path.read_bytes().split(b"\n")[:-1]
    if attack == "cut":
        path.write_bytes(b"".join(line + b"\n" for line in lines[:-2]))
    elif attack == "delete":
        path.unlink()
    else:
        rechain(path, [lines[0].replace(b'"n":0', b'"n":5'), *lines[1:]])
    done = subprocess.run([sys.executable, str(SUPERVISOR), str(config), "--audit-verify"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 5, done.stdout + done.stderr
    assert done.stdout.startswith("audit log BROKEN") and "Traceback" not in done.stderr


def test_the_daemon_halts_at_start_on_a_cut_chain(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.once()
    path = rig.state_dir / "audit" / "log.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in path.read_bytes().split(b"\n")[:2]))
    sup = rig.supervisor()
    try:
        assert sup.run_once() is None  # refused: halted
    finally:
        sup.stop()
    halt = read_halt(rig.state_dir)
    assert halt is not None and halt.reason == "audit_chain_broken"
    assert "the log was cut" in halt.message
    assert "audit_chain_broken" in alert_codes(rig.state_dir, "critical")
