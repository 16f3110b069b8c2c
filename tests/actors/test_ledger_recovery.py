"""#17 on the real PaperTrader: deleting both ledger copies after fills never resets the account."""

from __future__ import annotations

from pathlib import Path

from _support.paper_support import Rig, step_data
from _support.support import alert_codes

from aistock_actors.store.state import read_halt


def traded(tmp_path: Path) -> Rig:
    rig = Rig(tmp_path)
    rig.once()
    rig.grow(201)
    rig.once()
    assert rig.ledger().fills and rig.ledger().positions
    return rig


def test_both_ledger_copies_deleted_after_fills_are_rebuilt_and_trading_goes_on(
    tmp_path: Path,
) -> None:
    rig = traded(tmp_path)
    saved = rig.ledger()
    paper = rig.state_dir / "paper"
    (paper / "ledger.json").unlink()
    (paper / "ledger.json.bak").unlink()
    summary = rig.once()
    assert step_data(summary, "trade")["step_status"] == "ok"
    after = rig.ledger()
    assert after.fills == saved.fills and after.positions == saved.positions
    assert after.cash == saved.cash != after.initial_cash
    assert "paper_ledger_rebuilt_from_journal" in alert_codes(rig.state_dir, "error")


def test_ledger_and_journal_deleted_after_trading_halts_with_a_critical_alert(
    tmp_path: Path,
) -> None:
    rig = traded(tmp_path)
    paper = rig.state_dir / "paper"
    for name in ("ledger.json", "ledger.json.bak", "journal.jsonl"):
        (paper / name).unlink()
    summary = rig.once()
    assert summary.outcome != "succeeded"
    assert "paper_ledger_unrecoverable" in alert_codes(rig.state_dir, "critical")
    halt = read_halt(rig.state_dir)
    assert halt is not None and "paper_ledger" in halt.message + str(halt.details)
    assert not (paper / "ledger.json").exists()  # no fresh $100,000 account written
