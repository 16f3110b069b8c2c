"""#18: the paper ledger's old equity points move to append-only monthly files; both earlier
ledger formats load with the same drawdown and live returns; no point is lost or archived twice."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from _support.curve_reference import daily_points as days
from _support.curve_reference import old_drawdown, old_model_returns, same
from _support.docs_support import documented
from _support.fault_harness import check_state
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aistock_actors.core.trading.curve import (
    CURVE_BATCH,
    RECENT_POINTS,
    model_record,
    model_returns,
)
from aistock_actors.core.trading.ledger import (
    LedgerState,
    current_drawdown,
    performance_snapshot,
    reconcile,
)
from aistock_actors.errors import StateError
from aistock_actors.store.alerts import AlertSink, list_alerts
from aistock_actors.store.equity_archive import EquityArchive
from aistock_actors.store.fill_archive import month_name
from aistock_actors.store.journal import FillJournal
from aistock_actors.store.ledger import PaperStore
from aistock_actors.store.paper_status import paper_status

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]
JQ_STAND_IN = REPO / "tests" / "_support" / "docs_support.py"


def store_at(tmp_path: Path) -> PaperStore:
    return PaperStore(tmp_path / "state", AlertSink(tmp_path / "alerts"), 100_000.0,
                      keep_closing_fills=30)


def install(fixture: str, store: PaperStore) -> LedgerState:
    """Copy a fixture's files into ``state/paper``; the ledger as that format wrote it."""
    shutil.copytree(FIXTURES / fixture, store.root, dirs_exist_ok=True)
    return msgspec.json.decode((store.root / "ledger.json").read_bytes(), type=LedgerState)


def grown(state: LedgerState, points: list[tuple[str, float]]) -> LedgerState:
    return msgspec.structs.replace(state, equity_curve=[*state.equity_curve, *points])


@pytest.mark.parametrize("fixture", ["ledger_v1", "ledger_v2"])
def test_both_earlier_formats_load_with_the_same_drawdown_and_returns(
    tmp_path: Path, fixture: str
) -> None:
    store = store_at(tmp_path)
    old = install(fixture, store)
    opened = store.open_ledger()
    whole = old.equity_curve
    assert store.equity.curve_since(0, opened) == whole  # not a point lost, none twice
    assert all(same(a, b) for a, b in zip(current_drawdown(opened),
                                          old_drawdown(whole, old.drawdown_base), strict=True))
    returns = old_model_returns(whole, old.model_since)
    record = model_record(opened)
    assert (record.count, record.growth) == (len(returns), math.prod(1.0 + r for r in returns))
    assert reconcile(opened) == [] and store.fills_since(0)[-20:] == opened.fills
    assert FillJournal(store.journal.path).rebuild() == opened  # the old journal replays on
    status = paper_status(tmp_path / "state")
    assert status is not None and status.drawdown == current_drawdown(opened).value


def test_the_previous_format_moves_its_old_points_and_keeps_what_that_code_computed(
    tmp_path: Path,
) -> None:
    """ledger_v2 (3,000 points, written by c9eaa63) against the figures that code computed."""
    store = store_at(tmp_path)
    install("ledger_v2", store)
    expected = json.loads((FIXTURES / "ledger_v2" / "expected.json").read_text())
    opened = store.open_ledger()
    assert len(opened.equity_curve) == RECENT_POINTS and opened.curve_archived == 1_000
    assert any("paper_ledger_migrated" in p.name for p in list_alerts(tmp_path / "alerts", "info"))
    dd = current_drawdown(opened)
    assert (dd.value, dd.equity, dd.peak) == (
        expected["drawdown"], expected["drawdown_equity"], expected["drawdown_peak"])
    record, newest = model_record(opened), model_returns(opened)
    assert record.count == expected["model_returns"] and record.growth - 1.0 == (
        expected["realised_return"])
    assert opened.model_archived is not None and newest[-3:] == expected["last_returns"]
    assert [p.name for p in store.equity.files()] == [  # 1,000 days from 2015-01-01
        f"{y}-{m:02d}.jsonl" for y in (2015, 2016, 2017) for m in range(1, 13)][:33]
    on_disk = store.ledger_path.stat().st_size
    assert on_disk < (FIXTURES / "ledger_v2" / "ledger.json").stat().st_size * 0.7


def test_points_move_in_batches_and_the_documented_jq_line_gives_the_whole_curve(
    tmp_path: Path,
) -> None:
    store = store_at(tmp_path)
    state = store.open_ledger()
    written = 0
    for _ in range(12):  # 3,000 points, 250 per save
        state = store.save_ledger(grown(state, days(written, 250)))
        written += 250
        assert len(state.equity_curve) <= RECENT_POINTS + CURVE_BATCH
    assert state.curve_archived == 750 and len(state.equity_curve) == 2_250  # moved at 2,750
    records = [json.loads(line) for path in sorted(store.equity.root.glob("*.jsonl"))
               for line in path.read_text().splitlines()]
    # cat state/paper/equity/*.jsonl | jq -s 'unique_by(.seq) | map([.timestamp, .equity])'
    by_seq = {r["seq"]: (r["timestamp"], r["equity"]) for r in records}
    assert [by_seq[k] for k in sorted(by_seq)] + state.equity_curve == days(0, 3_000)
    command = next(c for c in documented(REPO) if c.startswith("cat state/paper/equity/"))
    jq = [] if shutil.which("jq") else [f'jq() {{ "{sys.executable}" "{JQ_STAND_IN}" "$@"; }}; ']
    done = subprocess.run(["bash", "-o", "pipefail", "-c", "".join([*jq, command])],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True)
    assert [tuple(p) for p in json.loads(done.stdout)] == days(0, 750)  # the README's jq line
    assert store.equity.curve_since(2_990, state) == days(2_990, 10)
    assert store.equity.curve_tail(2_500, state) == days(500, 2_500)
    whole = msgspec.structs.replace(state, equity_curve=days(0, 3_000), curve_archived=0)
    # the risk governor's window reaching past the ledger's (risk.performance_window 2,400)
    assert performance_snapshot(state, 2_400, curve=store.equity.curve_tail(2_401, state)) == (
        performance_snapshot(whole, 2_400))
    assert FillJournal(store.journal.path).rebuild() == state
    oldest = store.equity.files()[0]  # a tail read opens only the months it needs
    oldest.write_bytes(b"garbage\n" + oldest.read_bytes())
    assert store.equity.curve_tail(2_500, state) == days(500, 2_500)
    with pytest.raises(StateError, match=rf"{oldest.name}: line 1 is damaged"):
        store.equity.curve_since(0, state)


