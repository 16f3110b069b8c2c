"""Every benchmark command of bench/README.md runs: the documented script, with ``--smoke``.

The scripts are taken FROM the doc (``tests/test_docs.py`` skips the full-size commands and
points here), so a newly documented benchmark is run too and a documented script that is gone
fails. ``--smoke`` keeps the script's code path (same set-up, same engines, same table) at tiny
sizes; peers whose bench-only packages (``bench/requirements.txt``) are missing are skipped by
the script itself with a printed line. Each run must exit 0 and print its table's header and its
ratio/target lines (:data:`EXPECTED`).

The scripts are independent (each works in its own temporary directory), and while one runs
pytest itself only waits: the module's runs go :data:`AT_ONCE` at a time (:func:`smoke_runs`),
each test checking its own.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from _support.docs_support import fenced_commands

REPO = Path(__file__).resolve().parents[2]
README = REPO / "bench" / "README.md"
BENCH_COMMAND = re.compile(r"^\.venv/bin/python (bench/[\w-]+\.py)(?: |$)")

EXPECTED: dict[str, list[str]] = {
    "bench/bench_backtest.py": [
        r"^engine +symbols +bars +cold s +median s +bars/s +final ret +note$",
        r"^ours +1 +120 +[\d.]+ +[\d.]+ +[\d,]+ +[-+][\d.]+% ",
        r"^numpy-ref +4 +120 ",
        r"^vectorbt \S+ \(numba \S+\) imported|^vectorbt unavailable, skipped: ",
        r"^backtesting\.py \d\S*$|^backtesting\.py unavailable, skipped: ",
        r"^  \[N=4\] final returns: ours [-+][\d.]+%, numpy-ref .* -> OK$",
        r"^  \[N=4\] ours / numpy-ref bars-per-second = [\d.]+x \(target >= 0\.5x\) -> "
        r"(PASS|MISS)$",
        r"^  \[N=1\] ours / vectorbt( bars-per-second = [\d.]+x .* -> (PASS|MISS)|: n/a \()",
    ],
    "bench/bench_kill_switch.py": [
        r"^daemon up and first cycle done in [\d.]+ s",
        r"^daemon: stopped by SIGTERM, exit code 0$",
        r"^kill-switch latency over 2 trials ",
        r"^  p50 [\d.]+  p90 [\d.]+  p99 [\d.]+  max [\d.]+ ",
        r"^target p99 <= 1 s: p99 = [\d.]+ s -> (PASS|MISS)$",
    ],
    "bench/reliability_report.py": [
        r"^\| check +\| result +\| requirement \|$",
        r"^\| faults injected \(8 actors x 5 kinds\) +\| 1 ",
        r"^\| halts as expected \(intensity, failure cap\) +\| 1/1 ",
        r"^\| kills \(SIGKILL\) +\| 2 ",
        r"^\|   corrupt files +\| 0 +\| must be 0 ",
        r"^\|   duplicate fills +\| 0 +\| must be 0 ",
        r"^\| soak cycles \(ok / failed / degraded / halted\+aborted\) +\| 6 ",
        r"^all checks passed$",
    ],
    "bench/bench_daemon_cycle.py": [
        r"^  N=4 cycle 1: CPU [\d.]+ s, wall [\d.]+ s, outcome succeeded \| ingest=[\d.]+ "
        r"train=[\d.]+ backtest=[\d.]+ ",
        r"^\| N \| cycles \| CPU s \(median, range\) \| wall s \(median\) \| ",
        r"^\| 4 \| 1 \| [\d.]+ \([\d.]+-[\d.]+\) \| ",
    ],
    "bench/bench_cycle.py": [
        r"^N=4: generated 4 x 300 bars",
        r"^  run 1: wall [\d.]+s cpu [\d.]+s outcome=succeeded ",
        r"^\| N \| wall s \| CPU s \| cycle s \| ingest \| .* \| peak PSS tree \|$",
        r"^\| 4 \| [\d.]+ \([\d.]+-[\d.]+\) \| ",
        r"^Targets at N=4:$",
        r"^  cycle wall time [\d.]+s <= 60s -> (PASS|MISS)$",
        r"^  peak PSS \(tree sum\) .* <= 2 GiB -> (PASS|MISS)$",
    ],
    "bench/bench_overhead.py": [
        r"^3 symbols x 600 bars, n_jobs=2; warm-up \.\.\.$",
        r"^\| path \| median wall s \| range \| median CPU s",
        r"^\| actors \| [\d.]+ \| ",
        r"^\| direct \| [\d.]+ \| ",
        r"^\| step \| actors \(median s\) \| direct \(median s\) \|$",
        r"^overhead, wall: [-+][\d.]+% \(per pair: [-+][\d.]+%\); CPU: [-+][\d.]+%$",
        r"^target: within 5% -> wall (PASS|MISS), CPU (PASS|MISS)$",
        r"^fixed cost of the actor path ",
    ],
    "bench/bench_candidates.py": [
        r"^6 symbols x 600 bars, loky n_jobs=2$",
        r"^\| candidate \| OOS net Sharpe \|$",
        r"^\| ml_horizon_5 \| -?[\d.]+ \|$",
        r"^\| autocorrelation \| -?[\d.]+ \|$",
        r"^best: \w+ \(Sharpe -?[\d.]+",
        r"^single recipe: [\d.]+ s; candidate set: [\d.]+ s; ratio x[\d.]+$",
        r"^goal: candidate set <= 60 s -> (PASS|MISS)$",
    ],
    "bench/bench_replay.py": [
        r"^demo replay: 4 symbols x 520 bars, configs/demo\.json",
        r"^  wall [\d.]+ s, CPU [\d.]+ s, \d+ steps: \d+ trained \([\d.]+ s\), \d+ did not ",
        r"^  peak RSS \(process tree\) per 250 steps: 1-250: \d+ MiB",
        r"^target: demo replay wall [\d.]+ s <= 180 s -> (PASS|MISS)$",
        r"^no-training cycle, N=4: median [\d.]+ ms, p90 [\d.]+ ms over \d+ steps ",
        r"^  median per step \(ms\): ingest [\d.]+, train [\d.]+, .* trade [\d.]+$",
    ],
    "bench/bench_messages.py": [
        r"^\| set-up \| p50 us \| p99 us \| mean us \| throughput req/s \(msgs/s = 2x\) \|$",
        r"^\| ours, tell-reply \(supervisor <-> actor\) \| [\d.]+ \| [\d.]+ \| [\d.]+ \| "
        r"[\d,]+ \|$",
        r"^\| pykka, ask \(dict\) \| ",
        r"^ours / raw pykka \(tell-reply\): p50 x[\d.]+, throughput x[\d.]+$",
    ],
    "bench/bench_status.py": [
        r"^state filled by one --run-once \(3 symbols x 120 bars\) in [\d.]+ s$",
        r"^\| command \| trials \| median s \| p90 s \| max s \| target s \| before \| result \|$",
        r"^\| --status \| 3 \| [\d.]+ \| [\d.]+ \| [\d.]+ \| 0\.5 \| 8-9 s \| (PASS|MISS) \|$",
        r"^\| --status --json \| 3 \| [\d.]+ \| ",
        r"^\| --kill \| 3 \| [\d.]+ \| [\d.]+ \| [\d.]+ \| 0\.3 \| 0\.7 s \| (PASS|MISS) \|$",
    ],
    "bench/bench_backfill.py": [
        r"^2 symbols x 10 days of 1h bars from a fake provider on 127\.0\.0\.1$",
        r"^source +symbols +days +bars +pages +wall s +bars/s +paging s +store s +setup s$",
        r"^ccxt +2 +10 +480 +\d+ +[\d.]+ +[\d,]+ ",
        r"^alpaca +2 +10 +480 +\d+ +[\d.]+ +[\d,]+ ",
        r"^  \[ccxt\] paging \d+% of the time, validation \+ storage \d+% ",
        r"^  \[alpaca\] reference \(same client, nothing stored\): 480 bars in [\d.]+ s; "
        r"ours / reference wall time = [\d.]+x$",
    ],
    "bench/bench_edge.py": [
        r"^\| seed \| role \| reference net Sharpe \| rule net Sharpe \| rule gross Sharpe ",
        r"^\| 1 \| development \| -?[\d.]+ \| -?[\d.]+ \| -?[\d.]+ \| ",
        r"^\| 7 \| demo \(held out\) \| ",
        r"^development seeds: mean net Sharpe -?[\d.]+ vs reference -?[\d.]+ \(",
        r"^demo seed 7: net Sharpe -?[\d.]+ \(goal >= 1\.0\) -> (PASS|MISS)$",
    ],
    "bench/bench_history.py": [
        r"^12 cycles on 3 x 300 bars in ",
        r"^\| cycle \| RSS MiB \| judge ms \(median\) \| manifest entries \| manifest kB \|",
        r"^wall [\d.]+ s, CPU [\d.]+ s, load [\d.]+ -> [\d.]+$",
        r"^judge time cycle 12 / cycle \d+ = [\d.]+x \(target <= 2x\) -> (PASS|MISS)$",
        r"^RSS growth cycle \d+ -> 12 = [-+][\d.]+ % \(target <= 10 %\) -> (PASS|MISS)$",
    ],
    "bench/bench_ledger.py": [
        r"^6 trading cycles on 4 symbols, 2,000 past fills, in ",
        r"^\| account \| cycle \| fills \| ledger kB \| journal kB \| fills/ kB \| trade ms",
        r"^\| history \| 6 \| 2,0\d\d \| ",
        r"^wall [\d.]+ s, CPU [\d.]+ s, load [\d.]+ -> [\d.]+$",
        r"^trade step with 2,000 past fills / without = [\d.]+x \(target <= 2x\) -> "
        r"(PASS|MISS); unbounded: [\d.]+x$",
        r"^ledger\.json cycle 6 / cycle \d+ = [\d.]+x \(target <= 2x\) -> (PASS|MISS); "
        r"unbounded: \d+ kB$",
    ],
    "bench/bench_model_metrics.py": [
        r"^code \S+; 4 x 600 bars, seed 7$",
        r"^CPU s: train [\d.]+, walk-forward [\d.]+$",
        r"^candidate: train accuracy [\d.]+, OOF test accuracy [\d.]+, threshold [\d.]+, ",
        r"^walk-forward: OOS net Sharpe -?[\d.]+, total return -?[\d.]+, trades \d+, ",
    ],
}
"""Per documented script: lines its ``--smoke`` output must contain (regex, multiline)."""


def documented_scripts() -> list[str]:
    """The bench scripts bench/README.md runs, in the doc's order."""
    scripts: list[str] = []
    for command in fenced_commands(README.read_text(encoding="utf-8")):
        match = BENCH_COMMAND.match(command)
        if match and match.group(1) not in scripts:
            scripts.append(match.group(1))
    return scripts


