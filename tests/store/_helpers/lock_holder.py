"""Child process holding the state directory's DaemonLock (run as a script).

Usage: ``python lock_holder.py STATE_DIR``

Takes the lock, prints ``locked`` and then blocks reading stdin until the parent closes it (or
SIGKILLs this process). No sleeping: the parent decides when this process ends.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aistock_actors.store.lock import DaemonLock


def main() -> None:
    lock = DaemonLock(Path(sys.argv[1]))
    lock.acquire()
    sys.stdout.write("locked\n")
    sys.stdout.flush()
    sys.stdin.read()
    lock.release()


if __name__ == "__main__":
    main()
