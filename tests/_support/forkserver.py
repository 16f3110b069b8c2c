"""A fork server for the kill loops: one process imports the daemon's modules once, then forks a
fresh daemon (``aistock_actors.cli.app.main``) per request, so a round pays no interpreter start.

Each forked daemon is a real OS process running the production CLI on real files, killed with a
real SIGKILL; only the interpreter start and the imports are shared (done once, before any thread
exists in the server, so forking is safe). :class:`ForkedDaemon` mirrors the part of
``subprocess.Popen`` the loops use (``pid``, ``poll``, ``wait``, ``send_signal``, ``returncode``).
Kills during interpreter start-up itself still need ``supervisor.py`` run as a new process.

Run as a script, this file is the server: JSON lines on stdin (``spawn`` / ``reap``), answers on
stdout.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

PRELOAD = (
    "aistock_actors.cli.app",
    "aistock_actors.cli.runs",
    "aistock_actors.cli.download",
    "aistock_actors.config.safety_paths",
    "aistock_actors.runtime.child_specs",
    "aistock_actors.runtime.supervisor",
    "aistock_actors.runtime.jobs",
    "aistock_actors.core.model.pipeline",
    "joblib",
    "pandas",
    "sklearn.ensemble",
    "sklearn.linear_model",
)
"""What a daemon's first cycle imports (the heavy part of its start-up), imported once here."""


class ForkedDaemon:
    """A daemon forked by the server: a ``Popen``-like handle (the server is its parent and reaps
    it; this process watches it through a pidfd)."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self.server = server
        self.pid = pid
        self.returncode: int | None = None
        self._pidfd = os.pidfd_open(pid)

    def poll(self) -> int | None:
        return self._wait(0.0)

    def wait(self, timeout: float | None = None) -> int:
        code = self._wait(timeout)
        if code is None:
            raise subprocess.TimeoutExpired(f"forked daemon {self.pid}", timeout or 0.0)
        return code

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:  # not reaped yet: the pid is still this daemon's
            os.kill(self.pid, sig)

    def _wait(self, timeout: float | None) -> int | None:
        if self.returncode is not None:
            return self.returncode
        readable, _, _ = select.select([self._pidfd], [], [], timeout)
        if not readable:
            return None
        self.returncode = self.server.reap(self.pid)
        os.close(self._pidfd)
        return self.returncode


class ForkServer:
    """The server process (started once; ``close`` or the ``with`` block ends it)."""

    def __init__(self, preload: Sequence[str] = PRELOAD, timeout: float = 120.0) -> None:
        self.timeout = timeout
        self.proc = subprocess.Popen(
            [sys.executable, __file__, *preload],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        ready = self._read()
        if ready.get("ready") is not True:
            raise RuntimeError(f"fork server did not start: {ready}")

    def spawn(self, argv: Sequence[str], cwd: Path, log: Path, *,
              append: bool = False) -> ForkedDaemon:
        """Fork a daemon running ``main(argv)`` in ``cwd``, stdout and stderr to ``log`` (emptied
        here first unless ``append``, so nothing of a previous run's log is read as this
        one's)."""
        if not append or not log.exists():
            log.write_bytes(b"")
        answer = self._ask({"op": "spawn", "argv": list(argv), "cwd": str(cwd), "log": str(log)})
        return ForkedDaemon(self, int(answer["pid"]))

    def reap(self, pid: int) -> int:
        """The exit code of a daemon that has ended (``-signal`` if killed, as ``Popen``)."""
        return int(self._ask({"op": "reap", "pid": pid})["returncode"])

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # end of input: the server exits
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _ask(self, request: dict[str, object]) -> dict[str, object]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = self._read()
        if "error" in answer:
            raise RuntimeError(f"fork server: {answer['error']}")
        return answer

    def _read(self) -> dict[str, object]:
        assert self.proc.stdout is not None
        readable, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        line = self.proc.stdout.readline() if readable else ""
        if not line:
            raise RuntimeError(f"fork server gave no answer (exit {self.proc.poll()})")
        answer: dict[str, object] = json.loads(line)
        return answer


# --- the server ---------------------------------------------------------------------------------


def _child(argv: list[str], cwd: str, log: str) -> None:
    """In the forked child: become the daemon, as ``supervisor.py ARGV`` would (never returns)."""
    code = 1
    try:
        os.chdir(cwd)
        out = os.open(log, os.O_WRONLY | os.O_APPEND)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        os.close(null)
        sys.argv = ["supervisor.py", *argv]
        from aistock_actors.cli.app import main

        code = main(argv)
    except SystemExit as exc:  # as the interpreter ends on it: None is 0, text goes to stderr
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _serve(preload: Sequence[str]) -> None:
    import importlib

    for name in preload:
        importlib.import_module(name)
    running: set[int] = set()
    _answer({"ready": True})
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["op"] == "spawn":
                pid = os.fork()
                if pid == 0:
                    _child(request["argv"], request["cwd"], request["log"])
                running.add(pid)
                _answer({"pid": pid})
            elif request["op"] == "reap":
                _, status = os.waitpid(int(request["pid"]), 0)
                running.discard(int(request["pid"]))
                _answer({"returncode": os.waitstatus_to_exitcode(status)})
            else:
                _answer({"error": f"unknown op {request['op']!r}"})
        except OSError as exc:
            _answer({"error": repr(exc)})
    # stdin closed: end any daemon the caller left running (none, if it killed its own)
    for pid in running:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    sys.stdout.flush()
    os._exit(0)  # skip the interpreter's teardown of everything preloaded (~1-2 s)


def _answer(data: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        del sys.path[0]  # tests/_support/ must not shadow anything the daemon imports
    _serve(sys.argv[1:])