def test_a_crash_between_archive_and_ledger_write_archives_nothing_twice(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    saved = store.save_ledger(grown(store.open_ledger(), days(0, RECENT_POINTS + CURVE_BATCH)))
    assert saved.curve_archived == 0
    state = grown(saved, days(RECENT_POINTS + CURVE_BATCH, 1))
    assert store.equity.append(state.equity_curve[: CURVE_BATCH + 1], 0) == CURVE_BATCH + 1
    # ... killed here: the archive holds the batch, the ledger on disk still holds it too
    again = store_at(tmp_path)
    reopened = again.open_ledger()
    assert reopened == saved
    n = RECENT_POINTS + CURVE_BATCH
    later = again.save_ledger(grown(reopened, days(n, 2)))
    seqs = [r.seq for r in EquityArchive(again.equity.root).read()]
    lines = sum(len(p.read_bytes().splitlines()) for p in again.equity.files())
    assert seqs == list(range(CURVE_BATCH + 2)) and lines == CURVE_BATCH + 2
    assert again.equity.curve_since(0, later) == days(0, n + 2)


def test_a_torn_archive_line_is_dropped_and_a_damaged_one_named(tmp_path: Path) -> None:
    archive = EquityArchive(tmp_path / "equity")
    points = days(0, 5)
    archive.append(points[:3], 0)
    path = archive.root / month_name(points[0][0])
    with path.open("ab") as handle:
        handle.write(b'{"seq": 3, "times')  # a crash mid-append
    reread = EquityArchive(archive.root)
    assert [r.seq for r in reread.read()] == [0, 1, 2] and reread.high_water() == 3
    reread.append(points, 0)  # the torn tail is dropped, not glued to; 0..2 not repeated
    assert EquityArchive(archive.root).points() == points
    path.write_bytes(b"garbage\n" + path.read_bytes())
    with pytest.raises(StateError, match=r"2000-01.jsonl: line 1 is damaged"):
        EquityArchive(archive.root).read()


def test_deleted_archive_files_raise_an_error_alert_and_archiving_goes_on(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    state = store.save_ledger(grown(store.open_ledger(), days(0, RECENT_POINTS + CURVE_BATCH + 1)))
    assert store.equity.files()
    for path in store.equity.files():
        path.unlink()
    later = store_at(tmp_path)
    state = later.open_ledger()
    n = RECENT_POINTS + CURVE_BATCH + 1
    state = later.save_ledger(grown(state, days(n, CURVE_BATCH + 1)))
    assert state.curve_archived == 2 * (CURVE_BATCH + 1)
    assert any("paper_equity_archive_gap" in p.name
               for p in list_alerts(tmp_path / "alerts", "error"))
    whole = later.equity.curve_since(0, state)  # what is left: the gap is not papered over
    assert whole == days(CURVE_BATCH + 1, n)
    problems = check_state(tmp_path).problems  # the kill loops' invariant sees the gap too
    assert f"equity archive: holds {CURVE_BATCH + 1} of the ledger's {2 * (CURVE_BATCH + 1)} " \
        "archived points" in problems


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.integers(1, 40), min_size=1, max_size=5), cut=st.integers(0, 4_000),
       data=st.data())
def test_an_archive_killed_mid_append_stays_loadable_and_loses_or_doubles_nothing(
    tmp_path_factory: pytest.TempPathFactory, batches: list[int], cut: int, data: st.DataObject
) -> None:
    """A kill at any byte of the newest file's last append: every complete line still reads, and
    the move repeated on restart (the ledger still held the points) writes each point once."""
    root = tmp_path_factory.mktemp("eq") / "equity"
    points = days(0, sum(batches))
    done = 0
    for size in batches[:-1]:
        EquityArchive(root).append(points[done : done + size], done)
        done += size
    archive = EquityArchive(root)
    before = {p.name: p.stat().st_size for p in archive.files()}
    archive.append(points[done:], done)  # the last move, then killed somewhere in its bytes
    newest = archive.files()[-1]  # the move writes its months in order: the last one is torn
    raw, start = newest.read_bytes(), before.get(newest.name, 0)
    newest.write_bytes(raw[: max(len(raw) - cut, start)])
    survived = EquityArchive(root).read()  # loadable: never raises on a torn tail
    assert [r.seq for r in survived] == list(range(len(survived)))
    restart_from = data.draw(st.integers(0, done), label="ledger's curve_archived")
    again = EquityArchive(root)
    again.append(points[restart_from:], restart_from)
    assert EquityArchive(root).points() == points
