"""API.md's decisions and TaskTiger's defects 1 to 4, through the public TaskQ/Task
API against a real Redis."""

from __future__ import annotations

import datetime as dt
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import api_tasks

from taskq_core import QueueFullException, Task, TaskQ
from taskq_core.broker import EnqueueRequest, FinishRequest
from taskq_core.serialization import encode_payload


@pytest.fixture
def tq(redis_url: str, redis_client: Any) -> Iterator[TaskQ]:
    app = TaskQ(redis_url, config={"STATS_INTERVAL": 0})
    yield app
    app.broker.close()


def test_decision_1_unique_task_in_two_queues_is_two_tasks(tq: TaskQ) -> None:
    """The same unique function and arguments in two queues are two tasks, each
    with its own id; enqueued again, each queue still holds one."""
    a = tq.delay(api_tasks.noop, args=[1], unique=True, queue="a")
    b = tq.delay(api_tasks.noop, args=[1], unique=True, queue="b")
    tq.delay(api_tasks.noop, args=[1], unique=True, queue="a")
    assert a.id != b.id
    assert tq.get_queue_stats() == {"a": {"queued": 1}, "b": {"queued": 1}}
    assert Task.from_id(tq, "b", "queued", b.id).args == [1]


def test_decision_4_max_queue_size_holds_under_concurrency(tq: TaskQ, redis_url: str) -> None:
    """Eight threads, each with its own connection, enqueue 10 tasks each into a
    queue limited to 5: exactly 5 are stored, the rest raise QueueFullException."""
    refused: list[int] = []
    lock = threading.Lock()

    def enqueue() -> None:
        app = TaskQ(redis_url)
        for _ in range(10):
            try:
                app.delay(api_tasks.noop, queue="limited", max_queue_size=5)
            except QueueFullException:
                with lock:
                    refused.append(1)
        app.broker.close()

    threads = [threading.Thread(target=enqueue) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tq.get_total_queue_size("limited") == 5
    assert len(refused) == 75


def test_decision_5_update_scheduled_time_changes_only_the_time(tq: TaskQ) -> None:
    """update_scheduled_time moves the due time and scheduled_at and nothing else:
    an empty-list argument, floats and the other fields come back identical
    (TaskTiger defect 3)."""
    when = dt.datetime(2040, 1, 1)
    task = tq.delay(
        api_tasks.noop,
        args=[[], {}, 1.2345678901234567],
        kwargs={"empty": []},
        when=when,
        unique=True,
    )
    before = Task.from_id(tq, "default", "scheduled", task.id)
    later = dt.datetime(2041, 6, 1, 12, 30)
    before.update_scheduled_time(later)
    after = Task.from_id(tq, "default", "scheduled", task.id)
    assert after.data == before.data
    assert after.args == [[], {}, 1.2345678901234567]
    assert after.kwargs == {"empty": []}
    assert after.scheduled_at == later
    assert after.ts == later
    assert after.time_last_queued == before.time_last_queued


def test_defect_4_reenqueueing_a_scheduled_unique_task_keeps_data_and_schedule(
    tq: TaskQ,
) -> None:
    """Enqueuing a unique task that is already scheduled changes nothing: its due
    time, scheduled_at and data stay consistent."""
    first = dt.datetime(2040, 1, 1)
    task = tq.delay(api_tasks.noop, args=[7], unique=True, when=first)
    tq.delay(api_tasks.noop, args=[7], unique=True, when=dt.datetime(2045, 1, 1))
    stored = Task.from_id(tq, "default", "scheduled", task.id)
    assert stored.ts == first
    assert stored.scheduled_at == first
    assert tq.get_queue_sizes("default")["scheduled"] == 1


def test_decision_6_purge_removes_every_match_in_one_call(tq: TaskQ) -> None:
    """6000 errored tasks in one queue: purge_errored_tasks(limit=None) removes
    all of them in one call (TaskTiger defect 1 left 5000)."""
    broker = tq.broker
    requests = [
        EnqueueRequest(
            id=f"t{i}", queue="big", payload=encode_payload({"func": "m:f", "id": f"t{i}"})
        )
        for i in range(6000)
    ]
    broker.enqueue_many(requests)
    popped = broker.pop("big", 6000, "w", 1.0)
    broker.finish_many("big", "w", [FinishRequest(t.id, "error") for t in popped])
    assert tq.get_queue_stats() == {"big": {"error": 6000}}
    assert tq.purge_errored_tasks() == 6000
    assert tq.get_queue_stats() == {}


def test_decision_6_listing_with_missing_data_never_duplicates(
    tq: TaskQ, redis_client: Any
) -> None:
    """A queued task whose data vanished is listed once, as missing, between the
    others (TaskTiger defect 2 repeated the previous task)."""
    ids = [tq.delay(api_tasks.noop, args=[i]).id for i in range(3)]
    layout = tq.broker.layout  # type: ignore[attr-defined]
    tasks_hash = layout.queue("default").keys[4]
    assert redis_client.hdel(tasks_hash, f"d:{ids[1]}") == 1
    total, listed = Task.tasks_from_queue(tq, "default", "queued")
    assert total == 3
    assert [t.id for t in listed] == ids
    assert [t.data.get("func") is None for t in listed] == [False, True, False]


def test_tasks_from_queue_is_oldest_first_and_skip_counts_from_the_oldest(tq: TaskQ) -> None:
    """tasks_from_queue pages in ascending order; skip counts from the oldest
    (TaskTiger defect 6 documented the opposite)."""
    ids = [tq.delay(api_tasks.noop, args=[i]).id for i in range(5)]
    total, page = Task.tasks_from_queue(tq, "default", "queued", skip=1, limit=2)
    assert total == 5
    assert [t.id for t in page] == ids[1:3]
