"""#18 acceptance: a ledger writer SIGKILLed at random moments, again and again, while its fills
move to the archive: no acknowledged fill is lost, none is in the fill log twice, the ledger
reconciles, and the journal still rebuilds it."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

from _support.store_helpers import HELPERS, load_helper

from aistock_actors.core.trading.history import ARCHIVE_BATCH, RECENT_FILLS
from aistock_actors.core.trading.ledger import reconcile
from aistock_actors.store.journal import FillJournal
from aistock_actors.store.ledger import PaperStore

procs = load_helper("procs")
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
        acked = len(ids) - 1  # a save whose ack was not printed yet may be on disk: it counts
    assert acked > 2 * (RECENT_FILLS + ARCHIVE_BATCH), f"seed={seed}: too few fills to archive"
