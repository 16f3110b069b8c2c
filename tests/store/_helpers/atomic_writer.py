"""Child process for the atomic-write SIGKILL loop (run as a script, never imported by pytest).

Usage: ``python atomic_writer.py STATE_FILE ALERT_ROOT``

Loads the state file the way the daemon does on start (``load_state``: file, then ``.bak``, then
defaults), then rewrites it forever with a growing payload via ``atomic_write_json``. After each
write returns, the new counter is printed on its own line and stdout is flushed: a printed counter
is an acknowledged, durable write.
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec

from aistock_actors.store.alerts import AlertSink
from aistock_actors.store.atomic import atomic_write_json
from aistock_actors.store.state_file import load_state


class Payload(msgspec.Struct, kw_only=True):
    counter: int = 0
    items: list[int] = []


def main() -> None:
    path = Path(sys.argv[1])
    alerts = AlertSink(Path(sys.argv[2]))
    state = load_state(path, Payload, Payload, alerts, actor="writer")
    counter = state.counter
    out = sys.stdout
    while True:
        counter += 1
        atomic_write_json(path, Payload(counter=counter, items=list(range(counter))))
        out.write(f"{counter}\n")
        out.flush()


if __name__ == "__main__":
    main()
