"""Shell commands as the docs write them: extraction from Markdown, and a ``jq`` stand-in.

``tests/test_docs.py`` runs the commands. Where ``jq`` is not installed (a bare CI machine) it puts
this module's :func:`jq_main` on the PATH as ``jq``: it evaluates exactly the filters the docs use
(:data:`FILTERS`) and fails loudly on any other, so a new doc command needs a line here. Where the
real ``jq`` exists the test checks the stand-in against it.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

SHELL_WORDS = frozenset({
    "python", "jq", "grep", "ls", "cat", "tail", "find", "ps", "date", "curl", "systemctl",
    "supervisorctl", "journalctl", "promtool", "kill", "touch", "awk", "./demo.sh", "./test.sh",
    ".venv/bin/python", ".venv/bin/pip", ".venv/bin/ruff", "CONFIG=/etc/aistock/config.json",
})
"""First words that make an inline code span a command (``state/HALTED`` alone is a path)."""


def strip_comment(line: str) -> str:
    """``line`` without a trailing ``# comment`` (a ``#`` inside quotes is kept)."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def fenced_commands(markdown: str, lang: str = "bash") -> list[str]:
    """Every command line of the ``lang`` fenced blocks (continuations joined, comments cut)."""
    commands: list[str] = []
    for block in re.findall(rf"^```{lang}\n(.*?)^```", markdown, flags=re.M | re.S):
        pending = ""
        for raw in block.splitlines():
            line = strip_comment(raw)
            if line.endswith("\\"):
                pending += line[:-1].strip() + " "
                continue
            line = (pending + line.strip()).strip()
            pending = ""
            if line and not line.startswith("#!"):
                commands.append(line)
    return commands


def inline_commands(markdown: str) -> list[str]:
    """Inline code spans that are shell commands (by their first word), whitespace collapsed."""
    outside = re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S)
    found = []
    for span in re.findall(r"`([^`]+)`", outside):
        text = " ".join(span.split())
        if text.split(" ", 1)[0] in SHELL_WORDS and " " in text:
            found.append(text)
    return found


DOCS = {
    "README.md": ("fenced", "inline"),
    "ops/RUNBOOK.md": ("fenced", "inline"),
    "bench/README.md": ("fenced",),
}
"""The docs whose commands run, and where in each they are taken from."""


MANUAL = Path(__file__).resolve().parents[3] / "shared" / "spec" / "headless_autopilot.md"
"""The operator manual (``../shared/spec/headless_autopilot.md`` beside the repository): its
commands are promises (``tests/test_docs.py::test_manual_commands_run`` runs each one)."""


def manual_commands(path: Path = MANUAL) -> list[str]:
    """Every distinct command of the manual, in order: fenced, inline, and the inline
    ``scripts/...`` spans the manual writes without ``python`` (run verbatim, by their shebang)."""
    text = path.read_text(encoding="utf-8")
    outside = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    scripts = [" ".join(s.split()) for s in re.findall(r"`(scripts/[^`]+)`", outside)]
    return list(dict.fromkeys([*fenced_commands(text), *inline_commands(text), *scripts]))


def canonical(command: str) -> str:
    """Commands that differ only in the config path or the ``--out`` file run once."""
    command = command.replace("configs/demo.json", "$CONFIG")
    return re.sub(r"--out \S+", "--out FILE", command)


def documented(repo: Path) -> dict[str, list[str]]:
    """Every distinct command of the docs (first spelling) -> where it and its variants appear."""
    found: dict[str, list[str]] = {}
    first: dict[str, str] = {}
    for doc, kinds in DOCS.items():
        text = (repo / doc).read_text(encoding="utf-8")
        commands = fenced_commands(text) if "fenced" in kinds else []
        commands += inline_commands(text) if "inline" in kinds else []
        for command in commands:
            spelled = first.setdefault(canonical(command), command)
            where = doc if spelled == command else f"{doc} ({command})"
            found.setdefault(spelled, []).append(where)
    return found


# --- the jq stand-in ---------------------------------------------------------------------------

def _one(value: Any) -> Iterator[Any]:
    yield value


def _each_selected(key: str, wanted: str) -> Callable[[Any], Iterator[Any]]:
    return lambda v: (item for item in v if item.get(key) == wanted)


def _pick(*keys: str) -> Callable[[Any], Iterator[Any]]:
    return lambda v: _one({k: v.get(k) for k in keys})


def _actions(*actions: str) -> Callable[[Any], Iterator[Any]]:
    return lambda v: (x for x in [v] if v.get("action") in actions)


def _unique_by_seq(values: list[Any]) -> list[Any]:
    return sorted({e.get("seq"): e for e in reversed(values)}.values(), key=lambda e: e.get("seq"))


