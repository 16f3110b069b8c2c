"""Shared machinery of the reliability tests (``tests/faults``, ``tests/soak``) and of
``bench/reliability_report.py``, which runs the same code at larger sizes.

- sample data with a planted pattern, small enough that a full cycle (ingest, train, walk-forward
  backtest, judge, risk, trade) takes a fraction of a second, yet a model gets promoted and
  trades;
- :func:`check_state`: the invariants a state directory must satisfy at any instant — every JSON
  file loads, the audit chain verifies, no order id applied twice, the active model agrees with
  the promotion manifest;
- :class:`SigkillLoop`: a real daemon subprocess killed with SIGKILL at random moments and
  restarted, with :func:`check_state` and the "nothing acknowledged is lost" checks after every
  kill (a pending fall-back or promotion must be repaired by the judge's next start:
  :func:`repair_problems`);
- :func:`run_soak`: a real supervisor on the production wiring running many cycles at a tiny
  interval with random injected faults, measuring memory, threads and file handles.

Nothing here sleeps to synchronise: waits poll a condition with a deadline.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pandas as pd
import pykka

from _support.forkserver import ForkedDaemon, ForkServer
from _support.lifecycle_support import planted_frames
from _support.support import write_config
from _support.waiting import wait_until
from aistock_actors.actors.kill_switch import RemoteCheckState
from aistock_actors.actors.promotion_judge import PromotionJudge
from aistock_actors.config import load_config
from aistock_actors.core.data.sample_data import write_universe_csvs
from aistock_actors.core.promotion.manifest import Manifest
from aistock_actors.core.risk.governor import RiskState
from aistock_actors.core.trading.ledger import LedgerState, reconcile
from aistock_actors.errors import StateError
from aistock_actors.runtime import faults
from aistock_actors.runtime.child_specs import default_specs
from aistock_actors.runtime.faults import FaultPlan, FaultSpec
from aistock_actors.runtime.supervisor import ChildSpec, Supervisor
from aistock_actors.store.alerts import AckState, Alert
from aistock_actors.store.audit import verify_audit_log
from aistock_actors.store.bars import BarStore
from aistock_actors.store.equity_archive import EQUITY_DIR, EquityArchive
from aistock_actors.store.fill_archive import FILLS_DIR, FillArchive
from aistock_actors.store.journal import FillJournal, apply_entry
from aistock_actors.store.ledger import CostBook, PaperPerformance
from aistock_actors.store.models import ModelRecord, says_no_model
from aistock_actors.store.promotion import EquityCurveFile, RegistryFile
from aistock_actors.store.state import HaltState, SupervisorState

REPO = Path(__file__).resolve().parents[2]
SUPERVISOR = str(REPO / "supervisor.py")

N_SYMBOLS = 8  # with fewer, a 300-bar fold cannot show the planted edge over the base rate
FIRST_BARS = 300
MAX_BARS = 2000

ACTORS = (
    "kill_switch_watcher",
    "health_reporter",
    "data_ingestor",
    "trainer",
    "backtester",
    "promotion_judge",
    "risk_governor",
    "paper_trader",
)
"""The eight production children (``wiring.default_specs()``), in start order."""
STEP_OF = {
    "data_ingestor": "ingest",
    "trainer": "train",
    "backtester": "backtest",
    "promotion_judge": "judge",
    "risk_governor": "risk",
    "paper_trader": "trade",
}
MESSAGE_OF = {
    "kill_switch_watcher": "CheckKillSwitch",
    "health_reporter": "CheckKillSwitch",
    "data_ingestor": "IngestBars",
    "trainer": "TrainModel",
    "backtester": "BacktestModel",
    "promotion_judge": "JudgeCandidate",
    "risk_governor": "AssessRisk",
    "paper_trader": "TradePaper",
}
"""The message each actor's faults fire on (watchers: the supervisor's tick)."""
ACTOR_CLASSES = {spec.actor_class.__name__ for spec in default_specs()}
"""pykka names an actor's thread ``<Class>-<n>``."""

SMALL_LIFECYCLE: dict[str, Any] = {
    # Walk-forward with 2 inner and 2 outer splits, horizon 1: 123 bars of history suffice and a
    # whole cycle with training takes ~0.15 s on the planted pattern, which passes the gates.
    # A logistic meta-labeler: with "hgb" (OpenMP) in both the Trainer's and the Backtester's
    # threads of one process, a fold's meta-label step stalled ~1.1 s at random (vs 15 ms).
    # Half a year of bars is trained on on purpose: no floor in years (training.min_history_years).
    "training": {"horizon": 1, "n_splits": 2, "embargo_bars": 1, "max_bars": 400,
                 "meta": "logistic", "min_history_years": 0.0},
    "backtest": {"n_splits": 2},
    # The planted AR(1) pattern is deliberately strong; as the bars grow its Sharpe can pass the
    # plausibility ceiling (stage 8), whose hold these fault tests are not about.
    "promotion": {"min_trades": 10, "max_plausible_sharpe": 50.0},
    "parallel": {"backend": "inline", "n_jobs": 1},
    "risk": {"max_portfolio_drawdown_halt": 1.0},
}


