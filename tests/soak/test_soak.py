"""Soak: many cycles of the production wiring at a tiny interval with random injected faults.

A real :class:`~aistock_actors.runtime.supervisor.Supervisor` on ``wiring.default_specs()``
(planted data,
a new bar every third cycle: training, walk-forward backtests, promotions and paper trading all
run) performs :data:`CYCLES` cycles while :data:`FAULTS` faults (random actor, random kind:
exception, hang past the step timeout, slow reply, malformed message, ``on_start`` failure) fire
at random moments (``faults.harness.run_soak``). Required:

- every cycle is accounted for: ``cycles_total == succeeded + failed + halted/aborted`` in
  ``supervisor.json``, and no cycle failed without an injected fault to explain it;
- every fired fault except a slow reply cost exactly one restart (nothing restarted for nothing,
  nothing left dead), and the system never halted;
- resident memory, thread count and open file descriptors stay bounded (growth is printed);
- after restarts settle, exactly the eight current actors are alive: abandoned (hung) instances
  finished and stopped, no actor thread leaked.

``bench/reliability_report.py --cycles 500`` runs the long version.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _support.fault_harness import check_state, run_soak

CYCLES = 100
FAULTS = 12
MAX_RSS_GROWTH_KB = 150_000
"""Generous: a leak of a model or a bar store per cycle would show as several MB per cycle."""


@pytest.mark.slow
def test_soak_with_random_faults_stays_bounded_and_accounted(tmp_path: Path) -> None:
    stats = run_soak(tmp_path, CYCLES, seed=3, n_faults=FAULTS, max_seconds=240)
    print(f"\nsoak: {stats.cycles} cycles in {stats.seconds:.1f}s, {stats.succeeded} ok, "
          f"{stats.failed} failed; faults fired {stats.faults_fired}/{stats.faults_planned} "
          f"{stats.fired_by_kind}; restarts {stats.restarts} ({stats.spontaneous_timeouts} "
          f"spontaneous timeouts); RSS growth "
          f"{stats.growth(stats.rss_kb)} kB; threads {stats.threads[0]}->{stats.threads[-1]}; "
          f"fds {stats.fds[0]}->{stats.fds[-1]}")
    assert stats.problems == []
    assert stats.cycles == CYCLES and not stats.halted
    assert stats.cycles == stats.succeeded + stats.failed + stats.halted_or_aborted
    assert stats.halted_or_aborted == 0
    assert stats.failed <= stats.step_faults_fired + stats.spontaneous_timeouts, stats
    assert stats.faults_fired >= FAULTS // 2, stats.fired_by_kind
    slow = stats.fired_by_kind.get("slow", 0)
    # Nothing crashed by itself (checked in stats.problems); every restart is an injected fault
    # (a slow reply costs none) or a step that timed out on an overloaded machine.
    assert stats.restarts == stats.faults_fired - slow + stats.spontaneous_timeouts, stats
    assert stats.spontaneous_timeouts <= 2, stats
    assert stats.growth(stats.rss_kb) < MAX_RSS_GROWTH_KB
    assert max(stats.threads) - min(stats.threads) <= 6, stats.threads
    assert max(stats.fds) - stats.fds[0] <= 10, stats.fds
    assert stats.live_actors_after == 8 and stats.extra_threads_after == []
    assert check_state(tmp_path).problems == []
