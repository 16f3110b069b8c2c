"""The promotion manifest's bounded window and its archive files (store/manifest_archive.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from _support.manifest_support import as_json, entry
from _support.support import alert_codes

from aistock_actors.core.promotion.manifest import ManifestEntry
from aistock_actors.store.alerts import AlertSink
from aistock_actors.store.manifest_archive import (
    ARCHIVE_BATCH,
    MANIFEST_RECENT_ENTRIES,
    archive_files,
    split_window,
    write_archive,
)
from aistock_actors.store.promotion import PromotionStore

STATUSES = ("rejected", "recorded", "rolled_back")


def verdicts(n: int, *, start: int = 0, keep_every: int = 0) -> list[ManifestEntry]:
    """``n`` entries a minute apart; every ``keep_every``-th is approved / pending / held."""
    out: list[ManifestEntry] = []
    for i in range(start, start + n):
        status = STATUSES[i % 3]
        if keep_every and i % keep_every == 0:
            status = ("approved", "pending", "held")[(i // keep_every) % 3]
        time = f"2026-01-{1 + i // 1440:02d}T{i // 60 % 24:02d}:{i % 60:02d}:00Z"
        out.append(entry(f"m{i}", status, time=time, backtest={"sharpe": 1.0}))
    return out


def test_the_manifest_keeps_every_kept_status_plus_the_newest_others(tmp_path: Path) -> None:
    store = PromotionStore(tmp_path, None)
    entries = verdicts(3000, keep_every=97)
    store.save_manifest(entries)
    kept = store.load_manifest()
    wanted = {"approved", "pending", "held"}
    always = [e for e in entries if e.status in wanted]
    assert [e for e in kept if e.status in wanted] == always
    others = [e for e in kept if e.status not in wanted]
    assert others == [e for e in entries if e.status not in wanted][-MANIFEST_RECENT_ENTRIES:]
    assert [e.id for e in store.load_history()] == [e.id for e in entries]  # none lost
    archived = [e for path in archive_files(store.root) for e in json.loads(path.read_text())]
    assert len(archived) + len(kept) == 3000
    [archive] = archive_files(store.root)  # one save: one batch, dated by its oldest entry
    assert archive.name.startswith("manifest-20260101T000100Z-")


def test_entries_move_in_batches_so_a_save_is_o1_on_average(tmp_path: Path) -> None:
    store = PromotionStore(tmp_path, None)
    entries = verdicts(MANIFEST_RECENT_ENTRIES + ARCHIVE_BATCH)
    store.save_manifest(entries)
    assert archive_files(store.root) == []  # not yet beyond the window by a batch
    store.save_manifest([*entries, *verdicts(1, start=len(entries))])  # one past: a batch moves
    assert len(archive_files(store.root)) == 1
    assert len(store.load_manifest()) == MANIFEST_RECENT_ENTRIES
    for i in range(ARCHIVE_BATCH):  # the next batch fills up before anything moves again
        entries = [*store.load_manifest(), *verdicts(1, start=1000 + i)]
        store.save_manifest(entries)
        assert len(archive_files(store.root)) == 1


def test_a_crash_between_archive_and_manifest_loses_and_repeats_nothing(tmp_path: Path) -> None:
    store = PromotionStore(tmp_path, None)
    entries = verdicts(200)
    (store.root).mkdir(parents=True)
    store.manifest_path.write_text(json.dumps(as_json(entries)))  # as an older version wrote it
    _kept, moved = split_window(entries)
    write_archive(store.root, moved)  # ... and the process died before the manifest write
    assert [e.id for e in store.load_history()] == [e.id for e in entries]  # once each
    store.save_manifest(entries)  # the next save moves the same batch: the same file again
    assert len(archive_files(store.root)) == 1
    assert [e.id for e in store.load_history()] == [e.id for e in entries]


def test_an_unreadable_archive_is_skipped_with_a_warning(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = PromotionStore(state, AlertSink(state / "alerts"))
    entries = verdicts(200)
    store.save_manifest(entries)
    [archive] = archive_files(store.root)
    archive.write_text("{not json")
    history = store.load_history()
    assert [e.id for e in history] == [e.id for e in store.load_manifest()]
    assert alert_codes(state, "warning") == ["manifest_archive_unreadable"]


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_the_documented_jq_line_reads_the_whole_history(tmp_path: Path) -> None:
    store = PromotionStore(tmp_path / "state", None)
    entries = verdicts(300, keep_every=40)
    store.save_manifest(entries)
    line = ("find state/promotion -name 'manifest*.json' -exec cat {} + "
            "| jq -s 'add | unique_by(.id) | sort_by(.time)'")
    out = subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True, text=True,
                         check=True, timeout=30).stdout
    assert [j["id"] for j in json.loads(out)] == [e.id for e in entries]
    approved = subprocess.run(
        ["bash", "-c", "jq -r '.[] | select(.status==\"approved\") | .id' "
         "state/promotion/manifest.json"], cwd=tmp_path, capture_output=True, text=True,
        check=True, timeout=30).stdout.split()
    assert approved == [e.id for e in entries if e.status == "approved"]