@functools.lru_cache(maxsize=4)
def frames(seed: int = 3) -> dict[str, pd.DataFrame]:
    """Planted-pattern bars (AR(1) returns) for :data:`N_SYMBOLS` symbols, :data:`MAX_BARS` long;
    tests show growing prefixes of them. ``phi`` 0.35: the fault tests need a pattern the small
    lifecycle finds at EVERY history length they show (at 0.28, the lifecycle tests' default,
    the walk-forward of 302 or 312 bars has no fold whose meta-labeler clears its edge test, so
    a loop that first trains there promotes nothing); out-of-sample net Sharpe 4.6-8.7 from 296
    to 338 bars, under this harness's plausibility ceiling of 50."""
    return planted_frames(n_symbols=N_SYMBOLS, n_bars=MAX_BARS, seed=seed, phi=0.35)


def write_bars(tmp: Path, n: int, seed: int = 3) -> None:
    """Make ``tmp/data/<SYMBOL>.csv`` hold the first ``n`` bars (each file replaced whole)."""
    n = min(n, MAX_BARS)
    write_universe_csvs(tmp / "data", {s: f.iloc[:n] for s, f in frames(seed).items()})


def reliability_config(tmp: Path, **sections: Any) -> Path:
    """``tmp/config.json``: test supervision defaults plus :data:`SMALL_LIFECYCLE` and
    ``sections`` (merged one level deep)."""
    merged: dict[str, Any] = {k: dict(v) for k, v in SMALL_LIFECYCLE.items()}
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return write_config(tmp, **merged)


def prepare_state(tmp: Path) -> Path:
    """Planted data and one cycle through the production wiring: a promoted active model that
    has placed paper orders. Returns ``tmp``."""
    write_bars(tmp, FIRST_BARS)
    sup = Supervisor(load_config(reliability_config(tmp)), default_specs())
    sup.start()
    try:
        summary = sup.run_once()
    finally:
        sup.stop()
    assert summary is not None and summary.outcome == "succeeded", summary
    judge = next(s for s in summary.steps if s.name == "judge")
    assert judge.data["status"] == "approved", judge
    assert (tmp / "state" / "paper" / "ledger.json").exists()
    return tmp


def copy_prepared(prepared: Path, tmp: Path) -> None:
    """Copy a :func:`prepare_state` directory into ``tmp`` and show one more bar (ingest adds
    it; the trader fills the planned orders at its open)."""
    for name in ("data", "state", "models"):
        shutil.copytree(prepared / name, tmp / name)
    if (prepared / "integrity.key").exists():  # the models' signing key (#17)
        shutil.copy2(prepared / "integrity.key", tmp / "integrity.key")
    write_bars(tmp, FIRST_BARS + 1)




# --- state invariants ------------------------------------------------------------------------

TYPED_FILES: dict[str, Any] = {
    "state/supervisor.json": SupervisorState,
    "state/HALTED": HaltState,
    "state/promotion/manifest.json": Manifest,
    "state/promotion/registry.json": RegistryFile,
    "state/paper/ledger.json": LedgerState,
    "state/paper/costs.json": CostBook,
    "state/paper/performance.json": PaperPerformance,
    "state/risk/limits.json": RiskState,
    "state/kill_switch_remote.json": RemoteCheckState,
    "models/active/model.json": ModelRecord,
    "state/alerts/acknowledged.json": AckState,
}
"""State files with a known type: each (and its ``.bak``) must decode as that type."""


OUT_OF_STEP = "pointer and manifest out of step"
"""The window of an interrupted judge step. A judge step (or ``--approve``) writes the manifest +
registry and ``models/active/`` as separate atomic writes; since 3b6cf29 (promotion) and 17f9e25
(rollback, retirement) the record is written first and the pointer moved second, so a SIGKILL or
a failed write in between can leave:

- a rollback or retirement recorded while the pointer still names that model
  (:data:`PENDING_FALLBACK`);
- a promotion recorded ``approved`` while the pointer still names the previous model, or none
  (:data:`PENDING_PROMOTION`).

``ActiveModelKeeper.reconcile`` finishes both when the judge starts (a restarted daemon, before
its first cycle trades) and at every judge step. (Until the roll-forward was added, an
interrupted promotion stayed out of step for good: the manifest said the candidate was active,
the pointer named the previous model.) So right after a kill either may be observed, but only if
the judge's next start repairs it -- the SIGKILL loop checks that on a copy of the state, at
once -- and after a final clean cycle pointer and manifest must agree exactly. What must never
happen is an active model the manifest never approved, or any other disagreement."""
PENDING_FALLBACK = f"{OUT_OF_STEP}: fall-back recorded, pointer not yet moved"
PENDING_PROMOTION = f"{OUT_OF_STEP}: promotion recorded, pointer not yet moved"
PENDING = (PENDING_FALLBACK, PENDING_PROMOTION)
"""The signatures allowed right after a kill, if the judge's next start repairs them."""


