"""A real daemon killed with SIGKILL at random moments, again and again (``faults.harness``).

The daemon runs the production wiring on planted-pattern data at a 0.06 s interval: every cycle
ingests, trains, backtests, judges (promotions happen), adapts risk and paper-trades. Each round
usually adds a bar, starts the daemon, and kills it — during interpreter start-up and actor
start (every 6th round), or 0 to 0.35 s after the 1st-3rd cycle started (the offsets taken from
successive fifths of that span, so 20 rounds cover it as 30 random ones did). Before the kill the
state on disk is recorded as *acknowledged*; after it, :func:`faults.harness.check_state` and
:func:`faults.harness.lost_records` require:

- every JSON file under ``state/`` and ``models/`` (and every ``.bak``) decodes, as its type
  where it has one; the bar store loads;
- the audit chain verifies, and every line that was on disk before the kill is still there,
  unchanged (append-only: the old log is a prefix of the new);
- the ledger reconciles with its fill log, no order id was applied twice, and every fill that
  was persisted is still in the fill log; the equity archive holds every point the ledger says
  it archived (#18); the fill journal rebuilds the saved ledger (or is one
  write ahead of it right after a kill; exactly equal after the final clean cycle, #17);
- no manifest entry disappeared; ``supervisor.json`` never counts fewer cycles, nor fewer than
  the outcomes the audit log records;
- the active model, if any, was approved in the manifest; and it is the last approved entry
  not rolled back or retired (or none is active). Right after a kill, the window of an
  interrupted judge step -- a fall-back or a promotion recorded, the pointer not yet moved
  (``faults.harness.PENDING``) -- is allowed only if the judge's next start repairs it (checked
  at once on a copy of the state: ``faults.harness.repair_problems``); after the final clean
  cycle pointer and manifest must agree exactly.

CI runs 20 kills; ``bench/reliability_report.py --kills 200`` runs the long version.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from _support.fault_harness import (
    PENDING_PROMOTION,
    SUPERVISOR,
    SigkillLoop,
    check_state,
    copy_prepared,
    journal_problems,
    repair_problems,
)
from _support.forkserver import ForkServer

from aistock_actors.core.trading.ledger import LedgerState

KILLS = 20


@pytest.mark.slow
def test_sigkill_at_random_moments_never_corrupts_loses_or_doubles(
    tmp_path: Path, fork_server: ForkServer
) -> None:
    # Start-up rounds run supervisor.py as a new process; cycle rounds fork from fork_server.
    loop = SigkillLoop(tmp_path, seed=7, server=fork_server)
    stats = loop.run(KILLS, max_seconds=240)
    assert stats.kills == KILLS, f"only {stats.kills} kills in time"
    assert stats.failures() == []
    if stats.pending_repaired:
        pending = next(p for r in stats.records for p in r.pending)
        print(f"\npending fall-back/promotion after {stats.pending_repaired} kill(s), each "
              f"repaired by the judge's next start, e.g. {pending}")
    assert stats.mid_cycle >= KILLS // 3, [r.moment for r in stats.records]
    assert stats.during_startup >= 1
    # The loop really exercised promotion and trading between kills.
    assert stats.promotions >= 1 and stats.fills > 0, stats
    final = subprocess.run([sys.executable, SUPERVISOR, str(loop.config), "--run-once"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert final.returncode == 0, final.stdout + final.stderr
    # The clean cycle's judge finished any pending fall-back or promotion: exact agreement.
    assert check_state(tmp_path).problems == []
    # #17: after every kill and the clean cycle, the ledger rebuilt from the fill journal equals
    # the saved ledger exactly.
    saved = msgspec.json.decode((tmp_path / "state" / "paper" / "ledger.json").read_bytes(),
                                type=LedgerState)
    assert saved.fills and journal_problems(tmp_path / "state", saved, exact=True) == []
    verify = subprocess.run([sys.executable, SUPERVISOR, str(loop.config), "--audit-verify"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert verify.returncode == 0 and "hash chain intact" in verify.stdout, verify.stdout
    status = subprocess.run([sys.executable, SUPERVISOR, str(loop.config), "--status", "--json"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    data = json.loads(status.stdout)
    assert data["halted"] is False and data["cycles_total"] >= stats.cycles_total
    critical = list((tmp_path / "state" / "alerts" / "critical").glob("*.json"))
    assert critical == [], [p.name for p in critical]


def test_a_pending_promotion_after_a_kill_is_repaired_by_the_judges_next_start(
    prepared: Path, tmp_path: Path
) -> None:
    """The loop's rule on its own: the state a kill between the ``approved`` record and the
    pointer move leaves (here the first promotion: no pointer yet) is reported as
    ``PENDING_PROMOTION``, and the judge's next start (on a copy) leaves nothing."""
    copy_prepared(prepared, tmp_path)
    active = tmp_path / "models" / "active"
    (active / "model.json").unlink()
    (active / "model.json.bak").unlink(missing_ok=True)
    problems = check_state(tmp_path).problems
    assert len(problems) == 1 and problems[0].startswith(PENDING_PROMOTION), problems
    assert repair_problems(tmp_path) == []
    assert check_state(tmp_path).problems == problems  # the loop's own state is untouched
