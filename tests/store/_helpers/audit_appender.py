"""Child process appending audit records (run as a script, never imported by pytest).

Usage: ``python audit_appender.py LOG_PATH GENERATION [COUNT [GATE]]``

With GATE, the child creates ``GATE.<GENERATION>.ready`` once imported and waits (30 s at most)
for the file GATE to exist before appending, so several children really append at the same time.

Appends ``{"gen": GENERATION, "seq": i}`` for i = 0, 1, ... (forever, or COUNT records and then
exit 0). After each ``append`` returns, ``i`` is printed on its own line and stdout is flushed: a
printed sequence number is an acknowledged record.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from aistock_actors.store.audit import AuditLog


def main() -> None:
    log = AuditLog(Path(sys.argv[1]))
    gen = sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else None
    if len(sys.argv) > 4:
        gate = Path(sys.argv[4])
        gate.with_name(f"{gate.name}.{gen}.ready").touch()
        deadline = time.monotonic() + 30
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
    out = sys.stdout
    seq = 0
    while count is None or seq < count:
        log.append("test_tick", "child", {"gen": gen, "seq": seq})
        out.write(f"{seq}\n")
        out.flush()
        seq += 1


if __name__ == "__main__":
    main()