@dataclass
class StateReport:
    """What :func:`check_state` found."""

    files: int = 0
    problems: list[str] = field(default_factory=list)
    audit_lines: list[bytes] = field(default_factory=list)
    fills: list[str] = field(default_factory=list)
    manifest_ids: list[str] = field(default_factory=list)
    cycles_total: int = 0
    active_model: str | None = None
    approved: int = 0
    promotions: int = 0
    rollbacks: int = 0


def _is_temp(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(".tmp")


def _decode(path: Path, kind: Any) -> str | None:
    try:
        msgspec.json.decode(path.read_bytes(), type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError, OSError) as exc:
        return f"{path}: {exc}"
    return None


def _archived(
    archive: Any, count: int, kind: str, items: str, report: StateReport
) -> list[Any]:
    """The first ``count`` records of ``archive`` (what the ledger says it archived); a
    problem in ``report`` when the archive cannot be read or does not hold exactly those."""
    try:
        records = [r for r in archive.read() if r.seq < count]
    except StateError as exc:
        report.problems.append(f"{kind} archive: {exc}")
        records = []
    if [r.seq for r in records] != list(range(count)):
        report.problems.append(f"{kind} archive: holds {len(records)} of the ledger's {count} "
                               f"archived {items}")
    return records


def check_state(tmp: Path) -> StateReport:
    """Every invariant a state directory must satisfy at any instant (see the module docstring).

    ``problems`` lists violations; the other fields are what the caller compares across kills.
    """
    report = StateReport()
    state_dir = tmp / "state"
    for root in (state_dir, tmp / "models"):
        if not root.exists():
            continue
        for path in sorted(root.rglob("*")):
            if not path.is_file() or _is_temp(path):
                continue
            rel = path.relative_to(tmp).as_posix()
            base = rel[: -len(".bak")] if rel.endswith(".bak") else rel
            if base == "models/active/model.json" and says_no_model(path):
                report.files += 1  # the pointer saying no model is active (NoActiveModel)
                problem = None
            elif base in TYPED_FILES:
                report.files += 1
                problem = _decode(path, TYPED_FILES[base])
            elif base.startswith("state/promotion/curves/") and base.endswith(".json"):
                report.files += 1
                problem = _decode(path, EquityCurveFile)
            elif path.suffix == ".json" or rel.endswith(".json.bak"):
                report.files += 1
                kind: type = Alert if "/alerts/" in rel else object
                problem = _decode(path, kind)
            else:
                continue
            if problem is not None:
                report.problems.append(f"corrupt: {problem}")
    audit = state_dir / "audit" / "log.jsonl"
    verdict = verify_audit_log(audit)
    if not verdict.ok:
        report.problems.append(f"audit chain: line {verdict.first_broken_line}: {verdict.reason}")
    if audit.exists():
        report.audit_lines = [line for line in audit.read_bytes().split(b"\n")[:-1]]
    bars = state_dir / "bars"
    if bars.exists():
        try:
            BarStore(bars).load_many()
        except Exception as exc:  # the bar store must load whole, whatever the instant
            report.problems.append(f"corrupt: bar store: {exc!r}")
    _check_ledger(state_dir, report)
    _check_promotion(tmp, report)
    sup = state_dir / "supervisor.json"
    if sup.exists() and not _decode(sup, SupervisorState):
        saved = msgspec.json.decode(sup.read_bytes(), type=SupervisorState)
        report.cycles_total = saved.cycles_total
        audited = _audited_outcomes(report.audit_lines)
        # _finish_cycle saves supervisor.json BEFORE auditing the outcome, so an audited outcome
        # is always counted: the counters are never behind the log.
        if audited["cycle_succeeded"] > saved.cycles_succeeded:
            report.problems.append(
                f"{audited['cycle_succeeded']} cycle_succeeded records but supervisor.json "
                f"counts {saved.cycles_succeeded}"
            )
        if audited["autopilot_failed"] > saved.cycles_failed:
            report.problems.append(
                f"{audited['autopilot_failed']} autopilot_failed records but supervisor.json "
                f"counts {saved.cycles_failed}"
            )
    return report


def _audited_outcomes(lines: list[bytes]) -> dict[str, int]:
    counts = {"cycle_succeeded": 0, "autopilot_failed": 0}
    for line in lines:
        with contextlib.suppress(ValueError):
            action = json.loads(line).get("action")
            if action in counts:
                counts[action] += 1
    return counts


def _check_ledger(state_dir: Path, report: StateReport) -> None:
    path = state_dir / "paper" / "ledger.json"
    if not path.exists() or _decode(path, LedgerState):
        return
    ledger = msgspec.json.decode(path.read_bytes(), type=LedgerState)
    problems = reconcile(ledger)
    report.problems.extend(f"ledger: {p}" for p in problems)
    if len(set(ledger.applied_order_ids)) != len(ledger.applied_order_ids):
        report.problems.append("ledger: an order id was applied twice")
    # the whole fill log and equity curve: the archived records (#18) and the ledger's window
    archived = _archived(FillArchive(state_dir / "paper" / FILLS_DIR), ledger.fills_archived,
                         "fill", "fills", report)
    ids = [r.order_id for r in archived]
    ids += [f.order_id for f in ledger.fills]
    if len(set(ids)) != len(ids):
        report.problems.append("ledger: two fills carry the same order id")
    report.fills = ids
    _archived(EquityArchive(state_dir / "paper" / EQUITY_DIR), ledger.curve_archived, "equity",
              "points", report)
    report.problems.extend(journal_problems(state_dir, ledger, exact=False))


def journal_problems(state_dir: Path, ledger: LedgerState, *, exact: bool) -> list[str]:
    """The fill journal (#17) rebuilds the saved ledger; right after a kill it may be one write
    ahead (journaled, the ledger not yet replaced: the next start levels it), never behind."""
    try:
        entries = FillJournal(state_dir / "paper" / "journal.jsonl").entries()
    except StateError as exc:
        return [f"journal: {exc}"]
    rebuilt: list[LedgerState | None] = [None]
    for entry in entries:
        rebuilt.append(apply_entry(rebuilt[-1], entry))
    allowed = rebuilt[-1:] if exact else rebuilt[-2:]
    if ledger not in allowed:
        return [f"journal: the ledger rebuilt from {len(entries)} entries differs from the saved "
                "ledger"]
    return []


def _check_promotion(tmp: Path, report: StateReport) -> None:
    """The active model is the last ``approved`` manifest entry that was neither retired nor
    rolled back (the registry's fall-back target), or no model is active."""
    manifest_path = tmp / "state" / "promotion" / "manifest.json"
    pointer = tmp / "models" / "active" / "model.json"
    manifest: list[dict[str, Any]] = []
    if manifest_path.exists() and not _decode(manifest_path, list):
        manifest = json.loads(manifest_path.read_text())
    report.manifest_ids = [str(e.get("id")) for e in manifest]
    registry_path = tmp / "state" / "promotion" / "registry.json"
    # A rolled-back entry excludes its model even before the registry (written second) does.
    excluded = {str(e["model_id"]) for e in manifest if e.get("status") == "rolled_back"}
    if registry_path.exists() and not _decode(registry_path, RegistryFile):
        registry = msgspec.json.decode(registry_path.read_bytes(), type=RegistryFile)
        excluded |= set(registry.retired_models) | set(registry.rolled_back_models)
    approved = [str(e["model_id"]) for e in manifest if e.get("status") == "approved"]
    ever_approved = {str(e["model_id"]) for e in manifest
                     if e.get("status") in ("approved", "rolled_back")}
    report.approved = len(approved)
    report.promotions = sum(1 for e in manifest if e.get("action") == "promote")
    report.rollbacks = sum(1 for e in manifest if e.get("status") == "rolled_back")
    expected = next((m for m in reversed(approved) if m not in excluded), None)
    active = None
    if pointer.exists() and not _decode(pointer, ModelRecord):
        active = msgspec.json.decode(pointer.read_bytes(), type=ModelRecord).model_id
    report.active_model = active
    if active is not None and active not in ever_approved:
        report.problems.append(f"active model {active!r} was never approved in the manifest")
    elif active is not None and active in excluded:
        report.problems.append(f"{PENDING_FALLBACK}: active model {active!r} was rolled back "
                               "or retired")
    elif active != expected and approved and expected == approved[-1]:
        report.problems.append(f"{PENDING_PROMOTION}: active model {active!r}, the manifest's "
                               f"last approved entry is {expected!r}")
    elif active != expected:
        report.problems.append(
            f"{OUT_OF_STEP}: active model {active!r}, the manifest's last approved (not "
            f"retired or rolled back) entry is {expected!r}"
        )


def repair_problems(tmp: Path, **sections: Any) -> list[str]:
    """What the judge's next start leaves of a pending fall-back or promotion in ``tmp``.

    Runs the real PromotionJudge's start-up (its reconcile) under a supervisor on a scratch copy
    of ``tmp``'s promotion state and active pointer (the model folders are symlinked, not
    copied), so the SIGKILL loop's own state is untouched; returns the promotion problems
    :func:`check_state` still finds there (``sections``: the config's, as for ``tmp``)."""
    scratch = tmp.parent / f"{tmp.name}-judge-repair"
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "models").mkdir(parents=True)
    shutil.copytree(tmp / "state" / "promotion", scratch / "state" / "promotion")
    if (tmp / "state" / "HALTED").exists():
        shutil.copy2(tmp / "state" / "HALTED", scratch / "state" / "HALTED")
    for child in (tmp / "models").iterdir():
        if child.name == "active":
            shutil.copytree(child, scratch / "models" / "active")
        else:
            (scratch / "models" / child.name).symlink_to(child.resolve())
    if (tmp / "integrity.key").exists():  # the models' signing key (#17)
        shutil.copy2(tmp / "integrity.key", scratch / "integrity.key")
    config = reliability_config(scratch, **sections)
    sup = Supervisor(load_config(config), [ChildSpec(name="promotion_judge",
                                                     actor_class=PromotionJudge)])
    sup.start()  # the judge reconciles in its start-up; stop() waits for it
    sup.stop()
    left = [p for p in check_state(scratch).problems if p.startswith(("active model", OUT_OF_STEP))]
    shutil.rmtree(scratch, ignore_errors=True)
    return left


