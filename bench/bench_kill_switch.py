"""Kill-switch latency of a real ``supervisor.py --daemon`` process.

Run from the repository root::

    .venv/bin/python bench/bench_kill_switch.py [--trials 50] [--poll 0.2] [--via-cli]

Set-up: a temp dir with sample CSVs (``write_universe_csvs``) and a config whose paths all live in
it (``supervision.kill_switch_poll_seconds`` = ``--poll``, 0.2 s by default as in the product; a
one-day daemon interval so only the first cycle runs). The daemon is started as a subprocess and
the benchmark waits until its first cycle is over (it is then idle, waiting on its inbox).

Each trial:

0. sleep a random gap, uniform in ``[0, --max-gap]`` (1 s): an operator's kill arrives at a random
   phase of the daemon's poll tick. (Without it every kill would follow the previous resume by a
   few ms and race the watcher actor's check queued right behind ``Resume``, which makes the
   latency look like ~3 ms instead of its real, tick-bound distribution.)
1. ``t0``; activate the kill switch: ``touch state/KILL_SWITCH`` (default), or with ``--via-cli``
   launch ``supervisor.py CONFIG --kill`` (``t0`` = just before the process is spawned, so the
   CLI's interpreter start-up, imports and audit fsync are part of the latency);
2. poll (every ``--probe-interval``, 1 ms) until ``state/HALTED`` exists: latency = now - t0;
3. run ``supervisor.py CONFIG --unkill``, wait until ``state/HALTED`` is gone and the daemon has
   logged that it resumed (so the next trial trips a running, un-halted daemon).

Prints p50 / p90 / p99 / max of the latency; the target is p99 <= 1 s (PASS/MISS, not asserted).
Every wait has a deadline; at the end the daemon gets SIGTERM and is killed if it has not exited
within 30 s. Nothing touches the network.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aistock_actors.core.data.sample_data import generate_universe, write_universe_csvs  # noqa: E402

SUPERVISOR = ROOT / "supervisor.py"
TARGET_P99_S = 1.0


class Daemon:
    """The daemon subprocess plus a thread that collects its JSON log lines."""

    def __init__(self, config: Path, cwd: Path, log_path: Path) -> None:
        self.log_path = log_path
        self.messages: queue.Queue[tuple[float, str]] = queue.Queue()
        self.proc = subprocess.Popen(
            [sys.executable, str(SUPERVISOR), str(config), "--daemon"],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        with self.log_path.open("w") as out:
            for line in stream:
                out.write(line)
                out.flush()
                try:
                    message = str(json.loads(line).get("message", ""))
                except ValueError:
                    message = line.strip()
                self.messages.put((time.perf_counter(), message))

    def wait_log(self, matches: Callable[[str], bool], deadline_s: float, what: str) -> float:
        """Wait for a log message (deadline-bounded); return when it was read."""
        end = time.perf_counter() + deadline_s
        while True:
            left = end - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"daemon did not log {what} within {deadline_s:.0f} s "
                                   f"(see {self.log_path})")
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode} while waiting for "
                                   f"{what} (see {self.log_path})")
            try:
                seen, message = self.messages.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if matches(message):
                return seen

    def stop(self, timeout_s: float = 30.0) -> str:
        if self.proc.poll() is not None:
            return f"already exited ({self.proc.returncode})"
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout_s)
            return f"stopped by SIGTERM, exit code {code}"
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return f"did not exit within {timeout_s:.0f} s of SIGTERM: killed"


def write_config(tmp: Path, poll: float) -> Path:
    """The shape of ``tests/_support/support.py::write_config``, with product-default
    supervision."""
    config: dict[str, Any] = {
        "mode": "headless",
        "state_dir": str(tmp / "state"),
        "models_dir": str(tmp / "models"),
        "data": {"csv_dir": str(tmp / "data")},
        "supervision": {"kill_switch_poll_seconds": poll},
        "daemon": {"interval_minutes": 24 * 60.0},  # only the first cycle runs during the bench
    }
    path = tmp / "config.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def wait_for(condition: Callable[[], bool], deadline_s: float, interval_s: float,
             what: str) -> float:
    """Poll ``condition`` until true; return the perf_counter time it was first seen true."""
    end = time.perf_counter() + deadline_s
    while True:
        now = time.perf_counter()
        if condition():
            return now
        if now > end:
            raise TimeoutError(f"{what} not reached within {deadline_s:.0f} s")
        time.sleep(interval_s)


def cli(config: Path, cwd: Path, flag: str, timeout_s: float = 60.0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(SUPERVISOR), str(config), flag],
        cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], what: str, ok_codes: tuple[int, ...] = (0,),
           timeout_s: float = 60.0) -> None:
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)
        raise TimeoutError(f"{what} did not finish within {timeout_s:.0f} s") from None
    if proc.returncode not in ok_codes:
        raise RuntimeError(f"{what} exited {proc.returncode}: {out.strip()} {err.strip()}")


def percentiles(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {
        "p50": float(np.percentile(arr, 50)),
        "p90": float(np.percentile(arr, 90)),
        "p99": float(np.percentile(arr, 99)),
        "max": float(arr.max()),
        "min": float(arr.min()),
        "mean": float(arr.mean()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--poll", type=float, default=0.2,
                    help="supervision.kill_switch_poll_seconds (product default 0.2)")
    ap.add_argument("--via-cli", action="store_true",
                    help="activate with `supervisor.py CONFIG --kill` instead of touching the file")
    ap.add_argument("--probe-interval", type=float, default=0.001,
                    help="how often this benchmark checks for state/HALTED (seconds)")
    ap.add_argument("--deadline", type=float, default=10.0,
                    help="per-wait deadline in seconds (halt seen, resume seen)")
    ap.add_argument("--max-gap", type=float, default=1.0,
                    help="random pause before each kill, uniform in [0, max-gap] seconds")
    ap.add_argument("--seed", type=int, default=1, help="seed of the random gaps")
    ap.add_argument("--symbols", type=int, default=5, help="sample CSVs for the daemon's cycle")
    ap.add_argument("--bars", type=int, default=300)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, state)")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes, a few seconds (overrides the size flags): "
                    "the bench still runs (tests/bench/test_bench_commands.py)")
    args = ap.parse_args(argv)
    if args.smoke:
        args.trials, args.max_gap, args.symbols, args.bars = 2, 0.2, 3, 120
    if args.trials < 1 or not 0 < args.poll <= 1:
        ap.error("need --trials >= 1 and 0 < --poll <= 1")

    tmp = Path(tempfile.mkdtemp(prefix="bench_kill_switch_"))
    mode = "cli `--kill`" if args.via_cli else "`touch state/KILL_SWITCH`"
    print(f"bench_kill_switch: python {platform.python_version()}, {os.cpu_count()} CPUs; "
          f"trials {args.trials}, kill_switch_poll_seconds {args.poll}, via {mode}, "
          f"probe every {args.probe_interval * 1000:g} ms, random gap <= {args.max_gap:g} s")
    write_universe_csvs(tmp / "data", generate_universe(args.symbols, args.bars, seed=7))
    config = write_config(tmp, args.poll)
    state = tmp / "state"
    kill_file, halted = state / "KILL_SWITCH", state / "HALTED"

    daemon = Daemon(config, tmp, tmp / "daemon.log")
    rng = np.random.default_rng(args.seed)
    latencies: list[float] = []
    resumes: list[float] = []
    cli_parts: list[float] = []
    daemon_parts: list[float] = []
    status = "ok"
    try:
        t_start = time.perf_counter()
        daemon.wait_log(lambda m: m.startswith("daemon started"), 60, "'daemon started'")
        daemon.wait_log(lambda m: m.startswith("cycle ") and not m.endswith(" started"), 120,
                        "the end of the first cycle")
        print(f"daemon up and first cycle done in {time.perf_counter() - t_start:.2f} s "
              f"(pid {daemon.proc.pid}, dir {tmp})", flush=True)
        for trial in range(args.trials):
            if halted.exists() or kill_file.exists():
                raise RuntimeError(f"trial {trial}: state not clean before the kill")
            time.sleep(float(rng.uniform(0.0, args.max_gap)))
            if args.via_cli:
                t0 = time.perf_counter()
                kill_proc = cli(config, tmp, "--kill")
            else:
                t0 = time.perf_counter()
                kill_file.touch()
            if args.via_cli:  # split: CLI start-up until the file exists, then the daemon
                made = wait_for(kill_file.exists, args.deadline, args.probe_interval,
                                f"trial {trial}: state/KILL_SWITCH")
                cli_parts.append(made - t0)
            seen = wait_for(halted.exists, args.deadline, args.probe_interval,
                            f"trial {trial}: state/HALTED")
            latencies.append(seen - t0)
            if args.via_cli:
                daemon_parts.append(seen - made)
            if args.via_cli:
                finish(kill_proc, "--kill")
            daemon.wait_log(lambda m: m.startswith("HALTED:"), args.deadline, "'HALTED:'")
            t1 = time.perf_counter()
            finish(cli(config, tmp, "--unkill"), "--unkill")
            wait_for(lambda: not halted.exists(), args.deadline, args.probe_interval,
                     f"trial {trial}: state/HALTED gone")
            resumed = daemon.wait_log(lambda m: m.startswith("halt cleared by the operator"),
                                      args.deadline, "its resume")
            resumes.append(resumed - t1)
            if (trial + 1) % 10 == 0 or trial + 1 == args.trials:
                print(f"  {trial + 1}/{args.trials} trials, last latency "
                      f"{latencies[-1] * 1000:.1f} ms", flush=True)
    except (TimeoutError, RuntimeError) as exc:
        status = f"ABORTED: {exc}"
    finally:
        stop_note = daemon.stop(30.0)

    print(f"daemon: {stop_note}")
    if status != "ok":
        print(status)
    if latencies:
        s = percentiles(latencies)
        print(f"\nkill-switch latency over {len(latencies)} trials ({mode} -> state/HALTED "
              f"exists), ms:")
        print("  " + "  ".join(f"{k} {v * 1000:.1f}" for k, v in s.items()))
        for label, part in (("`--kill` spawn -> state/KILL_SWITCH exists (CLI start-up)",
                             cli_parts),
                            ("state/KILL_SWITCH exists -> state/HALTED (daemon)", daemon_parts)):
            if part:
                q = percentiles(part)
                print(f"  of which {label}: p50 {q['p50'] * 1000:.1f}  p99 {q['p99'] * 1000:.1f}"
                      f"  max {q['max'] * 1000:.1f}")
        r = percentiles(resumes)
        print(f"--unkill -> daemon logged resume (incl. CLI start-up), ms: p50 "
              f"{r['p50'] * 1000:.1f}  p99 {r['p99'] * 1000:.1f}  max {r['max'] * 1000:.1f}")
        verdict = "PASS" if s["p99"] <= TARGET_P99_S and status == "ok" else "MISS"
        print(f"target p99 <= {TARGET_P99_S:g} s: p99 = {s['p99']:.3f} s -> {verdict}")
    if args.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if status == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
