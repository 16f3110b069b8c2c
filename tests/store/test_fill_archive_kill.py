"""#18 acceptance: a ledger writer SIGKILLed at random moments, again and again, while its fills
and equity points move to their archives: no acknowledged fill or point is lost, none is there
twice, the ledger reconciles, its drawdown and model record equal the whole curve's, and the
journal still rebuilds it."""

from __future__ import annotations

import math
import random
import subprocess
import sys
import time
from pathlib import Path

from _support.curve_reference import old_drawdown, old_model_returns
from _support.store_helpers import HELPERS, load_helper

from aistock_actors.core.trading.curve import CURVE_BATCH, RECENT_POINTS, model_record
from aistock_actors.core.trading.history import ARCHIVE_BATCH, RECENT_FILLS
from aistock_actors.core.trading.ledger import current_drawdown, reconcile
from aistock_actors.store.journal import FillJournal
from aistock_actors.store.ledger import PaperStore

procs = load_helper("procs")
writer = load_helper("ledger_writer")
WRITER = HELPERS / "ledger_writer.py"
KILLS = 10


def test_sigkill_during_archive_moves_loses_no_fill_and_doubles_none(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    seed = random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    acked = -1
    for run in range(KILLS):
        err_path = tmp_path / f"stderr-{run}.txt"
        with open(err_path, "wb") as err:
            proc = subprocess.Popen([sys.executable, str(WRITER), str(state_dir)],
                                    stdout=subprocess.PIPE, stderr=err, bufsize=0)
        reader = procs.LineReader(proc)
        try:
            if run % 4 == 3:
                time.sleep(rng.uniform(0.0, 0.3))  # start-up: open_ledger's recovery itself
            else:
                reader.wait_for_lines(1, timeout=30.0)
                time.sleep(rng.uniform(0.0, 0.25))
        finally:
            procs.kill_and_drain(proc, reader)
        where = f"seed={seed} run={run}"
        procs.assert_killed_cleanly(proc, err_path, where)
        acks = [int(line) for line in reader.lines]
        assert acks == list(range(acked + 1, acked + 1 + len(acks))), where
        acked = acks[-1] if acks else acked
        store = PaperStore(state_dir, None, 100_000.0, keep_closing_fills=5)
        if not store.ledger_path.exists():
            continue  # killed before the first save
        state = store.open_ledger()  # what the restarted trader does first
        # a journal one write ahead (killed before the ledger write) is levelled with the ledger
        assert FillJournal(store.journal.path).rebuild() == state, where
        assert reconcile(state) == [], where
        ids = [f.order_id for f in store.fills_since(0, state)]
        assert ids == [f"f{k}" for k in range(len(ids))], where  # none lost, none twice
        assert len(ids) >= acked + 1, f"{where}: acknowledged fill {acked} lost"
        assert len(state.fills) <= RECENT_FILLS + ARCHIVE_BATCH
        whole = store.equity.curve_since(0, state)  # the equity points likewise (#18)
        assert whole == [writer.point(i) for i in range(len(whole))], where
        assert len(whole) == len(ids) * writer.POINTS_PER_SAVE, where
        assert len(state.equity_curve) <= RECENT_POINTS + CURVE_BATCH, where
        assert current_drawdown(state) == old_drawdown(whole, state.drawdown_base), where
        returns = old_model_returns(whole, state.model_since)
        record = model_record(state)
        assert (record.count, record.growth) == (len(returns), math.prod(1 + r for r in returns))
        acked = len(ids) - 1  # a save whose ack was not printed yet may be on disk: it counts
    assert acked > 2 * (RECENT_FILLS + ARCHIVE_BATCH), f"seed={seed}: too few fills to archive"
    assert state.curve_archived > 0, f"seed={seed}: too few points to archive"