FILTERS: dict[str, Callable[[Any], Iterator[Any]]] = {
    ".": _one,
    ".ts": lambda v: _one(v.get("ts")),
    ".details": lambda v: _one(v.get("details")),
    ".issues": lambda v: _one(v.get("issues")),
    ".details.regime": lambda v: _one((v.get("details") or {}).get("regime")),
    ".[-1]": lambda v: _one(v[-1] if v else None),
    ".[-5:]": lambda v: _one(v[-5:]),
    '.[] | select(.status=="approved")': _each_selected("status", "approved"),
    '.[] | select(.status=="rolled_back")': _each_selected("status", "rolled_back"),
    "[.ts, .details]": lambda v: _one([v.get("ts"), v.get("details")]),
    "[.ts, .details.after]": lambda v: _one([v.get("ts"), (v.get("details") or {}).get("after")]),
    ".[] | [.id, .status, .model_id]": lambda v: ([e.get("id"), e.get("status"),
                                                   e.get("model_id")] for e in v),
    "{cash, realised_pnl, equity: .equity_curve[-1]}": lambda v: _one({
        "cash": v.get("cash"), "realised_pnl": v.get("realised_pnl"),
        "equity": (v.get("equity_curve") or [None])[-1]}),
    "{halted, kill_switch, consecutive_failures}": _pick(
        "halted", "kill_switch", "consecutive_failures"),
    "{halted, kill_switch, consecutive_failures, cycles_total}": _pick(
        "halted", "kill_switch", "consecutive_failures", "cycles_total"),
    'select(.action=="autopilot_failed")': _actions("autopilot_failed"),
    'select(.action=="autopilot_failed" or .action=="actor_crashed" or '
    '.action=="actor_restarted") | [.ts, .action, .details]': lambda v: (
        [x.get("ts"), x.get("action"), x.get("details")]
        for x in _actions("autopilot_failed", "actor_crashed", "actor_restarted")(v)),
    # jq: null + n = n, and (null | length) = 0 (a ledger of the format before #18)
    ".fills_archived + (.fills | length)": lambda v: _one(
        (v.get("fills_archived") or 0) + len(v.get("fills") or [])),
}
"""Every jq filter the docs use, as Python."""
SLURPED: dict[str, Callable[[list[Any]], Iterator[Any]]] = {
    # jq's unique_by sorts by the key and keeps the first of each group; sort_by is stable.
    "add | unique_by(.id) | sort_by(.time)": lambda vs: _one(sorted(
        {str(e.get("id")): e for e in reversed(sorted(
            (e for v in vs for e in v), key=lambda e: str(e.get("id"))))}.values(),
        key=lambda e: str(e.get("time")))),
    "unique_by(.seq)": lambda vs: _one(_unique_by_seq(vs)),
    "unique_by(.seq) | map([.timestamp, .equity])": lambda vs: _one(
        [[e.get("timestamp"), e.get("equity")] for e in _unique_by_seq(vs)]),
}
"""Every ``jq -s`` filter the docs use (the input values as one list), as Python."""


def _values(text: str) -> Iterator[Any]:
    """Each JSON value of ``text`` (one document, or JSON lines, or several pretty ones)."""
    decoder = json.JSONDecoder()
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return
        value, index = decoder.raw_decode(text, index)
        yield value


def jq(filter_: str, text: str, compact: bool = False, slurp: bool = False) -> str:
    """What ``jq [-c] [-s] FILTER`` prints for ``text``."""
    table: dict[str, Any] = SLURPED if slurp else FILTERS
    if filter_ not in table:
        raise SystemExit(f"jq stand-in: filter {filter_!r} is not in "
                         "tests/_support/docs_support.py FILTERS; add it (and install jq to check "
                         "it)")
    inputs: list[Any] = [list(_values(text))] if slurp else list(_values(text))
    out = []
    for value in inputs:
        for result in table[filter_](value):
            out.append(json.dumps(result, separators=(",", ":")) if compact
                       else json.dumps(result, indent=2, ensure_ascii=False))
    return "".join(line + "\n" for line in out)


def jq_main(argv: list[str]) -> int:
    """``jq [-c] [-s] FILTER [FILE ...]``."""
    compact, slurp = "-c" in argv, "-s" in argv
    args = [a for a in argv if a not in ("-c", "-s")]
    if not args:
        raise SystemExit("usage: jq [-c] FILTER [FILE ...]")
    filter_, files = args[0], args[1:]
    text = "".join(Path(f).read_text(encoding="utf-8") for f in files) if files else \
        sys.stdin.read()
    sys.stdout.write(jq(filter_, text, compact, slurp))
    return 0


if __name__ == "__main__":
    raise SystemExit(jq_main(sys.argv[1:]))


