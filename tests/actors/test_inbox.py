"""Each actor's declared inbox: a message outside it is refused before dispatch (a crash the
supervisor sees), never silently handled."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import pytest
from _support.support import write_config

from aistock_actors.actors.base import ActorContext
from aistock_actors.actors.data_ingestor import DataIngestor
from aistock_actors.config import load_config
from aistock_actors.messages import Message
from aistock_actors.messages.control import ActorCrashed, Halt
from aistock_actors.messages.data import BarsIngested, DataIngestorInbox, IngestBars
from aistock_actors.messages.model import TrainModel
from aistock_actors.runtime.child_specs import default_specs
from aistock_actors.runtime.clock import FakeClock
from aistock_actors.store.alerts import AlertSink
from aistock_actors.store.audit import AuditLog


def _start(tmp_path: Path) -> tuple[queue.Queue[Message], object]:
    loaded = load_config(write_config(tmp_path))
    (tmp_path / "data").mkdir()
    inbox: queue.Queue[Message] = queue.Queue()
    clock = FakeClock()
    ctx = ActorContext(
        name="data_ingestor", generation=1, report=inbox.put, halt_flag=threading.Event(),
        config=loaded, audit=AuditLog(loaded.state_dir / "audit" / "log.jsonl", clock=clock),
        alerts=AlertSink(loaded.state_dir / "alerts", clock=clock), clock=clock,
    )
    return inbox, DataIngestor.start(ctx)


def test_a_message_outside_the_inbox_crashes_the_actor_naming_it(tmp_path: Path) -> None:
    reports, ref = _start(tmp_path)
    ref.tell(TrainModel(request_id="r1", model_id="m-1"))  # a trainer's request
    crash = reports.get(timeout=10)
    assert isinstance(crash, ActorCrashed)
    assert "TrainModel" in crash.error and "outside its inbox" in crash.error
    assert not ref.is_alive()


def test_messages_in_the_inbox_and_control_messages_are_handled(tmp_path: Path) -> None:
    reports, ref = _start(tmp_path)
    try:
        ref.tell(Halt(kind="operator", reason="test"))
        ref.tell(IngestBars(request_id="r2"))
        reply = reports.get(timeout=10)
        assert not isinstance(reply, ActorCrashed), reply
        assert isinstance(reply, Message) and reply.request_id == "r2"  # type: ignore[attr-defined]
    finally:
        ref.stop()


@pytest.mark.parametrize("spec", default_specs(), ids=lambda s: s.name)
def test_every_production_actor_declares_its_inbox(spec: object) -> None:
    actor_class = spec.actor_class  # type: ignore[attr-defined]
    assert actor_class.inbox is not None, f"{actor_class.__name__} declares no inbox"


def test_the_ingestor_inbox_is_the_ingest_request() -> None:
    assert DataIngestor.inbox is DataIngestorInbox
    assert isinstance(IngestBars(request_id="x"), DataIngestor.inbox)
    assert not isinstance(BarsIngested, DataIngestor.inbox)
