"""The package's shape, checked: one clock, nothing loose at the top level."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "aistock_actors"

# Reading the system clock: only runtime/clock.py (and the logging set-up's record times) may.
WALL_CLOCK = re.compile(
    r"\b(?:datetime|dt\.datetime)\.(?:now|utcnow|today)\(|\bdate\.today\(|"
    r"\btime\.(?:time|monotonic|perf_counter|time_ns|monotonic_ns|perf_counter_ns)\b"
)
ALLOWED = {PACKAGE / "runtime" / "clock.py", PACKAGE / "runtime" / "logs.py"}


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_wall_clock_read_outside_the_clock_module() -> None:
    offenders = []
    for path in _sources():
        if path in ALLOWED:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if WALL_CLOCK.search(code):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert not offenders, "read the injected Clock instead:\n" + "\n".join(offenders)


def test_the_pattern_catches_each_kind_of_read() -> None:
    for line in ("x = time.time()", "t0 = time.monotonic()", "datetime.now(UTC)",
                 "dt.datetime.now(dt.UTC)", "date.today()", "clock=time.monotonic"):
        assert WALL_CLOCK.search(line), line
    for line in ("clock.now()", "self.clock.monotonic()", "timestamp.time()"):
        assert not WALL_CLOCK.search(line), line


def test_top_level_holds_only_packages_and_the_entry_modules() -> None:
    loose = sorted(
        p.name for p in PACKAGE.iterdir()
        if p.is_file() and p.suffix == ".py"
        and p.name not in {"__init__.py", "__main__.py", "errors.py"}
    )
    assert loose == [], f"modules loose at the top level: {loose}"
    for sub in PACKAGE.iterdir():
        if sub.is_dir() and sub.name != "__pycache__":
            assert (sub / "__init__.py").exists(), f"{sub.name}/ is not a package"


MAX_MODULE_LINES = 400


def test_no_module_is_over_the_size_limit() -> None:
    big = {
        str(p.relative_to(PACKAGE.parent)): n
        for p in _sources()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert big == {}, f"split these by responsibility (> {MAX_MODULE_LINES} lines): {big}"


def test_every_class_name_is_defined_once() -> None:
    import ast

    seen: dict[str, list[str]] = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                seen.setdefault(node.name, []).append(str(path.relative_to(PACKAGE.parent)))
    twice = {name: where for name, where in seen.items() if len(where) > 1}
    assert twice == {}, f"one name, one meaning: {twice}"
