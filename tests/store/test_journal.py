"""#17: money is never reset silently: the fill journal rebuilds the ledger, corrupt copies are
moved aside, and a ledger that cannot be rebuilt is refused (LedgerLostError), never restarted."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aistock_actors.core.trading.orders import Fill, LedgerState, Order, Position
from aistock_actors.errors import StateError
from aistock_actors.store.alerts import AlertSink, list_alerts
from aistock_actors.store.audit import AuditLog
from aistock_actors.store.journal import FillJournal
from aistock_actors.store.ledger import LedgerLostError, PaperStore


def fill(i: int, symbol: str = "AAA", qty: float = 10.0, price: float = 100.0) -> Fill:
    return Fill(order_id=f"o{i}", symbol=symbol, quantity=qty, price=price,
                reference_price=price, decision_price=price, commission=1.0, realised_pnl=0.0,
                closed_quantity=0.0, predicted_cost_bps=1.0, realised_cost_bps=1.0,
                timestamp=f"2024-01-{i % 28 + 1:02d}T21:00:00Z", position_after=qty,
                equity_after=100_000.0)


def ledger_after(n: int, *, cash: float = 100_000.0) -> LedgerState:
    fills = [fill(i) for i in range(n)]
    return LedgerState(
        initial_cash=100_000.0, cash=cash - 1_001.0 * n,
        positions={"AAA": Position(symbol="AAA", quantity=10.0 * n, entry_price=100.0,
                                   last_price=101.0)} if n else {},
        open_orders=[Order(order_id=f"p{n}", symbol="BBB", quantity=5.0, decision_price=50.0,
                           cycle_id="c", model_id="m1")],
        applied_order_ids=[f.order_id for f in fills], fills=fills,
        commissions_paid=float(n), equity_curve=[(f"t{i}", 100_000.0 + i) for i in range(n)],
        as_of=f"2024-02-{n % 28 + 1:02d}", as_of_ns=n, model_id="m1")


def traded_store(tmp_path: Path, n: int = 4) -> tuple[PaperStore, LedgerState]:
    store = PaperStore(tmp_path / "state", AlertSink(tmp_path / "alerts"), 100_000.0)
    for k in range(1, n + 1):
        store.save_ledger(ledger_after(k))
    return store, ledger_after(n)


def codes(tmp_path: Path, severity: str) -> list[str]:
    return [p.name for p in list_alerts(tmp_path / "alerts", severity)]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.integers(0, 8), st.floats(0, 1e6)), min_size=1, max_size=8))
def test_replaying_the_journal_gives_back_every_saved_ledger(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[int, float]]
) -> None:
    """Any sequence of writes, lists that grow, shrink or change included."""
    journal = FillJournal(tmp_path_factory.mktemp("j") / "journal.jsonl")
    for n, cash in steps:
        state = ledger_after(n, cash=cash)
        journal.append(state)
        assert FillJournal(journal.path).rebuild() == state


def test_a_torn_last_line_is_ignored_and_a_damaged_one_named(tmp_path: Path) -> None:
    journal = FillJournal(tmp_path / "journal.jsonl")
    journal.append(ledger_after(1))
    journal.append(ledger_after(2))
    with journal.path.open("ab") as handle:
        handle.write(b'{"seq": 3, "cash"')  # a crash mid-append
    assert FillJournal(journal.path).rebuild() == ledger_after(2)
    again = FillJournal(journal.path)
    again.append(ledger_after(3))  # the torn tail is dropped, not glued to
    assert FillJournal(journal.path).rebuild() == ledger_after(3)
    lines = journal.path.read_bytes().split(b"\n")
    lines[0] = b"garbage"
    journal.path.write_bytes(b"\n".join(lines))
    with pytest.raises(StateError, match=r"journal.jsonl: line 1 is damaged"):
        FillJournal(journal.path).rebuild()


def test_both_ledger_copies_deleted_are_rebuilt_from_the_journal_with_an_error_alert(
    tmp_path: Path,
) -> None:
    store, saved = traded_store(tmp_path)
    store.ledger_path.unlink()
    store.ledger_path.with_name("ledger.json.bak").unlink()
    assert store.open_ledger() == saved
    assert any("paper_ledger_rebuilt_from_journal" in c for c in codes(tmp_path, "error"))
    assert msgspec.json.decode(store.ledger_path.read_bytes(), type=LedgerState) == saved


def test_a_garbled_ledger_without_bak_is_quarantined_never_overwritten(tmp_path: Path) -> None:
    store, saved = traded_store(tmp_path)
    store.ledger_path.write_bytes(b"{garbled")
    store.ledger_path.with_name("ledger.json.bak").unlink()
    assert store.open_ledger() == saved
    moved = list(store.root.glob("ledger.json.corrupt-*"))
    assert len(moved) == 1 and moved[0].read_bytes() == b"{garbled"
    assert any("state_file_quarantined" in c for c in codes(tmp_path, "error"))


def test_no_ledger_and_no_journal_after_trading_is_refused_not_reset(tmp_path: Path) -> None:
    store, _ = traded_store(tmp_path)
    AuditLog(tmp_path / "state" / "audit" / "log.jsonl").append(
        "paper_orders_executed", "paper_trader", {"fill_count": 3})
    for name in ("ledger.json", "ledger.json.bak", "journal.jsonl"):
        (store.root / name).unlink()
    with pytest.raises(LedgerLostError, match="refusing to start over at initial_cash"):
        PaperStore(tmp_path / "state", None, 100_000.0).open_ledger()
    assert not store.ledger_path.exists()  # nothing written in its place


def test_a_damaged_journal_with_no_ledger_is_refused(tmp_path: Path) -> None:
    store, _ = traded_store(tmp_path)
    for name in ("ledger.json", "ledger.json.bak"):
        (store.root / name).unlink()
    store.journal.path.write_bytes(b"not json\n" + store.journal.path.read_bytes())
    with pytest.raises(LedgerLostError, match=r"journal cannot rebuild it: .*line 1 is damaged"):
        PaperStore(tmp_path / "state", None, 100_000.0).open_ledger()


def test_first_run_opens_a_fresh_account_and_starts_the_journal(tmp_path: Path) -> None:
    store = PaperStore(tmp_path / "state", None, 50_000.0)
    state = store.open_ledger()
    assert state.cash == 50_000.0 and state.fills == []
    assert store.journal.rebuild() == state


def test_a_ledger_ahead_of_its_journal_is_journaled_at_open(tmp_path: Path) -> None:
    """A journal lost or older than the ledger (an upgrade, or deleted) is brought level."""
    store, saved = traded_store(tmp_path)
    store.journal.path.unlink()
    reopened = PaperStore(tmp_path / "state", AlertSink(tmp_path / "alerts"), 100_000.0)
    assert reopened.open_ledger() == saved
    assert FillJournal(reopened.journal.path).rebuild() == saved
    assert any("paper_journal_resynced" in c for c in codes(tmp_path, "warning"))
    assert json.loads(store.journal.path.read_text().splitlines()[0])["seq"] == 1
