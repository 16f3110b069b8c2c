"""#17: positions a retired model left are flattened (``paper.on_no_model = flatten``, default)
or held (``hold``), audited ``positions_without_model`` once."""

from __future__ import annotations

from pathlib import Path

from _support.paper_support import Rig, step_data
from _support.support import audit_actions


def retired(tmp_path: Path, **sections: object) -> Rig:
    rig = Rig(tmp_path, **sections)  # type: ignore[arg-type]
    rig.once()
    rig.grow(201)
    rig.once()
    assert rig.ledger().positions
    active = tmp_path / "models" / "active"
    (active / "model.json").unlink()
    (active / "model.json.bak").unlink(missing_ok=True)
    return rig


def test_positions_without_a_model_are_flattened_at_the_next_bar(tmp_path: Path) -> None:
    rig = retired(tmp_path)
    rig.grow(202)
    summary = rig.once()
    assert step_data(summary, "trade")["status"] == "no active model: flattening"
    assert audit_actions(rig.state_dir).count("positions_without_model") == 1
    rig.grow(203)
    rig.once()
    assert rig.ledger().positions == {}
    assert audit_actions(rig.state_dir).count("positions_without_model") == 1


def test_hold_keeps_them_and_says_so_once(tmp_path: Path) -> None:
    rig = retired(tmp_path, paper={"on_no_model": "hold"})
    rig.grow(202)
    rig.once()  # the retired model's last open orders fill; nothing new is planned
    held = rig.ledger().positions
    assert held and rig.ledger().open_orders == []
    rig.grow(203)
    rig.once()
    assert {s: p.quantity for s, p in rig.ledger().positions.items()} == {
        s: p.quantity for s, p in held.items()}
    assert audit_actions(rig.state_dir).count("positions_without_model") == 1
