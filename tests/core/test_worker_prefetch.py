"""A worker serving one queue pops the next tasks together with the previous
outcome; tasks popped ahead and not run are returned when it stops."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
import tasks_fixture as tf

from taskq_core import Task, TaskQ
from taskq_core.brokers.memory import MemoryBroker
from taskq_core.hookspecs import hookimpl
from taskq_core.plugins import get_plugin_manager

pytestmark = pytest.mark.usefixtures("clean_calls")


class StopAfterFirstSuccess:
    """Sends this process SIGTERM once the first outcome is stored (and the next
    tasks were already popped with it)."""

    def __init__(self) -> None:
        self.sent = False

    @hookimpl
    def taskq_task_succeeded(self, tq: Any, task: Task, duration: float) -> None:
        if not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGTERM)


def test_tasks_popped_ahead_are_returned_when_the_worker_stops() -> None:
    """With BATCH_QUEUES of 2, the first outcome is stored together with a pop of
    the next two tasks; a stop then returns those two to queued, unrun and with
    no failed run recorded, and the rest stay queued."""
    tq = TaskQ(broker=MemoryBroker(), config={"BATCH_QUEUES": {"default": 2}})
    for i in range(5):
        tq.delay(tf.record, args=[i])
    probe = StopAfterFirstSuccess()
    pm = get_plugin_manager()
    pm.register(probe)
    try:
        tq.run_worker(burst=True)
    finally:
        pm.unregister(probe)
    ran = [call[0][0] for call in tf.calls]
    assert ran in ([0, 1], [0]), ran  # the first group (stopped after its first success)
    assert tq.get_queue_sizes("default") == {"queued": 5 - len(ran), "scheduled": 0, "active": 0}
    _, queued = Task.tasks_from_queue(tq, "default", "queued")
    assert sorted(t.args[0] for t in queued) == [i for i in range(5) if i not in ran]
    assert all(t.n_executions() == 0 for t in queued)


def test_single_queue_worker_runs_everything_in_order() -> None:
    """Popping ahead keeps FIFO order and runs every task once."""
    tq = TaskQ(broker=MemoryBroker())
    for i in range(20):
        tq.delay(tf.record, args=[i])
    tq.run_worker(burst=True)
    assert [call[0][0] for call in tf.calls] == list(range(20))
    assert tq.get_queue_stats() == {}
