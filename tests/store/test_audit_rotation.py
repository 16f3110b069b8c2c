"""#18 (with #17): the audit log rotates at a size, the hash chain runs on across files, only the
newest rotated files are kept, and verification still catches edits in any kept file."""

from __future__ import annotations

import json
from pathlib import Path

from aistock_actors.store.audit import AuditLog, read_audit, rotated_files, verify_audit_log
from aistock_actors.store.audit_anchor import AuditAnchor
from aistock_actors.store.signing import IntegrityKey


def fill(tmp_path: Path, n: int, keep: int = 50) -> tuple[AuditLog, AuditAnchor]:
    path = tmp_path / "state" / "audit" / "log.jsonl"
    anchor = AuditAnchor(IntegrityKey(tmp_path / "integrity.key"), path)
    log = AuditLog(path, anchor=anchor, max_bytes=4096, keep_files=keep)
    for i in range(n):
        log.append("test_action", "tester", {"i": i, "pad": "x" * 200})
    return log, anchor


def test_the_chain_runs_on_across_rotated_files(tmp_path: Path) -> None:
    log, anchor = fill(tmp_path, 100)
    parts = rotated_files(log.path)
    assert len(parts) >= 4 and all(p.stat().st_size < 4096 + 600 for p in parts)
    first, _ = read_audit(log.path)
    assert first[0].action == "audit_log_rotated"
    assert first[0].details == {"previous_file": parts[-1].name}
    result = verify_audit_log(log.path, anchor)
    assert result.ok and result.records == 100 + len(parts)


def test_only_the_newest_rotated_files_are_kept_and_still_verify(tmp_path: Path) -> None:
    log, anchor = fill(tmp_path, 200, keep=3)
    parts = rotated_files(log.path)
    assert len(parts) == 3 and parts[0].name != "log.000001.jsonl"
    assert verify_audit_log(log.path, anchor).ok


def test_an_edit_in_a_rotated_file_is_detected(tmp_path: Path) -> None:
    log, anchor = fill(tmp_path, 100)
    victim = rotated_files(log.path)[1]
    lines = victim.read_bytes().split(b"\n")
    record = json.loads(lines[2])
    record["details"]["i"] = -1
    lines[2] = json.dumps(record, separators=(",", ":")).encode()
    victim.write_bytes(b"\n".join(lines))
    result = verify_audit_log(log.path, anchor)
    assert not result.ok and str(result.reason).startswith(f"{victim.name}: hash chain broken")


def test_a_deleted_middle_file_breaks_the_chain(tmp_path: Path) -> None:
    log, anchor = fill(tmp_path, 100)
    rotated_files(log.path)[1].unlink()
    assert not verify_audit_log(log.path, anchor).ok


def test_a_writer_on_the_old_file_follows_the_rotation(tmp_path: Path) -> None:
    """Two appenders (as the daemon and an operator command are): each opens the current file."""
    log, anchor = fill(tmp_path, 10)
    other = AuditLog(log.path, anchor=anchor)  # no max_bytes: never rotates itself
    for i in range(60):
        (log if i % 2 else other).append("mixed", "tester", {"i": i, "pad": "y" * 200})
    assert rotated_files(log.path) and verify_audit_log(log.path, anchor).ok
