"""Message round trip and throughput: our supervised actors (msgspec messages) vs raw pykka.

Run from the repository root::

    .venv/bin/python bench/bench_messages.py [--messages 20000] [--warmup 2000] [--repeats 5]

Four set-ups, each timed in the same process, one after another, ``--repeats`` times:

* **ours, tell-reply** — the production path between the supervisor and a child: the bench
  thread (standing in for the supervisor) tells a ``Ping`` (a msgspec ``Request``) to a
  ``SupervisedActor`` subclass; its ``handle`` returns a ``Pong`` (a ``Reply``), which the base
  stamps with the actor's name and generation (``msgspec.structs.replace``) and tells to the
  "supervisor inbox" (a ``queue.Queue``, as in ``Supervisor.tell``); the bench thread takes it.
  Everything the base does per message is included (fault-plan check, ``match`` dispatch).
* **ours, actor to actor** — two of our actors play ping-pong: actor A's reply channel
  (``ctx.report``) is actor B's ``tell`` and vice versa, so a round trip is A -> B -> A with no
  other thread in the loop; the bench starts the rally and waits for its end.
* **pykka, ask** — a plain ``pykka.ThreadingActor`` whose ``on_receive`` returns a dict for a dict
  (``ref.ask``, which waits on a pykka future).
* **pykka, tell-reply** — the same actor answering a told dict into a ``queue.Queue``.

Latency: each of ``--messages`` round trips is timed alone (send, wait for the answer), after
``--warmup`` untimed ones; p50 / p99 / mean. Actor to actor: the mean only (total / round
trips), since a rally is timed as a whole. Throughput: ``--messages`` requests sent without
waiting (pipelined) and all answers collected; requests per second (each request is two
messages: request and reply). The medians over the repeats are printed. Nothing asserted.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import queue
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pykka

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aistock_actors.actors.base import ActorContext, SupervisedActor  # noqa: E402
from aistock_actors.config import Config, LoadedConfig  # noqa: E402
from aistock_actors.messages import Message, Reply, Request  # noqa: E402
from aistock_actors.store.alerts import AlertSink  # noqa: E402
from aistock_actors.store.audit import AuditLog  # noqa: E402


class Ping(Request, frozen=True, kw_only=True):
    seq: int
    payload: str = "cycle-step"


class Pong(Reply, frozen=True, kw_only=True):
    seq: int


class Rally(Message, frozen=True, kw_only=True):
    """Start (or continue) a ping-pong rally of ``remaining`` round trips."""

    remaining: int


class Echo(SupervisedActor):
    """Answers every Ping with a Pong (through the base's reply path)."""

    child_name = "echo"

    def handle(self, request: Request) -> Reply:
        assert isinstance(request, Ping)
        return Pong(request_id=request.request_id, seq=request.seq)


class Client(SupervisedActor):
    """Actor A of the rally: tells Pings to B (an Echo), counts the Pongs B's replies bring."""

    child_name = "client"

    def __init__(
        self, ctx: ActorContext, peers: dict[str, pykka.ActorRef[Any]], done: threading.Event
    ) -> None:
        super().__init__(ctx)
        self.peers = peers
        self.done = done
        self.remaining = 0

    def handle_other(self, message: Any) -> None:
        match message:
            case Rally(remaining=n):
                self.remaining = n
                self._send()
            case Pong():
                self.remaining -= 1
                if self.remaining > 0:
                    self._send()
                else:
                    self.done.set()
            case _:
                super().handle_other(message)

    def _send(self) -> None:
        self.peers["server"].tell(Ping(request_id="rally", seq=self.remaining))


class RawEcho(pykka.ThreadingActor):
    """Plain pykka: a dict in, a dict out (returned for ask, or put on a queue for tell)."""

    use_daemon_thread = True

    def __init__(self, inbox: queue.Queue[dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.inbox = inbox

    def on_receive(self, message: Any) -> Any:
        answer = {"type": "pong", "request_id": message["request_id"], "seq": message["seq"]}
        if self.inbox is not None:
            self.inbox.put(answer)
            return None
        return answer


@dataclass
class Result:
    p50: float
    p99: float
    mean: float
    throughput: float


def context(name: str, report: Callable[[Message], None], tmp: Path) -> ActorContext:
    loaded = LoadedConfig(config=Config(), path=tmp / "config.json", base_dir=tmp)
    return ActorContext(
        name=name,
        generation=1,
        report=report,
        halt_flag=threading.Event(),
        config=loaded,
        audit=AuditLog(tmp / "audit.jsonl"),
        alerts=AlertSink(tmp / "alerts"),
    )


def latencies(round_trip: Callable[[int], None], n: int, warmup: int) -> list[float]:
    for i in range(warmup):
        round_trip(i)
    out = []
    clock = time.perf_counter_ns
    for i in range(n):
        t0 = clock()
        round_trip(i)
        out.append((clock() - t0) / 1000.0)  # microseconds
    return out


def summary(lat: list[float], throughput: float) -> Result:
    ordered = sorted(lat)
    return Result(
        p50=ordered[len(ordered) // 2],
        p99=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        mean=statistics.fmean(ordered),
        throughput=throughput,
    )


def pipelined(send: Callable[[int], None], receive: Callable[[], None], n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        send(i)
    for _ in range(n):
        receive()
    return n / (time.perf_counter() - t0)


def ours_tell_reply(n: int, warmup: int, tmp: Path) -> Result:
    inbox: queue.Queue[Message] = queue.Queue()
    ref = Echo.start(context("echo", inbox.put, tmp))
    try:

        def round_trip(i: int) -> None:
            ref.tell(Ping(request_id="r", seq=i))
            inbox.get(timeout=10)

        lat = latencies(round_trip, n, warmup)
        rate = pipelined(lambda i: ref.tell(Ping(request_id="r", seq=i)),
                         lambda: inbox.get(timeout=10), n)
        return summary(lat, rate)
    finally:
        ref.stop()


def ours_actor_to_actor(n: int, warmup: int, tmp: Path) -> Result:
    refs: dict[str, pykka.ActorRef[Any]] = {}
    done = threading.Event()
    # B's replies (its ctx.report) are told to A; A tells its Pings to B.
    server = Echo.start(context("server", lambda m: refs["client"].tell(m), tmp))
    refs["server"] = server
    client = Client.start(context("client", lambda m: None, tmp), refs, done)
    refs["client"] = client
    try:

        def rally(count: int) -> float:
            done.clear()
            t0 = time.perf_counter()
            client.tell(Rally(remaining=count))
            if not done.wait(60):
                raise TimeoutError("rally did not finish")
            return time.perf_counter() - t0

        rally(warmup)
        elapsed = rally(n)
        mean = elapsed / n * 1e6
        # A rally is strictly sequential: its throughput is 1 / round trip.
        return Result(p50=float("nan"), p99=float("nan"), mean=mean, throughput=n / elapsed)
    finally:
        client.stop()
        server.stop()


def raw_ask(n: int, warmup: int) -> Result:
    ref = RawEcho.start()
    try:
        lat = latencies(lambda i: ref.ask({"type": "ping", "request_id": "r", "seq": i}), n, warmup)
        futures: list[Any] = []
        rate = pipelined(
            lambda i: futures.append(ref.ask({"type": "ping", "request_id": "r", "seq": i},
                                             block=False)),
            lambda: futures.pop(0).get(timeout=10),
            n,
        )
        return summary(lat, rate)
    finally:
        ref.stop()


def raw_tell_reply(n: int, warmup: int) -> Result:
    inbox: queue.Queue[dict[str, Any]] = queue.Queue()
    ref = RawEcho.start(inbox)
    try:

        def round_trip(i: int) -> None:
            ref.tell({"type": "ping", "request_id": "r", "seq": i})
            inbox.get(timeout=10)

        lat = latencies(round_trip, n, warmup)
        rate = pipelined(lambda i: ref.tell({"type": "ping", "request_id": "r", "seq": i}),
                         lambda: inbox.get(timeout=10), n)
        return summary(lat, rate)
    finally:
        ref.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, a few seconds (overrides the size flags): "
                        "the bench still runs (tests/bench/test_bench_commands.py)")
    args = parser.parse_args()
    if args.smoke:
        args.messages, args.warmup, args.repeats = 500, 50, 1
    print(f"# bench_messages — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    versions = f"pykka {importlib.metadata.version('pykka')}, msgspec {msgspec.__version__}"
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
          f"{platform.python_version()}, {versions}; load average at start "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results: dict[str, list[Result]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-messages-") as tmp_name:
        tmp = Path(tmp_name)
        cases: dict[str, Callable[[], Result]] = {
            "ours, tell-reply (supervisor <-> actor)": lambda: ours_tell_reply(
                args.messages, args.warmup, tmp),
            "ours, actor to actor (A -> B -> A)": lambda: ours_actor_to_actor(
                args.messages, args.warmup, tmp),
            "pykka, ask (dict)": lambda: raw_ask(args.messages, args.warmup),
            "pykka, tell-reply (dict)": lambda: raw_tell_reply(args.messages, args.warmup),
        }
        for r in range(args.repeats):
            for name, case in cases.items():
                result = case()
                results.setdefault(name, []).append(result)
                print(f"  repeat {r + 1} {name}: p50 {result.p50:.1f} us p99 {result.p99:.1f} us "
                      f"mean {result.mean:.1f} us, {result.throughput:,.0f} req/s")
    print(f"\nload average at end {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\n| set-up | p50 us | p99 us | mean us | throughput req/s (msgs/s = 2x) |")
    print("|---|---:|---:|---:|---:|")
    medians: dict[str, Result] = {}
    for name, rows in results.items():
        med = Result(*(statistics.median(getattr(x, f) for x in rows)
                       for f in ("p50", "p99", "mean", "throughput")))
        medians[name] = med
        p50 = "n/a" if med.p50 != med.p50 else f"{med.p50:.1f}"
        p99 = "n/a" if med.p99 != med.p99 else f"{med.p99:.1f}"
        print(f"| {name} | {p50} | {p99} | {med.mean:.1f} | {med.throughput:,.0f} |")
    ours = medians["ours, tell-reply (supervisor <-> actor)"]
    raw = medians["pykka, tell-reply (dict)"]
    print(f"\nours / raw pykka (tell-reply): p50 x{ours.p50 / raw.p50:.2f}, "
          f"throughput x{ours.throughput / raw.throughput:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
