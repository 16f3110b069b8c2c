"""The reliability proof at full size, as one table.

    .venv/bin/python bench/reliability_report.py [--kills 200] [--cycles 500] [--faults 50]
        [--seed 7] [--skip matrix sigkill soak] [--workdir DIR]

Runs, with the same code as the CI tests (``tests/_support/fault_harness.py``):

1. **matrix** -- ``tests/faults/test_actor_faults.py`` (8 actors x 5 faults through the production
   wiring, restart intensity and failure cap, the kill switch while each actor hangs) via pytest;
2. **sigkill** -- a real daemon killed with SIGKILL at ``--kills`` random moments, every state
   file, the audit chain, the ledger and the manifest checked after each kill (CI: 20 kills);
3. **soak** -- ``--cycles`` cycles of the production wiring at a tiny interval with ``--faults``
   random injected faults, memory/threads/file handles sampled (CI: 60 cycles, 10 faults).

Prints the table and exits 1 if a must-be-zero figure is not zero or a check failed.
"""

from __future__ import annotations

import argparse
import logging
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from _support.fault_harness import SigkillLoop, run_soak  # noqa: E402

SMOKE_MATRIX = "data_ingestor-raise or test_restart_intensity"
"""The matrix cases ``--smoke`` runs (one fault, one halt): a pytest ``-k`` expression."""