SCRIPTS = documented_scripts()


def test_the_doc_documents_every_bench_script_and_smoke() -> None:
    on_disk = {f"bench/{p.name}" for p in (REPO / "bench").glob("*.py")}
    assert set(SCRIPTS) == on_disk, "bench/README.md and bench/*.py disagree"
    assert set(EXPECTED) == set(SCRIPTS), "EXPECTED needs a line list per documented script"
    assert "--smoke" in README.read_text(encoding="utf-8")


AT_ONCE = 2
"""Smoke runs at a time: two cores, and each run is mostly one busy process."""


@dataclass
class SmokeRun:
    """One ``SCRIPT --smoke`` run: its completed process and wall time."""

    done: subprocess.CompletedProcess[str]
    seconds: float


def run_smoke(script: str) -> SmokeRun:
    started = time.monotonic()
    done = subprocess.run([sys.executable, script, "--smoke"], cwd=REPO,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=180, check=False)
    return SmokeRun(done, time.monotonic() - started)


@pytest.fixture(scope="module")
def smoke_runs(request: pytest.FixtureRequest) -> Iterator[dict[str, Future[SmokeRun]]]:
    """The ``--smoke`` run of every script whose test was selected, started :data:`AT_ONCE` at a
    time in the doc's order (a missing script is left to its test)."""
    selected = {item.callspec.params["script"] for item in request.session.items
                if item.getparent(pytest.Module) is request.node and hasattr(item, "callspec")}
    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        runs = {s: pool.submit(run_smoke, s) for s in SCRIPTS
                if s in selected and (REPO / s).is_file()}
        yield runs
        for run in runs.values():
            run.cancel()


@pytest.mark.parametrize("script", SCRIPTS)
def test_documented_bench_runs_with_smoke(
    script: str, smoke_runs: dict[str, Future[SmokeRun]]
) -> None:
    assert (REPO / script).is_file(), f"bench/README.md runs {script}, which does not exist"
    run = smoke_runs[script].result(timeout=900)
    done = run.done
    report = f"{script} --smoke (exit {done.returncode}, {run.seconds:.1f} s)\n{done.stdout}\n" \
             f"{done.stderr[-3000:]}"
    assert done.returncode == 0, report
    assert "Traceback" not in done.stderr, report
    missing = [p for p in EXPECTED.get(script, ["(no EXPECTED entry)"])
               if not re.search(p, done.stdout, flags=re.M)]
    assert not missing, f"missing lines {missing}\n{report}"
