"""Child process appending audit records (run as a script, never imported by pytest).

Usage: ``python audit_appender.py LOG_PATH GENERATION [COUNT]``

Appends ``{"gen": GENERATION, "seq": i}`` for i = 0, 1, ... (forever, or COUNT records and then
exit 0). After each ``append`` returns, ``i`` is printed on its own line and stdout is flushed: a
printed sequence number is an acknowledged record.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aistock_actors.store.audit import AuditLog


def main() -> None:
    log = AuditLog(Path(sys.argv[1]))
    gen = sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else None
    out = sys.stdout
    seq = 0
    while count is None or seq < count:
        log.append("test_tick", "child", {"gen": gen, "seq": seq})
        out.write(f"{seq}\n")
        out.flush()
        seq += 1


if __name__ == "__main__":
    main()
