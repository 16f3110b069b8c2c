"""Which model artifacts the models folder keeps (core/promotion/retention.py)."""

from __future__ import annotations

from _support.manifest_support import entry

from aistock_actors.core.promotion.retention import interrupted, models_to_prune, orphans

MANIFEST = [
    entry("m1", "rejected"),
    entry("m2", "approved"),
    entry("m3", "rejected"),
    entry("m4", "recorded"),
    entry("m5", "rolled_back"),
    entry("m6", "rejected"),
    entry("m7", "pending"),
    entry("m8", "held"),
]
STORED = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"]  # m9: its backtest failed


def test_keeps_the_newest_others_and_everything_that_may_be_needed() -> None:
    # unprotected, oldest first: m1 m3 m4 m6 m9 -> keep the newest two (m6, m9)
    assert models_to_prune(STORED, MANIFEST, keep_rejected=2, active=None) == ["m1", "m3", "m4"]
    assert models_to_prune(STORED, MANIFEST, keep_rejected=2, active="m3") == ["m1", "m4"]
    # the newest candidate is never pruned, even with nothing else to keep
    assert models_to_prune(STORED, MANIFEST, keep_rejected=0, active=None, newest="m9") == [
        "m1", "m3", "m4", "m6"]
    assert models_to_prune(STORED, MANIFEST, keep_rejected=9, active=None) == []


def test_a_model_once_active_is_never_pruned() -> None:
    doomed = models_to_prune(STORED, MANIFEST, keep_rejected=0, active=None, activated=["m1"])
    assert "m1" not in doomed and {"m2", "m5", "m7", "m8"}.isdisjoint(doomed)


def test_an_interrupted_cycle_is_one_never_counted_or_the_last_halted_or_aborted() -> None:
    model = "m-c20200302T000000Z-0042"
    assert interrupted(model, cycles_total=41, last_cycle=None)  # killed before it was counted
    assert not interrupted(model, cycles_total=42, last_cycle=("c20200302T000000Z-0042",
                                                                "failed"))
    assert interrupted(model, cycles_total=42, last_cycle=("c20200302T000000Z-0042", "halted"))
    assert interrupted(model, cycles_total=42, last_cycle=("c20200302T000000Z-0042", "aborted"))
    assert not interrupted(model, cycles_total=50, last_cycle=("c20200303T000000Z-0050",
                                                                "halted"))
    assert not interrupted("m-by-hand", cycles_total=0, last_cycle=None)


def test_orphans_are_unjudged_never_active_models_of_interrupted_cycles() -> None:
    killed, failed = "m-c20200302T000000Z-0043", "m-c20200301T000000Z-0042"
    found = orphans([*STORED, failed, killed, "m-half"], MANIFEST, active=None,
                    cycles_total=42, unreadable=["m-half"])
    assert found == [killed, "m-half"]  # m9 and the failed backtest's candidate stay
    assert orphans([killed], MANIFEST, active=killed, cycles_total=42) == []
