"""Pool workers die with the daemon (#17): a loky worker's initializer starts a watcher thread
that ends the worker as soon as the daemon that started the pool is gone.

A SIGKILLed daemon cannot shut its pool down, and loky's workers otherwise wait for their idle
timeout (or forever in a stuck job) as orphans. Workers are forked by the pool's fork server
(:mod:`aistock_actors.runtime.job_loky`), so their parent is that server, not the daemon: the
watcher holds a pidfd of the daemon (Linux >= 5.3), which becomes readable the moment the daemon
exits, and then ends the worker at once with ``os._exit``. The fork server itself exits when the
daemon and its last worker are gone. Where pidfds are missing, the watcher polls the daemon's
pid every :data:`POLL_SECONDS` instead.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable

POLL_SECONDS = 0.5
EXIT_CODE = 70
"""A worker's exit code when the daemon is gone (``EX_SOFTWARE``)."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else: not ours any more, but not gone
        return True
    return True


def _watch_fd(pidfd: int) -> None:
    select.select([pidfd], [], [])  # readable when the process has exited
    os._exit(EXIT_CODE)  # the daemon is gone: no cleanup can matter, and none must block


def _watch_poll(daemon_pid: int) -> None:
    while _alive(daemon_pid):
        time.sleep(POLL_SECONDS)
    os._exit(EXIT_CODE)


def die_with_daemon(daemon_pid: int) -> None:
    """Loky ``initializer``: exit this worker when process ``daemon_pid`` exits."""
    target: Callable[[int], None]
    try:
        pidfd = os.pidfd_open(daemon_pid)
    except ProcessLookupError:  # the daemon died while this worker was starting
        os._exit(EXIT_CODE)
    except (AttributeError, OSError):  # no pidfd support: poll
        if not _alive(daemon_pid):
            os._exit(EXIT_CODE)
        target, arg = _watch_poll, daemon_pid
    else:
        target, arg = _watch_fd, pidfd
    threading.Thread(target=target, args=(arg,), name="die-with-daemon", daemon=True).start()
