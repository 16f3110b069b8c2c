"""The PaperTrader applies ``paper.rebalance_band`` (issue #14): after a 10 % price fall, a held
position whose target did not change is resized without a band and left alone inside it; after
a 10 % rise it is trimmed even inside the band, since its target is the position limit."""

from __future__ import annotations

from pathlib import Path

from _support.paper_support import Rig

from aistock_actors.core.trading.orders import LedgerState, Order


def same_side_resizes(before: LedgerState, orders: list[Order]) -> list[str]:
    """The orders that resize a held position and leave it on its side."""
    out = []
    for order in orders:
        pos = before.positions.get(order.symbol)
        if pos is not None and (pos.quantity + order.quantity) * pos.quantity > 0.0:
            out.append(order.symbol)
    return out


def resizes_after_a_price_move(tmp: Path, band: float, move: float) -> tuple[list[str], int]:
    rig = Rig(tmp, paper={"rebalance_band": band})
    sup = rig.supervisor()
    try:
        rig.cycle(sup)  # plans on bar 199
        rig.grow(201)
        rig.cycle(sup)  # fills at bar 200's open
        held = rig.ledger()
        closes = {s: rig.frames[s].iloc[rig.shown - 1]["close"] for s in rig.frames}
        rig.append_bar({s: {"open": c, "high": max(c, c * move), "low": min(c, c * move),
                            "close": c * move, "volume": 1e9} for s, c in closes.items()})
        rig.cycle(sup)  # fills bar 200's orders, plans on the moved bar
    finally:
        sup.stop()
    planned = [o for o in rig.ledger().open_orders if o.cycle_id == rig.ledger().as_of]
    return same_side_resizes(held, planned), len(held.positions)


def test_the_trader_resizes_drift_only_outside_its_band(tmp_path: Path) -> None:
    without, held = resizes_after_a_price_move(tmp_path / "zero", 0.0, 0.9)
    assert held and without  # no band: the 10 % drift of a held position is traded
    inside, _ = resizes_after_a_price_move(tmp_path / "band", 0.25, 0.9)
    assert inside == []  # the same drift, inside a 25 % band: left alone


def test_a_drift_above_the_position_limit_is_trimmed_inside_the_band(tmp_path: Path) -> None:
    """4 symbols: each target is the position limit (0.2), so a 10 % rise puts every held
    position above it, and the band does not keep it there."""
    above, held = resizes_after_a_price_move(tmp_path, 0.25, 1.1)
    assert held and above
