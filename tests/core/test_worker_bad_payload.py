"""A task whose stored payload cannot be read never stops a worker."""

from __future__ import annotations

import tasks_fixture as tf

from taskq_core import Task, TaskQ
from taskq_core.broker import EnqueueRequest
from taskq_core.brokers.memory import MemoryBroker
from taskq_core.hookspecs import hookimpl
from taskq_core.plugins import get_plugin_manager
from taskq_core.serialization import SCHEMA_VERSION, pack


class Permanent:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    @hookimpl
    def taskq_task_permanently_failed(self, task: Task) -> None:
        self.seen.append((task.id, task.serialized_func))


def test_unreadable_payloads_go_to_error_and_the_worker_goes_on() -> None:
    """Garbage bytes and a payload of a newer schema version each land in error
    with an execution record naming the problem and are reported through
    ``taskq_task_permanently_failed``; the good task queued after them still runs."""
    probe = Permanent()
    pm = get_plugin_manager()
    pm.register(probe)
    try:
        _run_bad_payloads()
    finally:
        pm.unregister(probe)
    assert sorted(probe.seen) == [
        ("future", "<unreadable payload>"),
        ("garbage", "<unreadable payload>"),
    ]


def _run_bad_payloads() -> None:
    broker = MemoryBroker()
    tq = TaskQ(broker=broker)
    broker.enqueue(EnqueueRequest(id="garbage", queue="default", payload=b"\xc1\xff"))
    future = pack({"v": SCHEMA_VERSION + 1, "id": "future", "func": "x:y"})
    broker.enqueue(EnqueueRequest(id="future", queue="default", payload=future))
    tf.calls.clear()
    tq.delay(tf.record, args=["after"])
    tq.run_worker(burst=True)
    assert tf.calls == [(("after",), {})]
    assert tq.get_queue_sizes("default") == {"queued": 0, "scheduled": 0, "active": 0}
    _, failed = Task.tasks_from_queue(tq, "default", "error", load_executions=1)
    assert sorted(t.id for t in failed) == ["future", "garbage"]
    records = {t.id: t.executions[-1] for t in failed}
    assert "schema version" in records["future"]["traceback"]
    assert records["garbage"]["exception_name"].endswith("Error")
