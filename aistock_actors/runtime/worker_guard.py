"""Pool workers die with the daemon (#17): a loky worker's initializer starts a watcher thread
that ends the worker as soon as the process that started it is gone.

A SIGKILLed daemon cannot shut its pool down, and loky's workers otherwise wait for their idle
timeout (or forever in a stuck job) as orphans. The watcher compares ``os.getppid()`` with the pid
the worker was started for, every :data:`POLL_SECONDS`; a change (re-parented to init or a
sub-reaper) makes the worker exit at once with ``os._exit``.
"""

from __future__ import annotations

import os
import threading
import time

POLL_SECONDS = 0.5


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_SECONDS)
    os._exit(70)  # the daemon is gone: no cleanup can matter, and none must block


def die_with_parent(parent_pid: int) -> None:
    """Loky ``initializer``: exit this worker when ``parent_pid`` is no longer its parent."""
    if os.getppid() != parent_pid:  # the daemon died while this worker was starting
        os._exit(70)
    threading.Thread(target=_watch, args=(parent_pid,), name="die-with-parent", daemon=True).start()
