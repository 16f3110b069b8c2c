"""The hash-chained audit log: tamper evidence, torn tails, concurrency and SIGKILL (T1).

What an operator relies on: ``--audit-verify`` names the first line that no longer chains (and
exits 5), a crash never breaks the chain, and every action reported as done is in the log.
"""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import msgspec
import pytest
from _support.store_helpers import load_helper
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aistock_actors.store.audit import (
    GENESIS,
    AuditLog,
    AuditRecord,
    AuditVerification,
    line_hash,
    read_audit,
    verify_audit_log,
)

REPO = Path(__file__).resolve().parents[2]
SUPERVISOR = REPO / "supervisor.py"
HELPERS = Path(__file__).resolve().parent / "_helpers"
APPENDER = HELPERS / "audit_appender.py"

CHAIN_BROKEN = (
    "hash chain broken: this line's 'prev' does not match the line before it "
    "(that line or this one was edited, removed or inserted)"
)


procs = load_helper("procs")


def make_log(path: Path, count: int) -> AuditLog:
    log = AuditLog(path)
    for n in range(count):
        log.append("test_action", "tester", {"n": n, "note": "ok"})
    return log


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def cli(config: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SUPERVISOR), str(config), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


@pytest.fixture
def state_config(tmp_path: Path) -> tuple[Path, Path]:
    """A config whose state_dir is absolute; returns (config path, audit log path)."""
    state = tmp_path / "state"
    config = tmp_path / "config.json"
    config.write_text(msgspec.json.encode({"state_dir": str(state)}).decode())
    return config, state / "audit" / "log.jsonl"


# --------------------------------------------------------------------------------------------
# Basic chain
# --------------------------------------------------------------------------------------------


