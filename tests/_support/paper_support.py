"""Test support for paper trading: a small trained model in a model store, bar data, configs."""

from __future__ import annotations

import json
from dataclasses import replace as _replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from _support.support import pump_until, write_config
from aistock_actors.actors.base import SupervisedActor
from aistock_actors.actors.paper_trader import PaperTrader
from aistock_actors.actors.risk_governor import RiskGovernor
from aistock_actors.config import load_config
from aistock_actors.core.data.sample_data import generate_universe, write_universe_csvs
from aistock_actors.core.model.labels import build_training_set
from aistock_actors.core.model.models import ModelParams, TrainedModel, train_model
from aistock_actors.core.trading.ledger import Fill, LedgerState
from aistock_actors.runtime.child_specs import default_specs
from aistock_actors.runtime.supervisor import ChildSpec, Supervisor
from aistock_actors.store.ledger import PaperStore
from aistock_actors.store.models import ModelStore
from aistock_actors.store.state import CycleSummary

FAST = ModelParams(horizon=5, n_splits=2, meta_splits=2, hgb_max_iter=20,
                   hgb_min_samples_leaf=20, min_edge_z=0.0)


def trained_model(frames: dict[str, pd.DataFrame], model_id: str = "m-test",
                  threshold: float | None = 0.5) -> TrainedModel:
    """A real primary + meta-labeler trained on ``frames`` (about a second).

    ``threshold`` overrides the tuned one so that a short test sees signals; it is stored IN the
    model, so the trader still filters at the model's own threshold (T6).
    """
    # The rigs' tests (orders, fills, the band, the halts) were written against the signals of
    # the close-to-close direction label; the model is their fixture, not what they test.
    data = build_training_set(frames, horizon=FAST.horizon, method="direction")
    model = train_model(data.features, data.labels, data.label_end_times, params=FAST,
                        model_id=model_id, created_at=datetime(2024, 1, 1, tzinfo=UTC), seed=1)
    return model if threshold is None else model.with_threshold(threshold)


def activate_model(models_dir: Path, model: TrainedModel) -> None:
    store = ModelStore(models_dir)
    store.put(model)
    store.activate(model.model_id)


def universe(n_symbols: int = 4, n_bars: int = 300, seed: int = 3) -> dict[str, pd.DataFrame]:
    return generate_universe(n_symbols, n_bars, seed=seed)


def head(frames: dict[str, pd.DataFrame], n: int) -> dict[str, pd.DataFrame]:
    return {s: f.iloc[:n] for s, f in frames.items()}


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


# --- an in-process rig: real supervisor, real actors, real files ------------------------------



TRADING_CHILDREN = ("data_ingestor", "risk_governor", "paper_trader")


def trading_specs(trader: type[SupervisedActor] = PaperTrader,
                  governor: type[SupervisedActor] = RiskGovernor) -> list[ChildSpec]:
    """The production specs (same requests) of ingest, risk and trade, actors replaceable."""
    classes = {"paper_trader": trader, "risk_governor": governor}
    return [_replace(spec, actor_class=classes.get(spec.name, spec.actor_class))
            for spec in default_specs() if spec.name in TRADING_CHILDREN]


class Rig:
    """A state dir with sample bars fed incrementally, a model, and supervisors on demand."""

    def __init__(self, tmp: Path, *, bars: int = 200, n_symbols: int = 4, model: bool = True,
                 threshold: float = 0.5, **sections: Any) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp
        self.frames = universe(n_symbols, 300)
        self.state_dir = tmp / "state"
        self.config = write_config(tmp, **sections)
        self.loaded = load_config(self.config)
        self.shown = 0
        self.grow(bars)
        if model:
            activate_model(tmp / "models", trained_model(head(self.frames, bars),
                                                         threshold=threshold))

    def grow(self, n: int) -> None:
        """Make the CSVs hold the first ``n`` bars of every symbol."""
        self.shown = n
        write_universe_csvs(self.tmp / "data", head(self.frames, n))

    def append_bar(self, rows: dict[str, dict[str, float]]) -> None:
        """Append one custom bar per symbol (``{symbol: {open, high, low, close, volume}}``)."""
        for symbol, row in rows.items():
            frame = self.frames[symbol]
            nxt = frame.index[self.shown] if self.shown < len(frame) else \
                frame.index[-1] + pd.offsets.BDay(1)
            extra = pd.DataFrame([row], index=pd.DatetimeIndex([nxt], name=frame.index.name))
            self.frames[symbol] = pd.concat([frame.iloc[: self.shown], extra])
        self.grow(self.shown + 1)

    def supervisor(self, trader: type[SupervisedActor] = PaperTrader,
                   governor: type[SupervisedActor] = RiskGovernor) -> Supervisor:
        sup = Supervisor(self.loaded, trading_specs(trader, governor))
        sup.start()
        pump_until(sup, lambda: all(c.ref is not None for c in sup.children.values()))
        return sup

    def cycle(self, sup: Supervisor) -> CycleSummary:
        summary = sup.run_once()
        assert summary is not None, "refused: halted"
        return summary

    def once(self, **kwargs: Any) -> CycleSummary:
        sup = self.supervisor(**kwargs)
        try:
            return self.cycle(sup)
        finally:
            sup.stop()

    def ledger(self) -> LedgerState:
        return PaperStore(self.state_dir, None, 0.0).load_ledger()

    def ledger_bytes(self) -> bytes:
        return (self.state_dir / "paper" / "ledger.json").read_bytes()


def step_data(summary: CycleSummary, name: str) -> dict[str, Any]:
    step = next(s for s in summary.steps if s.name == name)
    return {**step.data, "step_status": step.status, "detail": step.detail}


def round_trips(n: int) -> list[Fill]:
    """``n`` earlier fills that leave the account as it is: ZZZ bought and sold at 10, no cost
    (a long fill history for the ledger's history tests and ``bench/bench_ledger.py``)."""
    out = []
    for k in range(n):
        buy = k % 2 == 0
        out.append(Fill(
            order_id=f"past-{k}", symbol="ZZZ", quantity=1.0 if buy else -1.0, price=10.0,
            reference_price=10.0, decision_price=10.0, commission=0.0, realised_pnl=0.0,
            closed_quantity=0.0 if buy else 1.0, predicted_cost_bps=0.0, realised_cost_bps=0.0,
            timestamp=f"20{10 + k // 2_000:02d}-{k // 200 % 10 + 1:02d}-01",
            position_after=1.0 if buy else 0.0, equity_after=0.0))
    return out
