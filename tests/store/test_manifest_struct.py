"""Manifest entries as msgspec Structs (core/promotion/manifest.py): the file format is unchanged.

- a manifest and an archive file written by the pre-Struct code (``fixtures/manifest_v1``) load
  and re-save with the same keys and values;
- any valid entry list saves and loads identically (Hypothesis);
- an entry of another shape: one line naming the file and the entry, the ``.bak`` kept;
- every documented ``jq`` line on the manifest works on a manifest written by this code.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from _support.docs_support import MANUAL, documented, manual_commands
from _support.manifest_support import as_json, entry
from _support.support import alert_codes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aistock_actors.core.promotion.manifest import (
    ManifestEntry,
    ManifestFormatError,
    ManifestStage,
    decode_manifest,
    replace_entry,
    with_status,
)
from aistock_actors.store.alerts import AlertSink
from aistock_actors.store.manifest_archive import archive_files
from aistock_actors.store.promotion import PromotionStore

REPO = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures" / "manifest_v1"
JQ_STAND_IN = REPO / "tests" / "_support" / "docs_support.py"


def _copy_fixture(state: Path) -> None:
    shutil.copytree(FIXTURE, state / "promotion", ignore=shutil.ignore_patterns("*.md"))


def test_a_manifest_written_by_the_dict_code_loads_and_resaves_with_the_same_keys_and_values(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    _copy_fixture(state)
    store = PromotionStore(state, None)
    before = json.loads(store.manifest_path.read_text())
    loaded = store.load_manifest()
    assert [e.id for e in loaded] == [e["id"] for e in before]
    assert {e.status for e in loaded} >= {"approved", "rejected", "pending", "held",
                                          "rolled_back"}
    assert any(isinstance(e.decided_at, str) for e in loaded)  # an operator decision
    store.save_manifest(loaded)
    after = json.loads(store.manifest_path.read_text())
    assert after == before  # every key, every value (key order is not meaning)
    assert [list(e) for e in after] != [] and all(set(a) == set(b) for a, b in zip(after, before,
                                                                                     strict=True))


def test_an_archive_file_written_by_the_dict_code_is_read_with_the_history(tmp_path: Path) -> None:
    state = tmp_path / "state"
    _copy_fixture(state)
    store = PromotionStore(state, AlertSink(state / "alerts"))
    [archive] = archive_files(store.root)
    raw = json.loads(archive.read_text())
    history = store.load_history()
    assert alert_codes(state, "warning") == []  # nothing skipped
    ids = {e["id"] for e in raw} | {e["id"] for e in json.loads(store.manifest_path.read_text())}
    assert {e.id for e in history} == ids
    archived = decode_manifest(archive.read_bytes(), str(archive))
    assert json.loads(msgspec.json.encode(archived)) == raw  # re-encoded: the same content


# --- any valid entry list round-trips -----------------------------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_finite = st.floats(allow_nan=False, allow_infinity=False)
_metric = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), _finite, _text)
_metrics = st.dictionaries(_text.filter(lambda k: k != "equity_curve"), _metric, max_size=4)
_stage = st.builds(
    ManifestStage, stage=st.integers(1, 9), name=_text, value=st.none() | _finite,
    threshold=st.one_of(st.integers(0, 100), _finite, _text), passed=st.none() | st.booleans(),
    status=st.sampled_from(["passed", "failed", "skipped"]), reason=st.none() | _text,
    note=st.none() | _text)
_STATUSES = ["approved", "rejected", "pending", "rolled_back", "recorded", "held"]
_OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "cycle_id": _text, "sha256": st.none() | _text, "mode": _text,
    "action": st.sampled_from(["promote", "pending", "record_only", "reject", "hold"]),
    "strategy_id": _text, "backtest": _metrics, "training": _metrics, "decided_at": _text,
    "rollback": _metrics,
}


@st.composite
def _entries(draw: st.DrawFn) -> list[ManifestEntry]:
    out = []
    for i in range(draw(st.integers(0, 60))):
        time = f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z"  # oldest first, as the judge appends
        optional = {key: draw(value) for key, value in _OPTIONAL.items() if draw(st.booleans())}
        out.append(ManifestEntry(
            id=f"{draw(_text)}#{i}", model_id=draw(_text), time=time,
            status=draw(st.sampled_from(_STATUSES)), approved_by_gate=draw(st.booleans()),
            stages_enabled=draw(st.integers(0, 9)), stages=draw(st.lists(_stage, max_size=3)),
            reasons=draw(st.lists(_text, max_size=3)), **optional))
    return out


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(entries=_entries())
def test_any_valid_entry_list_saves_and_loads_identically(
    tmp_path_factory: pytest.TempPathFactory, entries: list[ManifestEntry]
) -> None:
    store = PromotionStore(tmp_path_factory.mktemp("prop") / "state", None)
    store.save_manifest(entries)
    assert store.load_history() == entries  # the manifest and any archive file, in order
    kept = store.load_manifest()
    assert kept == [e for e in entries if e in kept]  # the window is a subsequence
    store.save_manifest(kept)
    assert store.load_history() == entries  # saving what was loaded changes nothing
    assert json.loads(msgspec.json.encode(entries)) == as_json(entries)


def test_an_absent_optional_key_stays_absent_and_null_stays_null() -> None:
    bare = entry("m-1")
    assert "sha256" not in json.loads(msgspec.json.encode(bare))
    nulled = msgspec.structs.replace(bare, sha256=None)
    assert json.loads(msgspec.json.encode(nulled))["sha256"] is None
    changed = with_status(bare, "pending", "halted_before_activation")
    assert bare.status == "rejected" and bare.reasons == []  # frozen: a change is a new entry
    assert changed.reasons == ["halted_before_activation"]
    with pytest.raises(AttributeError):
        bare.status = "approved"  # type: ignore[misc]


# --- an entry of another shape ------------------------------------------------------------------

@pytest.mark.parametrize(("bad", "what"), [
    ({"surprise": 1}, "unknown field `surprise`"),
    ({"status": "maybe"}, "status"),
    ({"stages": [{"stage": 1}]}, "stages"),
    ({"backtest": [1, 2]}, "backtest"),
])
def test_an_entry_of_another_shape_names_the_file_and_entry_and_the_bak_is_used(
    tmp_path: Path, bad: dict[str, Any], what: str
) -> None:
    state = tmp_path / "state"
    store = PromotionStore(state, AlertSink(state / "alerts"))
    good = [entry("m-0", "approved"), entry("m-1")]
    store.save_manifest(good)
    store.save_manifest([*good, entry("m-2")])  # .bak: the two good entries
    raw = as_json([*good, entry("m-2")])
    raw[2] = {**raw[2], **bad}
    store.manifest_path.write_text(json.dumps(raw))
    with pytest.raises(ManifestFormatError) as caught:
        decode_manifest(store.manifest_path.read_bytes(), str(store.manifest_path))
    message = str(caught.value)
    assert "\n" not in message and what in message
    assert message.startswith(f"{store.manifest_path}: entry 2 (id 'm-2@") and "2025" in message
    assert store.load_manifest() == good  # from the .bak
    [alert] = (state / "alerts" / "error").glob("*.json")
    assert "entry 2" in json.loads(alert.read_text())["message"]


def test_an_archive_entry_of_another_shape_skips_that_file_with_a_warning(tmp_path: Path) -> None:
    state = tmp_path / "state"
    _copy_fixture(state)
    store = PromotionStore(state, AlertSink(state / "alerts"))
    [archive] = archive_files(store.root)
    raw = json.loads(archive.read_text())
    raw[1]["status"] = 7
    archive.write_text(json.dumps(raw))
    history = store.load_history()
    assert [e.id for e in history] == [e.id for e in store.load_manifest()]
    assert alert_codes(state, "warning") == ["manifest_archive_unreadable"]
    [alert] = (state / "alerts" / "warning").glob("*.json")
    assert f"{archive}: entry 1" in json.loads(alert.read_text())["message"]


# --- the runbook's jq lines on a manifest this code wrote ---------------------------------------

def _manifest_commands() -> list[str]:
    """The repository's documented jq lines on the manifest, and the manual's when it is beside
    the repository (a fresh clone elsewhere has only the repository's own documents)."""
    manual = manual_commands() if MANUAL.exists() else []
    commands = [*documented(REPO), *manual]
    return sorted({c for c in commands if "jq" in c and "state/promotion" in c})


def test_every_documented_jq_line_on_the_manifest_reads_what_this_code_wrote(
    tmp_path: Path,
) -> None:
    entries = [entry(f"m-{i}", ("rejected", "recorded", "approved", "rolled_back")[i % 4],
                     time=f"2026-02-01T00:{i // 60:02d}:{i % 60:02d}Z",
                     backtest={"sharpe": 1.0 + i, "bars": 300}, action="promote")
               for i in range(120)]
    PromotionStore(tmp_path / "state", None).save_manifest(entries)
    assert archive_files(tmp_path / "state" / "promotion")  # the history spans two kinds of file
    on_disk = json.loads((tmp_path / "state" / "promotion" / "manifest.json").read_text())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if shutil.which("jq") is None:
        (bin_dir / "jq").write_text(f'#!/bin/sh\nexec {sys.executable} {JQ_STAND_IN} "$@"\n')
        (bin_dir / "jq").chmod(0o755)
    expected = {
        'select(.status=="approved")': [e["id"] for e in on_disk if e["status"] == "approved"],
        'select(.status=="rolled_back")': [e["id"] for e in on_disk
                                           if e["status"] == "rolled_back"],
        "'.[-5:]'": [e["id"] for e in on_disk[-5:]],
        "'.[-1]'": [on_disk[-1]["id"]],
        "[.id, .status, .model_id]": [e["id"] for e in on_disk],
        "unique_by(.id) | sort_by(.time)": [e.id for e in entries],
    }
    commands = _manifest_commands()
    assert len(commands) >= 6, commands
    for command in commands:
        done = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, check=False,
                              env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
        assert done.returncode == 0, (command, done.stderr)
        key = next((k for k in expected if k in command), None)
        assert key is not None, f"no expectation for {command!r}: add one"
        ids = [item["id"] if isinstance(item, dict) else item[0]
               for item in _json_values(done.stdout)]
        assert ids == expected[key], command


def _json_values(text: str) -> list[Any]:
    """Every JSON value jq printed (a stream), arrays flattened one level."""
    decoder, out, pos = json.JSONDecoder(), [], 0
    text = text.strip()
    while pos < len(text):
        value, end = decoder.raw_decode(text, pos)
        if isinstance(value, list) and value and isinstance(value[0], dict):
            out.extend(value)
        else:
            out.append(value)
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def test_metric_helpers_read_only_finite_numbers_and_replace_entry_swaps_by_id() -> None:
    rich = entry("m-1", "approved", backtest={"total_return": 0.1, "bars": 300, "note": "x",
                                              "flag": True, "gone": None})
    assert rich.metrics()["note"] == "x" and entry("m-2").metrics() == {}
    assert (rich.number("total_return"), rich.number("bars")) == (0.1, 300.0)
    assert [rich.number(k) for k in ("note", "flag", "gone", "missing")] == [None] * 4
    manifest = [entry("m-0"), rich]
    marked = with_status(rich, "rolled_back", "degraded")
    replace_entry(manifest, marked)
    assert manifest == [entry("m-0"), marked] and rich.status == "approved"