def lost_records(before: StateReport, after: StateReport) -> list[str]:
    """What ``before`` had that ``after`` lost: audit lines (the log is append-only: the old
    lines must be a prefix of the new), fills (a prefix of the fill log), manifest entries
    (a prefix of the manifest), and the persisted cycle count (never goes back)."""
    lost: list[str] = []
    n = len(before.audit_lines)
    if after.audit_lines[:n] != before.audit_lines:
        keep = sum(1 for a, b in zip(before.audit_lines, after.audit_lines, strict=False) if a == b)
        lost.append(f"audit: {n - keep} acknowledged line(s) changed or missing")
    if after.fills[: len(before.fills)] != before.fills:
        lost.append("ledger: an acknowledged fill is missing")
    if after.manifest_ids[: len(before.manifest_ids)] != before.manifest_ids:
        lost.append("manifest: an acknowledged entry is missing")
    if after.cycles_total < before.cycles_total:
        lost.append(f"supervisor.json: cycles_total went back {before.cycles_total} -> "
                    f"{after.cycles_total}")
    return lost


# --- the SIGKILL loop -------------------------------------------------------------------------


@dataclass
class KillRecord:
    """One kill: when, where, and what the checks found."""

    round: int
    moment: str
    cycles_started: int
    problems: list[str]
    lost: list[str]
    pending: list[str] = field(default_factory=list)
    """:data:`PENDING` signatures found right after the kill that the judge's next start
    repairs (not problems; an unrepaired one is a problem)."""