def test_records_chain_from_genesis(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "log.jsonl"
    log = AuditLog(path)
    first = log.append("kill_switch_set_by_operator", "operator", {"file": "state/KILL_SWITCH"})
    second = log.append("operator_resumed", "operator")
    raw = lines_of(path)
    assert len(raw) == 2
    assert first.prev == GENESIS
    assert second.prev == line_hash(raw[0])
    records, torn = read_audit(path)
    assert (records, torn) == ([first, second], False)
    assert records[1].details == {}
    result = verify_audit_log(path)
    assert (result.ok, result.records, result.first_broken_line, result.torn_tail) == (
        True,
        2,
        None,
        False,
    )


def test_missing_log_verifies_as_empty(tmp_path: Path) -> None:
    assert verify_audit_log(tmp_path / "nope.jsonl").ok
    assert read_audit(tmp_path / "nope.jsonl") == ([], False)


def test_many_appends_verify(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    make_log(path, 500)
    result = verify_audit_log(path)
    assert result.ok and result.records == 500


def test_chain_survives_records_larger_than_the_read_chunk(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = AuditLog(path)
    for size in (10, 9000, 20_000, 3, 8192, 8191, 1):
        log.append("blob", "tester", {"blob": "x" * size})
    result = verify_audit_log(path)
    assert result.ok and result.records == 7


def test_concurrent_appends_from_threads_verify(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    shared = AuditLog(path)
    threads_n, per_thread = 8, 40
    barrier = threading.Barrier(threads_n, timeout=30)
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        # Half share one AuditLog (thread lock), half use their own (flock on separate fds).
        log = shared if index % 2 else AuditLog(path)
        try:
            barrier.wait()
            for seq in range(per_thread):
                log.append("tick", f"thread-{index}", {"thread": index, "seq": seq})
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    result = verify_audit_log(path)
    assert result.ok and result.records == threads_n * per_thread
    records, _ = read_audit(path)
    per: dict[int, list[int]] = defaultdict(list)
    for record in records:
        per[record.details["thread"]].append(record.details["seq"])
    assert per == {i: list(range(per_thread)) for i in range(threads_n)}


def test_concurrent_appends_from_two_processes_verify(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "log.jsonl"
    count = 400
    gate = tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, str(APPENDER), str(path), gen, str(count), str(gate)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for gen in ("a", "b")
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"go.{gen}.ready").exists() for gen in ("a", "b")):
        assert time.monotonic() < deadline, "children did not start"
        time.sleep(0.01)
    gate.touch()  # both are imported and waiting: they append at the same time
    for child in children:
        _, err = child.communicate(timeout=60)
        assert child.returncode == 0, err.decode()
    result = verify_audit_log(path)
    assert result.ok, result
    assert result.records == 2 * count
    records, torn = read_audit(path)
    assert not torn
    per: dict[str, list[int]] = defaultdict(list)
    for record in records:
        per[record.details["gen"]].append(record.details["seq"])
    assert per == {"a": list(range(count)), "b": list(range(count))}
    # Both really ran at the same time: their records interleave.
    gens = [record.details["gen"] for record in records]
    assert sum(1 for x, y in itertools.pairwise(gens) if x != y) > 1


# --------------------------------------------------------------------------------------------
# Tampering
# --------------------------------------------------------------------------------------------


def test_hand_edited_details_breaks_the_chain_at_the_next_line(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    make_log(path, 6)
    lines = lines_of(path)
    assert b'"note":"ok"' in lines[2]
    lines[2] = lines[2].replace(b'"note":"ok"', b'"note":"oK"')  # one character, still JSON
    write_lines(path, lines)
    result = verify_audit_log(path)
    assert not result.ok
    assert result.first_broken_line == 4  # line 3's successor no longer chains to it
    assert result.records == 3
    assert result.reason == CHAIN_BROKEN


def test_cli_audit_verify_reports_the_broken_line_and_exits_5(
    tmp_path: Path, state_config: tuple[Path, Path]
) -> None:
    config, log_path = state_config
    make_log(log_path, 6)
    ok = cli(config, "--audit-verify", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == f"audit log OK: 6 records, hash chain intact ({log_path})\n"

    lines = lines_of(log_path)
    lines[1] = lines[1].replace(b'"n":1', b'"n":7')
    write_lines(log_path, lines)
    broken = cli(config, "--audit-verify", cwd=tmp_path)
    assert broken.returncode == 5
    assert broken.stdout.startswith("audit log BROKEN at line 3: ")
    assert broken.stdout == (
        f"audit log BROKEN at line 3: {CHAIN_BROKEN} ({log_path}; 2 records verified before it)\n"
    )
    assert "Traceback" not in broken.stderr


def test_edit_that_makes_a_line_unreadable_is_named(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    make_log(path, 5)
    lines = lines_of(path)
    lines[1] = lines[1][:-1]  # drop the closing brace
    write_lines(path, lines)
    result = verify_audit_log(path)
    assert not result.ok
    assert result.first_broken_line == 2
    assert result.records == 1
    assert result.reason is not None and result.reason.startswith("unreadable: ")


@pytest.mark.parametrize(("deleted", "broken_at"), [(0, 1), (2, 3), (4, 5)])
def test_deleting_a_line_is_detected(tmp_path: Path, deleted: int, broken_at: int) -> None:
    path = tmp_path / "log.jsonl"
    make_log(path, 6)
    lines = lines_of(path)
    del lines[deleted]
    write_lines(path, lines)
    result = verify_audit_log(path)
    assert not result.ok
    assert result.first_broken_line == broken_at
    assert result.reason == CHAIN_BROKEN


def test_swapping_two_lines_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    make_log(path, 5)
    lines = lines_of(path)
    lines[1], lines[2] = lines[2], lines[1]
    write_lines(path, lines)
    result = verify_audit_log(path)
    assert not result.ok and result.first_broken_line == 2


# --------------------------------------------------------------------------------------------
# Torn tail (a crash mid-write)
# --------------------------------------------------------------------------------------------


def test_torn_last_line_is_skipped_reported_and_discarded_on_next_append(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = make_log(path, 4)
    garbage = b'{"ts":"2026-01-01T00:00:00Z","action":"half'
    with open(path, "ab") as handle:
        handle.write(garbage)

    records, torn = read_audit(path)
    assert torn is True
    assert [r.details["n"] for r in records] == [0, 1, 2, 3]
    result = verify_audit_log(path)
    assert (result.ok, result.records, result.torn_tail) == (True, 4, True)

    new = log.append("after_crash", "tester", {"n": 4})
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    assert garbage not in raw
    records, torn = read_audit(path)
    assert torn is False
    assert [r.action for r in records[-2:]] == ["audit_torn_tail_discarded", "after_crash"]
    note = records[-2]
    assert note.actor == "audit"
    assert note.details == {"bytes": len(garbage)}
    assert records[-1] == new
    result = verify_audit_log(path)
    assert (result.ok, result.records, result.torn_tail) == (True, 6, False)


def test_cli_audit_verify_mentions_a_torn_tail(
    tmp_path: Path, state_config: tuple[Path, Path]
) -> None:
    config, log_path = state_config
    make_log(log_path, 3)
    with open(log_path, "ab") as handle:
        handle.write(b'{"ts":')
    done = cli(config, "--audit-verify", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "audit log OK: 3 records, hash chain intact "
        f"(a torn last line from a crash was skipped) ({log_path})\n"
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    complete=st.integers(min_value=0, max_value=3),
    record_size=st.integers(min_value=0, max_value=12_000),
    garbage=st.binary(min_size=1, max_size=20_000).map(lambda b: b.replace(b"\n", b"?")),
)
def test_any_torn_tail_is_discarded_and_the_chain_still_verifies(
    tmp_path: Path, complete: int, record_size: int, garbage: bytes
) -> None:
    path = tmp_path / "h.jsonl"
    path.unlink(missing_ok=True)
    log = AuditLog(path)
    for n in range(complete):
        log.append("before", "tester", {"n": n, "pad": "p" * record_size})
    with open(path, "ab") as handle:
        handle.write(garbage)
    records, torn = read_audit(path)
    assert torn and len(records) == complete
    assert verify_audit_log(path) == AuditVerification(ok=True, records=complete, torn_tail=True)
    log.append("after", "tester", {"n": complete})
    result = verify_audit_log(path)
    assert (result.ok, result.records, result.torn_tail) == (True, complete + 2, False)
    records, torn = read_audit(path)
    assert not torn
    assert records[complete].action == "audit_torn_tail_discarded"
    assert records[complete].details == {"bytes": len(garbage)}
    assert [r.details.get("n") for r in records if r.action != "audit_torn_tail_discarded"] == list(
        range(complete + 1)
    )


# --------------------------------------------------------------------------------------------
# SIGKILL loop (acceptance): the chain verifies after every kill; acknowledged == present
# --------------------------------------------------------------------------------------------

KILLS = 60


@pytest.mark.slow
def test_sigkill_loop_chain_verifies_and_acknowledged_records_are_present(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "log.jsonl"
    seed = random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    acked: dict[str, list[int]] = {}
    interrupted = 0
    for run in range(KILLS):
        gen = f"g{run}"
        err_path = tmp_path / f"stderr-{run}.txt"
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, str(APPENDER), str(path), gen],
                stdout=subprocess.PIPE,
                stderr=err,
                bufsize=0,
            )
        reader = procs.LineReader(proc)
        try:
            if rng.random() < 0.2:
                time.sleep(rng.uniform(0.0, 0.12))  # start-up or first appends
            else:
                reader.wait_for_lines(1, timeout=15.0)
                time.sleep(rng.uniform(0.0, 0.015))
        finally:
            procs.kill_and_drain(proc, reader)
        where = f"seed={seed} run={run}"
        procs.assert_killed_cleanly(proc, err_path, where)
        acks = [int(line) for line in reader.lines]
        assert acks == list(range(len(acks))), where
        acked[gen] = acks
        interrupted += bool(acks)

        result = verify_audit_log(path) if path.exists() else None
        if result is not None:
            assert result.ok, f"{where}: chain broken after SIGKILL: {result}"
        records, _ = read_audit(path) if path.exists() else ([], False)
        present: dict[str, list[int]] = defaultdict(list)
        for record in records:
            if record.action == "test_tick":
                present[record.details["gen"]].append(record.details["seq"])
        if result is not None:
            assert result.records == len(records), where
        for g, acks_g in acked.items():
            got = present.get(g, [])
            # Every acknowledged record is there, in order, with no gaps; at most one more
            # (appended and fsynced, killed before it could print the acknowledgement).
            assert got == list(range(len(got))), f"{where}: gen {g} has gaps: {got[-5:]}"
            assert len(acks_g) <= len(got) <= len(acks_g) + 1, (
                f"{where}: gen {g}: acknowledged {len(acks_g)}, present {len(got)}"
            )
    assert interrupted >= KILLS // 2
    # A clean append after the last kill still extends a valid chain.
    AuditLog(path).append("after_loop", "tester")
    final = verify_audit_log(path)
    assert final.ok and not final.torn_tail
    total_acked = sum(len(a) for a in acked.values())
    assert final.records >= total_acked + 1


def test_audit_record_type_is_what_is_written(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    record = AuditLog(path).append("a", "b", {"k": [1, 2]})
    assert msgspec.json.decode(lines_of(path)[0], type=AuditRecord) == record
