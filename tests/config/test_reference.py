"""The README's configuration reference is generated from the config Structs and never stale."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from aistock_actors.config import Config
from aistock_actors.config import reference as configdoc

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


def readme_block() -> str:
    text = README.read_text(encoding="utf-8")
    assert configdoc.START in text and configdoc.END in text, "README lost its markers"
    return text[text.index(configdoc.START): text.index(configdoc.END) + len(configdoc.END)]


def test_readme_block_is_current() -> None:
    assert readme_block() == configdoc.render(), (
        "README.md's config reference is stale: run "
        "`python -m aistock_actors.config.reference --write README.md`")


def leaf_keys(struct: type[msgspec.Struct], prefix: str = "") -> list[str]:
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    keys: list[str] = []
    for field in info.fields:
        if isinstance(field.type, msgspec.inspect.StructType):
            keys += leaf_keys(field.type.cls, f"{prefix}{field.encode_name}.")
        else:
            keys.append(f"{prefix}{field.encode_name}")
            item = getattr(field.type, "item_type", None)  # a list of objects: their keys too
            if isinstance(item, msgspec.inspect.StructType):
                keys += leaf_keys(item.cls, f"{prefix}{field.encode_name}[].")
    return keys


def test_every_key_has_a_row_with_a_description() -> None:
    rows = {}
    for line in configdoc.render().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 5 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[4]
    keys = leaf_keys(Config)
    assert sorted(rows) == sorted(keys)
    for key in keys:
        assert rows[key].strip(), f"{key} has no description: add a docstring under the field"
    assert not set(configdoc.EXTRA_DOCS) - set(keys), "EXTRA_DOCS names a key that is gone"


def test_allowed_values_come_from_the_types() -> None:
    text = configdoc.render()
    assert "| `headless.max_consecutive_failures` | integer | `3` | ≥ 1, ≤ 100000 |" in text
    assert "`flatten` \\| `freeze`" in text  # a Literal's values
    assert "keys `calm_down` \\| `calm_up`" in text  # a dict keyed by a Literal


def test_write_refreshes_only_the_block(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(f"# before\n\n{configdoc.START}\nold table\n{configdoc.END}\n\nafter\n")
    done = subprocess.run(
        [sys.executable, "-m", "aistock_actors.config.reference", "--write", str(doc)],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    text = doc.read_text()
    assert text.startswith("# before\n\n") and text.endswith("\n\nafter\n")
    assert "old table" not in text and configdoc.render() in text


def test_a_file_without_markers_is_refused(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("no markers\n")
    with pytest.raises(ValueError):
        configdoc.main(["--write", str(doc)])
    assert doc.read_text() == "no markers\n"