@dataclass
class SigkillStats:
    """Totals of a SIGKILL loop."""

    kills: int = 0
    mid_cycle: int = 0
    during_startup: int = 0
    corrupt_files: int = 0
    lost_acknowledged: int = 0
    duplicate_fills: int = 0
    manifest_mismatches: int = 0
    """Distinct incidents of an active model that is not the manifest's (a disagreement that
    persists across rounds counts once), pending ones the judge's next start does not repair
    included."""
    pending_repaired: int = 0
    """Distinct incidents of a pending fall-back or promotion right after a kill
    (:data:`PENDING`), each repaired by the judge's next start."""
    other_problems: int = 0
    files_checked: int = 0
    fills: int = 0
    approved_entries: int = 0
    promotions: int = 0
    rollbacks: int = 0
    cycles_total: int = 0
    records: list[KillRecord] = field(default_factory=list)
    seconds: float = 0.0

    def failures(self) -> list[str]:
        return [f"round {r.round} ({r.moment}): {p}" for r in self.records
                for p in (*r.problems, *r.lost)]


STARTUP_EVERY = 6
"""One SIGKILL round in this many kills the daemon during start-up."""
CYCLE_SLICES = 5
CYCLE_KILL_SECONDS = 0.35
"""Kills into a cycle land in successive fifths of its first 0.35 s."""


