"""``tq.delay_many``: many tasks, one broker call, the same rules as ``delay``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import tasks_fixture as tf

from taskq_core import Task, TaskQ
from taskq_core.brokers.memory import MemoryBroker
from taskq_core.hookspecs import hookimpl
from taskq_core.plugins import get_plugin_manager


def test_delay_many_queues_every_task_in_order() -> None:
    """Every task is queued and runs, in the order given."""
    tq = TaskQ(broker=MemoryBroker())
    tasks = [Task(tq, tf.record, args=[i]) for i in range(50)]
    accepted = tq.delay_many(tasks)
    assert accepted == tasks
    assert {t.state for t in accepted} == {"queued"}
    assert tq.get_queue_sizes("default")["queued"] == 50
    tf.calls.clear()
    tq.run_worker(burst=True)
    assert [call[0][0] for call in tf.calls] == list(range(50))


def test_delay_many_with_when_schedules_all() -> None:
    """``when`` in the future schedules every task."""
    tq = TaskQ(broker=MemoryBroker())
    tq.delay_many([Task(tq, tf.record, args=[i]) for i in range(3)], when=dt.timedelta(hours=1))
    assert tq.get_queue_sizes("default") == {"queued": 0, "scheduled": 3, "active": 0}


def test_delay_many_leaves_out_tasks_a_full_queue_refused() -> None:
    """``max_queue_size`` refuses the tasks that do not fit; the others are stored."""
    tq = TaskQ(broker=MemoryBroker())
    tasks = [Task(tq, tf.record, args=[i], max_queue_size=3) for i in range(5)]
    accepted = tq.delay_many(tasks)
    assert accepted == tasks[:3]
    assert tq.get_total_queue_size("default") == 3


def test_delay_many_unique_twins_stored_once_and_hook_fires_per_new_task() -> None:
    """Unique duplicates are stored once; ``taskq_task_enqueued`` fires once per
    task actually created."""
    seen: list[str] = []

    class Probe:
        @hookimpl
        def taskq_task_enqueued(self, tq: Any, task: Task) -> None:
            seen.append(task.id)

    pm = get_plugin_manager()
    probe = Probe()
    pm.register(probe)
    try:
        tq = TaskQ(broker=MemoryBroker())
        tasks = [Task(tq, tf.record, args=[1], unique=True) for _ in range(3)]
        tq.delay_many(tasks)
    finally:
        pm.unregister(probe)
    assert tq.get_queue_sizes("default")["queued"] == 1
    assert seen == [tasks[0].id]


def test_delay_many_eager_runs_inline() -> None:
    """With ALWAYS_EAGER the tasks run at once and nothing is stored."""
    tq = TaskQ(broker=MemoryBroker(), config={"ALWAYS_EAGER": True})
    tf.calls.clear()
    tq.delay_many([Task(tq, tf.record, args=[i]) for i in range(3)])
    assert [call[0][0] for call in tf.calls] == [0, 1, 2]
    assert tq.get_total_queue_size("default") == 0
