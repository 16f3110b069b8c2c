"""DataIngestor: ingests new bars from the CSV folder into the bar store, once per cycle.

A rejected file (malformed, non-monotonic, impossible prices, a bar from the future or an
implausible jump from the previous close, #17) raises an error alert naming
the file, the row and the reason; other symbols still ingest and the rejected symbol's earlier
bars stay as they were. Only when no symbol could be ingested at all does the step fail
("Data ingestion failure: retry next cycle, alert").

With ``data.source`` ``ccxt`` or ``alpaca`` the step fetches the closed bars newer than the store
from the provider instead (``aistock_actors/sources/``); a failed fetch of a symbol is an error
alert and the symbol is retried next cycle, and the step fails only when no symbol was fetched.
"""

from __future__ import annotations

from aistock_actors.actors.base import SupervisedActor
from aistock_actors.errors import ConfigError, DataError, StateError
from aistock_actors.messages import Reply, Request
from aistock_actors.messages.data import BarsIngested, DataIngestorInbox, IngestBars
from aistock_actors.runtime import progress
from aistock_actors.runtime.clock import epoch_ns
from aistock_actors.sources.fetch import describe
from aistock_actors.store.bars import BarStore
from aistock_actors.store.ingest import BarLimits, IngestReport, ingest_directory

FETCH_BUDGET_FRACTION = 0.9
"""Share of the ingest step's timeout a provider fetch may use (it replies before the deadline)."""


class DataIngestor(SupervisedActor):
    """Owns the bar store; its state on disk is the store itself."""

    child_name = "data_ingestor"
    inbox = DataIngestorInbox

    def load_state(self) -> None:
        self.store = BarStore(self.ctx.config.state_dir / "bars")
        self.store.fold_all()  # the appended segments into their .npz: each start begins compact

    def handle(self, request: Request) -> Reply:
        match request:
            case IngestBars():
                return self.ingest(request)
            case _:
                return super().handle(request)

    def ingest(self, request: IngestBars) -> Reply:
        """Run one incremental ingestion and report it."""
        if self.ctx.config.config.data.source != "csv":
            return self.fetch(request)
        csv_dir = self.ctx.config.csv_dir
        clock = self.ctx.clock  # a replay's market clock: later rows are not written yet
        bound = epoch_ns(clock.market_now()) if clock.is_simulated() else None
        try:
            report = ingest_directory(
                csv_dir,
                self.store,
                limits=self._limits(),
                track=lambda files: progress.track(files, "ingest", "files"),
                not_after_ns=bound,
            )
        except DataError as exc:
            return self.fail(request, "no_data", str(exc))
        except StateError as exc:
            self.ctx.alerts.raise_alert(
                "critical", "bar_store_unreadable", str(exc), actor=self.ctx.name
            )
            return self.fail(request, "bar_store_unreadable", str(exc))
        self._alert_rejections(report)
        rejected = sorted({r.symbol for r in report.rejections})
        self.ctx.audit.append(
            "bars_ingested",
            self.ctx.name,
            {
                "bars_added": report.bars_added,
                "symbols_ingested": len(report.per_symbol),
                "symbols_rejected": rejected,
            },
        )
        if not report.per_symbol and rejected:
            return self.fail(
                request,
                "all_files_rejected",
                f"every CSV in {csv_dir} was rejected: {', '.join(rejected)}",
            )
        return BarsIngested(
            request_id=request.request_id,
            bars_added=report.bars_added,
            symbols_ingested=len(report.per_symbol),
            symbols_rejected=rejected,
            total_bars=self.store.total_bars(),
        )

    def _limits(self) -> BarLimits:
        """#17: no bar from the future (the clock's market time; a replay's in a replay)."""
        data = self.ctx.config.config.data
        now_ns = int(self.ctx.clock.market_now().timestamp() * 1e9)
        return BarLimits(
            not_after_ns=now_ns + int(data.future_tolerance_seconds * 1e9),
            max_relative_jump=data.max_relative_jump,
        )

    def _alert_rejections(self, report: IngestReport) -> None:
        for rejection in report.rejections:
            problems = "; ".join(
                f"row {p.row}: {p.reason}" if p.row is not None else p.reason
                for p in rejection.problems
            )
            self.ctx.alerts.raise_alert(
                "error",
                "csv_rejected",
                f"{rejection.file}: {problems}; earlier bars of {rejection.symbol} kept",
                actor=self.ctx.name,
                details={
                    "file": rejection.file,
                    "symbol": rejection.symbol,
                    "problems": [{"row": p.row, "reason": p.reason} for p in rejection.problems],
                },
            )
        for note in report.notes:
            self.ctx.alerts.raise_alert("warning", "csv_note", note, actor=self.ctx.name)

    def fetch(self, request: IngestBars) -> Reply:
        """Fetch new closed bars from the configured provider (``data.source``)."""
        from aistock_actors.sources.factory import run_fetch

        config = self.ctx.config.config
        budget = config.supervision.step_timeouts.ingest * FETCH_BUDGET_FRACTION
        try:
            report = run_fetch(config.data, self.store, self.ctx.clock, budget_seconds=budget)
        except StateError as exc:
            self.ctx.alerts.raise_alert(
                "critical", "bar_store_unreadable", str(exc), actor=self.ctx.name
            )
            return self.fail(request, "bar_store_unreadable", str(exc))
        except ConfigError as exc:
            self.ctx.alerts.raise_alert(
                "error", "data_source_config", str(exc), actor=self.ctx.name
            )
            return self.fail(request, "data_source_config", str(exc))
        for alert in report.alerts:
            self.ctx.alerts.raise_alert(
                alert.level,
                alert.code,
                alert.message,
                actor=self.ctx.name,
                details={"symbol": alert.symbol, "source": config.data.source},
            )
        failed = sorted(report.failures)
        self.ctx.audit.append("bars_ingested", self.ctx.name, describe(report))
        if not report.per_symbol:
            reasons = "; ".join(f"{s}: {report.failures[s]}" for s in failed)
            return self.fail(request, "data_fetch_failed", f"no symbol fetched: {reasons}")
        return BarsIngested(
            request_id=request.request_id,
            bars_added=report.bars_added,
            symbols_ingested=len(report.per_symbol),
            symbols_rejected=failed,
            total_bars=self.store.total_bars(),
        )
