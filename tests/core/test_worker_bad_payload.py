"""A task whose stored payload cannot be read never stops a worker."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
import tasks_fixture as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corrupt_data import corrupt_payloads, payload_kinds
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


# -- Decision 19: payloads of the wrong shape, on the memory broker -------------------

FUNC = "tasks_fixture:record"
KINDS = payload_kinds(FUNC)


def _enqueue_raw(broker: MemoryBroker, task_id: str, payload: bytes) -> None:
    broker.enqueue(EnqueueRequest(id=task_id, queue="default", payload=payload))


def _errors(tq: TaskQ) -> dict[str, Task]:
    _, failed = Task.tasks_from_queue(tq, "default", "error", load_executions=5)
    return {t.id: t for t in failed}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_corrupted_payload_kind_fails_with_a_record_naming_it(kind: str) -> None:
    """Decision 19: whatever is wrong with a payload (not msgpack, not a task map,
    a field missing or of the wrong type), the worker does not die: the task goes
    to error with a SerializationError record that names the bad field, is never
    run, and the good tasks queued around it run."""
    broker = MemoryBroker()
    tq = TaskQ(broker=broker)
    tf.calls.clear()
    tq.delay(tf.record, args=["before"])
    _enqueue_raw(broker, "bad", KINDS[kind])
    tq.delay(tf.record, args=["after"])
    tq.run_worker(burst=True)
    assert sorted(tf.calls) == [(("after",), {}), (("before",), {})]
    assert tq.get_queue_sizes("default") == {"queued": 0, "scheduled": 0, "active": 0}
    failed = _errors(tq)
    assert list(failed) == ["bad"]
    record = failed["bad"].executions[-1]
    assert record["exception_name"] == "taskq_core.exceptions:SerializationError"
    field = kind.split(maxsplit=1)[0]
    if field in FIELD_NAMES:
        assert f"'{field}'" in record["exception"], record["exception"]
    assert failed["bad"].unreadable == record["exception"]


FIELD_NAMES = {
    "func",
    "args",
    "kwargs",
    "hard_timeout",
    "lock",
    "lock_key",
    "unique",
    "unique_key",
    "max_stored_executions",
    "max_queue_size",
    "retry_on",
    "retry_method",
    "priority",
    "runner_class",
    "id",
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bad=st.lists(corrupt_payloads(FUNC), min_size=1, max_size=6),
    good=st.integers(min_value=0, max_value=4),
    order=st.randoms(use_true_random=False),
)
def test_random_corrupted_payloads_never_stop_the_worker(
    bad: list[bytes], good: int, order: Any
) -> None:
    """Decision 19, as a property: random corrupted payloads (random bytes,
    msgpack of the wrong shape, one field of a random wrong value) enqueued
    among good tasks all end in error with a record and never run; every good
    task runs once; nothing is left queued or active."""
    broker = MemoryBroker()
    tq = TaskQ(broker=broker)
    tf.calls.clear()
    entries = [("bad", i, payload) for i, payload in enumerate(bad)]
    entries += [("good", i, b"") for i in range(good)]
    order.shuffle(entries)
    for what, i, payload in entries:
        if what == "bad":
            _enqueue_raw(broker, f"bad{i}", payload)
        else:
            tq.delay(tf.record, args=[f"good{i}"])
    tq.run_worker(burst=True)
    assert sorted(tf.calls) == sorted(((f"good{i}",), {}) for i in range(good))
    assert tq.get_queue_sizes("default") == {"queued": 0, "scheduled": 0, "active": 0}
    failed = _errors(tq)
    assert sorted(failed) == sorted(f"bad{i}" for i in range(len(bad)))
    for task in failed.values():
        assert task.executions, task.id
        assert task.executions[-1]["exception_name"].endswith("SerializationError")


def test_a_queued_id_without_data_is_dropped_with_a_warning() -> None:
    """Decision 19 on the memory broker: a queued id whose data is gone is
    dropped by pop, and the worker logs a warning naming its queue and id."""
    broker = MemoryBroker()
    tq = TaskQ(broker=broker)
    tf.calls.clear()
    lost = tq.delay(tf.record, args=["lost"]).id
    tq.delay(tf.record, args=["kept"])
    broker._drop_data("default", lost)
    with structlog.testing.capture_logs() as logs:
        tq.run_worker(burst=True)
    assert tf.calls == [(("kept",), {})]
    dropped = [e for e in logs if e["event"] == "dropped task"]
    assert [(e["log_level"], e["queue"], e["task_id"]) for e in dropped] == [
        ("warning", "default", lost)
    ]
    assert "missing" in dropped[0]["reason"]