def run_matrix(workdir: Path, select: str | None = None) -> dict[str, Any]:
    junit = workdir / "matrix.xml"
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
         "tests/faults/test_actor_faults.py", *(["-k", select] if select else [])],
        cwd=REPO, capture_output=True, text=True, timeout=3600, check=False)
    groups = {"matrix": [0, 0], "halts": [0, 0], "kill_switch": [0, 0], "regression": [0, 0]}
    failures: list[str] = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "")
        group = ("matrix" if name.startswith("test_fault_in_actor") else
                 "kill_switch" if name.startswith("test_kill_switch") else
                 "halts" if "halt" in name else "regression")
        ok = case.find("failure") is None and case.find("error") is None
        groups[group][0] += ok
        groups[group][1] += 1
        if not ok:
            failures.append(name)
    return {"groups": groups, "failures": failures, "seconds": time.monotonic() - started}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--cycles", type=int, default=500)
    parser.add_argument("--faults", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip", nargs="*", default=[], choices=["matrix", "sigkill", "soak"])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, a few seconds (overrides the size flags; the matrix "
                        "runs two of its cases): the report still runs "
                        "(tests/bench/test_bench_commands.py)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.kills, args.cycles, args.faults = 2, 6, 2
    logging.basicConfig(level=logging.CRITICAL + 1)  # the soak's injected faults log a lot
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="reliability-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, str]] = []
    bad: list[str] = []

    def must_be_zero(label: str, value: int) -> None:
        rows.append((label, str(value), "must be 0"))
        if value:
            bad.append(label)

    if "matrix" not in args.skip:
        m = run_matrix(workdir, SMOKE_MATRIX if args.smoke else None)
        g = m["groups"]
        rows.append(("faults injected (8 actors x 5 kinds)", str(g["matrix"][1]), ""))
        rows.append(("  survived as the manual promises", f"{g['matrix'][0]}/{g['matrix'][1]}",
                     "all"))
        rows.append(("halts as expected (intensity, failure cap)",
                     f"{g['halts'][0]}/{g['halts'][1]}", "all"))
        rows.append(("kill switch while an actor hangs (<= 1 s)",
                     f"{g['kill_switch'][0]}/{g['kill_switch'][1]}", "all"))
        rows.append(("  (matrix run time)", f"{m['seconds']:.0f} s", ""))
        bad.extend(m["failures"])
    if "sigkill" not in args.skip:
        loop = SigkillLoop(workdir / "sigkill", seed=args.seed)
        s = loop.run(args.kills)
        rows.append(("kills (SIGKILL)", f"{s.kills} ({s.mid_cycle} mid-cycle, "
                     f"{s.during_startup} at start-up)", ""))
        rows.append(("  cycles / fills / promotions / rollbacks between kills",
                     f"{s.cycles_total} / {s.fills} / {s.promotions} / {s.rollbacks}", ""))
        rows.append(("  state files checked", str(s.files_checked), ""))
        must_be_zero("  corrupt files", s.corrupt_files)
        must_be_zero("  lost acknowledged records", s.lost_acknowledged)
        must_be_zero("  duplicate fills", s.duplicate_fills)
        must_be_zero("  active model not the manifest's (incidents)", s.manifest_mismatches)
        rows.append(("  pending fall-back/promotion after a kill (incidents)",
                     str(s.pending_repaired), "repaired"))
        must_be_zero("  other invariant violations", s.other_problems)
        rows.append(("  (run time)", f"{s.seconds:.0f} s", ""))
        for failure in s.failures()[:20]:
            print("sigkill:", failure)
    if "soak" not in args.skip:
        soak = run_soak(workdir / "soak", args.cycles, seed=args.seed, n_faults=args.faults,
                        max_seconds=6 * 3600)
        slow = soak.fired_by_kind.get("slow", 0)
        rows.append(("soak cycles (ok / failed / degraded / halted+aborted)",
                     f"{soak.cycles} ({soak.succeeded} / {soak.failed} / {soak.degraded} / "
                     f"{soak.halted_or_aborted})", "all accounted"))
        rows.append(("  faults planned / fired", f"{soak.faults_planned} / {soak.faults_fired} "
                     f"{dict(sorted(soak.fired_by_kind.items()))}", ""))
        expected = soak.faults_fired - slow + soak.spontaneous_timeouts
        rows.append(("  restarts (= fired faults but slow replies + spontaneous timeouts)",
                     f"{soak.restarts} (expected {expected}; {soak.spontaneous_timeouts} "
                     "spontaneous)", "equal"))
        rows.append(("  memory growth (VmRSS after warm-up)",
                     f"{soak.growth(soak.rss_kb) / 1024:+.1f} MB "
                     f"({soak.rss_kb[0] / 1024:.0f} -> {soak.rss_kb[-1] / 1024:.0f} MB)", ""))
        rows.append(("  thread count (min / max / end)",
                     f"{min(soak.threads)} / {max(soak.threads)} / {soak.threads[-1]}", ""))
        rows.append(("  open file descriptors (start / max / end)",
                     f"{soak.fds[0]} / {max(soak.fds)} / {soak.fds[-1]}", ""))
        must_be_zero("  leftover actor threads after settling",
                     abs(soak.live_actors_after - 8) + len(soak.extra_threads_after))
        rows.append(("  (run time)", f"{soak.seconds:.0f} s", ""))
        accounted = soak.cycles == (soak.succeeded + soak.failed + soak.degraded
                                     + soak.halted_or_aborted)
        if soak.problems or not accounted or soak.halted or soak.restarts != expected:
            bad.append(f"soak: {soak.problems} accounted={accounted} halted={soak.halted}")

    width = max(len(r[0]) for r in rows) + 2
    vwidth = max(len(r[1]) for r in rows) + 2
    print(f"\nreliability report -- {platform.node()} {platform.machine()}, Python "
          f"{platform.python_version()}, kills={args.kills} cycles={args.cycles} "
          f"faults={args.faults} seed={args.seed}; workdir {workdir}\n")
    print(f"| {'check':<{width}}| {'result':<{vwidth}}| requirement |")
    print(f"|{'-' * (width + 1)}|{'-' * (vwidth + 1)}|-------------|")
    for label, value, need in rows:
        print(f"| {label:<{width}}| {value:<{vwidth}}| {need:<11} |")
    if bad:
        print("\nFAILED:", "; ".join(bad))
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