class SigkillLoop:
    """A daemon on ``tmp`` killed with SIGKILL at random moments, restarted, checked."""

    def __init__(self, tmp: Path, seed: int = 7, interval_minutes: float = 0.001, *,
                 server: ForkServer | None = None) -> None:
        self.tmp = tmp
        # With a server, cycle rounds fork their daemon from it (no interpreter start per
        # round); start-up rounds always run supervisor.py as a new process.
        self.server = server
        self.rng = random.Random(seed)
        self.interval = interval_minutes
        self.shown = FIRST_BARS
        write_bars(tmp, self.shown)
        # Pointer changes must keep happening between the kills: a challenger that merely
        # matches the incumbent is promoted, and a model whose paper record falls short of its
        # backtest at all is rolled back (to the previous good model, or to none).
        self.sections: dict[str, Any] = {
            "supervision": {"kill_switch_poll_seconds": 0.05},
            "promotion": {"champion_margin": 0.0},
            "headless": {"auto_rollback_on_degradation": True, "degradation_threshold_pct": 0.0},
        }
        self.config = reliability_config(tmp, **self.sections)
        self.stats = SigkillStats()
        self.last = check_state(tmp)
        self._mismatch = ""
        self._pending = ""
        self._cycle_kills = 0

    def argv(self) -> list[str]:
        return [str(self.config), "--daemon", "--interval-minutes", str(self.interval),
                "--log-format", "text"]

    def start(self, log: Path, *, fork: bool = False) -> subprocess.Popen[bytes] | ForkedDaemon:
        if fork and self.server is not None:
            return self.server.spawn(self.argv(), self.tmp, log)
        with open(log, "wb") as out:
            return subprocess.Popen(
                [sys.executable, SUPERVISOR, str(self.config), "--daemon", "--interval-minutes",
                 str(self.interval), "--log-format", "text"],
                cwd=self.tmp, stdout=out, stderr=subprocess.STDOUT)

    @staticmethod
    def cycle_lines(log: Path) -> list[str]:
        try:
            text = log.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return [line for line in text.splitlines() if "supervisor: cycle c" in line]

    def run(self, kills: int, *, max_seconds: float = 3600.0) -> SigkillStats:
        """``kills`` rounds of start, wait a random moment, SIGKILL, check."""
        began = time.monotonic()
        for number in range(1, kills + 1):
            if time.monotonic() - began > max_seconds:
                break
            self.round(number)
        self.stats.seconds = time.monotonic() - began
        return self.stats

    def round(self, number: int) -> KillRecord:
        # A new bar most rounds, so the next cycle ingests, trains, backtests, judges and trades.
        if self.rng.random() < 0.8:
            self.shown += 1
            write_bars(self.tmp, self.shown)
        log = self.tmp / "daemon.log"
        startup = number % STARTUP_EVERY == 1
        proc = self.start(log, fork=not startup)
        moment = "startup"
        try:
            # Stratified, not drawn: every STARTUP_EVERY-th round kills during interpreter
            # start, lock and actor start; the others kill at an offset into the 1st-3rd cycle
            # taken from successive slices of the ~0.35 s a cycle takes, so a few rounds cover
            # the start-up and every part of a cycle that many random rounds would.
            if startup:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=self.rng.uniform(0.0, 1.2))
            else:
                moment = "cycle"
                target = 1 + number % 3
                self._wait_cycles(proc, log, target)
                slot = self._cycle_kills % CYCLE_SLICES
                self._cycle_kills += 1
                offset = (slot + self.rng.random()) * CYCLE_KILL_SECONDS / CYCLE_SLICES
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=offset)  # a cycle takes ~0.25 s
            before = check_state(self.tmp)  # what is on disk now is acknowledged
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        if proc.returncode != -signal.SIGKILL:
            raise AssertionError(f"daemon exited by itself ({proc.returncode}):\n"
                                 f"{log.read_text(errors='replace')[-3000:]}")
        lines = self.cycle_lines(log)
        started = sum(1 for line in lines if line.rstrip().endswith("started"))
        if moment == "cycle" and lines and lines[-1].rstrip().endswith("started"):
            moment = "mid-cycle"
        after = check_state(self.tmp)
        lost = lost_records(before, after) + lost_records(self.last, after)
        problems = [p for p in after.problems if not p.startswith(PENDING)]
        pending = [p for p in after.problems if p.startswith(PENDING)]
        if pending:
            left = repair_problems(self.tmp, **self.sections)
            if left:
                problems += [f"{p}; not repaired by the judge's next start: {left}"
                             for p in pending]
                pending = []
        record = KillRecord(number, moment, started, problems, lost, pending)
        self._count(record, after)
        self.last = after
        return record

    def _wait_cycles(self, proc: subprocess.Popen[bytes] | ForkedDaemon, log: Path,
                     count: int) -> None:
        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"daemon exited with {proc.returncode}:\n"
                                     f"{log.read_text(errors='replace')[-3000:]}")
            return sum(1 for line in self.cycle_lines(log)
                       if line.rstrip().endswith("started")) >= count

        wait_until(ready, 60.0, f"{count} cycle(s) to start")

    def _count(self, record: KillRecord, after: StateReport) -> None:
        s = self.stats
        s.kills += 1
        s.mid_cycle += record.moment == "mid-cycle"
        s.during_startup += record.moment == "startup"
        s.files_checked += after.files
        s.fills = len(after.fills)
        s.approved_entries = after.approved
        s.promotions = after.promotions
        s.rollbacks = after.rollbacks
        s.cycles_total = after.cycles_total
        for problem in record.problems:
            if problem.startswith("corrupt"):
                s.corrupt_files += 1
            elif "twice" in problem or "same order id" in problem:
                s.duplicate_fills += 1
            elif problem.startswith(("active model", OUT_OF_STEP)):
                if problem != self._mismatch:  # a new incident, not the same one persisting
                    s.manifest_mismatches += 1
            else:
                s.other_problems += 1
        if record.pending and record.pending[0] != self._pending:
            s.pending_repaired += 1
        s.lost_acknowledged += len(record.lost)
        s.records.append(record)
        self._mismatch = next((p for p in record.problems
                               if p.startswith(("active model", OUT_OF_STEP))), "")
        self._pending = record.pending[0] if record.pending else ""


