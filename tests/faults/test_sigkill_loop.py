"""A real daemon killed with SIGKILL at random moments, again and again (``faults.harness``).

The daemon runs the production wiring on planted-pattern data at a 0.06 s interval: every cycle
ingests, trains, backtests, judges (promotions happen), adapts risk and paper-trades. Each round
usually adds a bar, starts the daemon, and kills it at a random instant — during interpreter
start-up and actor start (15 %), or 0 to 0.35 s after the 1st-3rd cycle started. Before the kill the
state on disk is recorded as *acknowledged*; after it, :func:`faults.harness.check_state` and
:func:`faults.harness.lost_records` require:

- every JSON file under ``state/`` and ``models/`` (and every ``.bak``) decodes, as its type
  where it has one; the bar store loads;
- the audit chain verifies, and every line that was on disk before the kill is still there,
  unchanged (append-only: the old log is a prefix of the new);
- the ledger reconciles with its fill log, no order id was applied twice, and every fill that
  was persisted is still in the fill log;
- no manifest entry disappeared; ``supervisor.json`` never counts fewer cycles, nor fewer than
  the outcomes the audit log records;
- the active model, if any, was approved in the manifest; and it is the last approved entry
  not rolled back or retired (or none is active) -- except in the window of an interrupted
  judge step (``faults.harness.OUT_OF_STEP``), tolerated here with its exact signature and
  counted; after the final clean cycle a pending fall-back must have been finished.

CI runs 30 kills; ``bench/reliability_report.py --kills 200`` runs the long version.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from faults.harness import (
    OUT_OF_STEP,
    PENDING_FALLBACK,
    SUPERVISOR,
    SigkillLoop,
    check_state,
)

KILLS = 30


@pytest.mark.slow
def test_sigkill_at_random_moments_never_corrupts_loses_or_doubles(tmp_path: Path) -> None:
    loop = SigkillLoop(tmp_path, seed=7)
    stats = loop.run(KILLS, max_seconds=240)
    assert stats.kills == KILLS, f"only {stats.kills} kills in time"
    assert stats.failures(tolerate_known=True) == []
    if stats.known_bug_incidents:
        print(f"\nknown out-of-step window hit {stats.known_bug_incidents} time(s): "
              f"{[f for f in stats.failures() if OUT_OF_STEP in f][:1]}")
    assert stats.mid_cycle >= KILLS // 3, [r.moment for r in stats.records]
    assert stats.during_startup >= 1
    # The loop really exercised promotion and trading between kills.
    assert stats.promotions >= 1 and stats.fills > 0, stats
    final = subprocess.run([sys.executable, SUPERVISOR, str(loop.config), "--run-once"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert final.returncode == 0, final.stdout + final.stderr
    left = check_state(tmp_path).problems  # the clean cycle's judge step finished any fall-back
    assert [p for p in left if not p.startswith(OUT_OF_STEP) or p.startswith(PENDING_FALLBACK)] \
        == []
    verify = subprocess.run([sys.executable, SUPERVISOR, str(loop.config), "--audit-verify"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert verify.returncode == 0 and "hash chain intact" in verify.stdout, verify.stdout
    status = subprocess.run([sys.executable, SUPERVISOR, str(loop.config), "--status", "--json"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    data = json.loads(status.stdout)
    assert data["halted"] is False and data["cycles_total"] >= stats.cycles_total
    critical = list((tmp_path / "state" / "alerts" / "critical").glob("*.json"))
    assert critical == [], [p.name for p in critical]