# --- the soak ---------------------------------------------------------------------------------


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS (kB), thread count and open file descriptors of a process (from ``/proc``)."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "Threads"):
            fields[key] = int(value.split()[0])
    fields["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return fields


def random_plan(rng: random.Random, n_faults: int, cycles: int, hang_seconds: float) -> FaultPlan:
    """``n_faults`` faults on random actors and kinds, spread over ``cycles`` cycles."""
    kinds = ("raise", "hang", "slow", "malformed", "on_start")
    specs = []
    for _ in range(n_faults):
        actor = rng.choice(ACTORS)
        kind = rng.choice(kinds)
        watcher = actor not in STEP_OF
        if kind == "on_start":  # the first start fails (later starts follow restarts only)
            specs.append(FaultSpec(actor=actor, kind=kind))
            continue
        # A watcher sees several ticks per cycle (one per 0.05 s poll), a step actor one message.
        spread = cycles * (5 if watcher else 1)
        seconds = hang_seconds if kind == "hang" else 0.05
        specs.append(FaultSpec(actor=actor, kind=kind, message_type=MESSAGE_OF[actor],
                               after=rng.randint(1, max(1, spread - 1)), seconds=seconds))
    return FaultPlan(specs)


@dataclass
class SoakStats:
    """What a soak measured."""

    cycles: int = 0
    succeeded: int = 0
    failed: int = 0
    degraded: int = 0
    halted_or_aborted: int = 0
    faults_planned: int = 0
    faults_fired: int = 0
    fired_by_kind: dict[str, int] = field(default_factory=dict)
    step_faults_fired: int = 0
    """Fired faults that can fail a cycle (a step actor's raise, hang, malformed, on_start)."""
    step_timeouts: int = 0
    spontaneous_timeouts: int = 0
    """Step timeouts without an injected hang (an overloaded machine); each is one restart."""
    restarts: int = 0
    halted: bool = False
    rss_kb: list[int] = field(default_factory=list)
    threads: list[int] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)
    extra_threads_after: list[str] = field(default_factory=list)
    live_actors_after: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def growth(self, series: list[int]) -> int:
        """End minus the value after warm-up (a tenth of the run)."""
        if len(series) < 2:
            return 0
        return series[-1] - series[max(1, len(series) // 10)]


@contextlib.contextmanager
def installed(plan: FaultPlan | None) -> Iterator[FaultPlan | None]:
    """Install ``plan`` for the duration; end its hangs and uninstall at exit."""
    faults.install(plan)
    try:
        yield plan
    finally:
        if plan is not None:
            plan.release.set()
        faults.install(None)


STEP_TIMEOUT_SOAK = 3.0
"""Step timeout of the soak: a healthy step takes < 0.5 s (cold, on a loaded 2-core machine,
a first backtest once took 2 s)."""
INJECTED_MARKS = ("InjectedFault", "MalformedMessage", "hung: busy")
"""What the crash report of an injected fault says (a watcher's hang: the watchdog's words)."""


def run_soak(tmp: Path, cycles: int, *, seed: int = 3, n_faults: int = 10,
             hang_seconds: float = STEP_TIMEOUT_SOAK + 0.3,
             max_seconds: float = 1800.0) -> SoakStats:
    """A real supervisor on the production wiring runs ``cycles`` cycles at a tiny interval,
    with ``n_faults`` random injected faults and a new bar every few cycles."""
    rng = random.Random(seed)
    shown = FIRST_BARS
    write_bars(tmp, shown)
    cfg = reliability_config(
        tmp,
        headless={"max_consecutive_failures": 1000},
        supervision={
            "max_restarts": 10_000,
            "watcher_timeout_seconds": 0.5,
            "step_timeouts": {s: STEP_TIMEOUT_SOAK for s in STEP_OF.values()},
        },
    )
    plan = random_plan(rng, n_faults, cycles, hang_seconds)
    stats = SoakStats(faults_planned=n_faults)
    baseline = {t.ident for t in threading.enumerate()}
    began = time.monotonic()
    with installed(plan):
        sup = Supervisor(load_config(cfg), default_specs())
        sup.start()
        try:
            sup.net.daemon_interval_seconds = 0.01
            next_sample = 0
            while sup.state.cycles_total < cycles:
                if time.monotonic() - began > max_seconds:
                    stats.problems.append(f"stopped after {max_seconds:g}s")
                    break
                if sup.halted:
                    stats.problems.append(f"halted: {sup.halt}")
                    break
                restarting = any(c.ref is None for c in sup.children.values())
                if sup.cycle is None and not restarting:
                    # (The daemon would start the next cycle on its interval, minutes in
                    # production, far longer than a restart's backoff of <= 0.05 s here; a
                    # step sent to a child still restarting is skipped as "child_restarting" and
                    # the cycle ends "degraded"; this loop keeps every cycle a plain one.)
                    if sup.state.cycles_total % 3 == 0:
                        shown += 1
                        write_bars(tmp, shown)
                    sup.begin_cycle()
                sup.pump(0.02)
                if sup.state.cycles_total >= next_sample:
                    next_sample = sup.state.cycles_total + max(1, cycles // 50)
                    sample = proc_status()
                    stats.rss_kb.append(sample["VmRSS"])
                    stats.threads.append(sample["Threads"])
                    stats.fds.append(sample["fds"])
            plan.release.set()  # end hangs still running; abandoned instances then stop
            _settle(sup, hang_seconds)
            alive = [t for t in threading.enumerate() if t.ident not in baseline]
            actor_threads = [t for t in alive if t.name.split("-")[0] in ACTOR_CLASSES]
            stats.live_actors_after = len(pykka.ActorRegistry.get_all())
            expected = {"aistock-net"}
            stats.extra_threads_after = sorted(
                t.name for t in alive if t not in actor_threads and t.name not in expected)
            if stats.live_actors_after != len(ACTORS):
                stats.problems.append(
                    f"{stats.live_actors_after} live actors after settling, want {len(ACTORS)}")
            if len(actor_threads) != len(ACTORS):
                stats.problems.append(
                    f"{len(actor_threads)} actor threads after settling: "
                    f"{sorted(t.name for t in actor_threads)}")
            stats.halted = sup.halted
        finally:
            sup.stop()
    stats.seconds = time.monotonic() - began
    saved = sup.state
    stats.cycles = saved.cycles_total
    stats.succeeded = saved.cycles_succeeded
    stats.failed = saved.cycles_failed
    stats.degraded = saved.cycles_degraded
    stats.halted_or_aborted = (saved.cycles_total - saved.cycles_succeeded - saved.cycles_failed
                               - saved.cycles_degraded)
    stats.restarts = sum(saved.restarts.values())
    stats.faults_fired = plan.count()
    hangs = 0
    for actor, kind, _message in plan.history:
        stats.fired_by_kind[kind] = stats.fired_by_kind.get(kind, 0) + 1
        stats.step_faults_fired += actor in STEP_OF and kind != "slow"
        hangs += actor in STEP_OF and kind == "hang"
    _explain_restarts(tmp / "state", stats, hangs)
    return stats


def _explain_restarts(state_dir: Path, stats: SoakStats, injected_hangs: int) -> None:
    """Every crash must come from an injected fault; step timeouts beyond the injected hangs
    are counted as spontaneous (each cost one restart and one failed cycle)."""
    for line in (state_dir / "audit" / "log.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["action"] == "actor_crashed":
            error = str(record["details"].get("error", ""))
            if not any(mark in error for mark in INJECTED_MARKS):
                stats.problems.append(f"{record['actor']} crashed by itself: {error[:300]}")
    for path in sorted((state_dir / "alerts" / "error").glob("*.json")):
        alert = json.loads(path.read_text())
        if alert["code"].endswith("_failed") and alert["details"].get("status") == "timeout":
            stats.step_timeouts += 1
    stats.spontaneous_timeouts = max(0, stats.step_timeouts - injected_hangs)


def _settle(sup: Supervisor, hang_seconds: float) -> None:
    """Pump until no restart is due and every abandoned instance has stopped (bounded)."""

    def settled() -> bool:
        sup.pump(0.02)
        children_up = all(c.ref is not None and c.restart_due is None
                          for c in sup.children.values())
        return children_up and len(pykka.ActorRegistry.get_all()) == len(ACTORS)

    wait_until(settled, 10.0 + hang_seconds, "restarts to settle and abandoned actors to stop")
