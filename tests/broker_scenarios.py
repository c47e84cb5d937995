"""Scenarios of API decisions 1, 5, 6, 14, 15 and 16, of inspection and purges,
and of lost task data, through the public API, shared by the memory-broker
and SQLite tests (tests/core) and the Redis tests (tests/redis): each test
module passes its own app and, where needed, its way to make time pass or to
delete data behind the broker's back.

Workers run in this process (``executor="sync"``), so the task functions below
record their calls in :data:`calls`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import structlog.testing

import taskq_core.app
from taskq_core import JobTimeoutException, State, Task, TaskQ, periodic
from taskq_core._internal import from_timestamp

#: what the task functions did, in order.
calls: list[Any] = []
#: the outcomes of the next runs of :func:`periodic_report`: True fails.
periodic_failures: list[bool] = []

QUEUE = "scenario"
LONG_AGO = dt.datetime(2000, 1, 1)


def record(*args: Any, **kwargs: Any) -> None:
    """Record the call."""
    calls.append((args, kwargs))


def periodic_report() -> None:
    """A periodic task that fails when the next entry of periodic_failures says so."""
    fail = periodic_failures.pop(0)
    calls.append(("periodic_report", fail))
    if fail:
        raise ValueError("the report failed")


def fail(*args: Any) -> None:
    """Record the call, then fail (for good: no retry options)."""
    calls.append(("fail", args))
    raise ValueError("this task fails")


def _burst(tq: TaskQ) -> None:
    tq.run_worker(queues=[QUEUE], burst=True, executor="sync")


def _near(value: dt.datetime | None, now: float, within: float = 5.0) -> bool:
    return value is not None and abs((value - from_timestamp(now)).total_seconds()) <= within


# -- decision 1 ---------------------------------------------------------------------


def unique_tasks_in_two_queues_are_two_tasks(tq: TaskQ) -> None:
    """The same unique function and arguments in a queue and its subqueue
    are two tasks (two ids, counted apart) and both run."""
    calls.clear()
    sub = f"{QUEUE}.sub"
    first = tq.delay(record, args=["same"], queue=QUEUE, unique=True)
    second = tq.delay(record, args=["same"], queue=sub, unique=True)
    assert first.id != second.id
    assert tq.get_queue_stats() == {QUEUE: {"queued": 1}, sub: {"queued": 1}}
    _burst(tq)  # the worker of QUEUE takes its subqueues too
    assert calls == [(("same",), {}), (("same",), {})]
    assert tq.get_queue_stats() == {}


# -- decision 5: arguments round trip ---------------------------------------------------


def arguments_round_trip_exactly(tq: TaskQ) -> None:
    """Empty arguments, empty lists and maps, unicode and floats to the last
    digit come back as they were given, also after update_scheduled_time
    (which changes nothing else in the task's data: Decision 5), and the
    worker calls the function with them."""
    calls.clear()
    value = 1795437461.2412539
    args = [[], {}, value, "ünï ✓", None, True]
    kwargs = {"empty": [], "map": {}, "nested": [[1.5], {"k": []}]}
    bare = tq.delay(record, queue=QUEUE, when=dt.timedelta(hours=1))
    full = tq.delay(record, args=args, kwargs=kwargs, queue=QUEUE, when=dt.timedelta(hours=2))
    for task, due in ((bare, LONG_AGO), (full, LONG_AGO + dt.timedelta(days=1))):
        before = Task.from_id(tq, QUEUE, State.SCHEDULED, task.id)
        before.update_scheduled_time(due)
        after = Task.from_id(tq, QUEUE, State.SCHEDULED, task.id)
        assert after.data == before.data == task.data
        assert after.ts == after.scheduled_at == due
        assert after.time_last_queued == before.time_last_queued
    loaded = Task.from_id(tq, QUEUE, State.SCHEDULED, full.id)
    assert (loaded.args, loaded.kwargs) == (args, kwargs)
    assert Task.from_id(tq, QUEUE, State.SCHEDULED, bare.id).args == []
    _burst(tq)
    assert calls == [((), {}), (tuple(args), kwargs)]


# -- inspection -----------------------------------------------------------------------


def inspection_pages_oldest_first_and_counts_exact_queues(tq: TaskQ) -> None:
    """tasks_from_queue lists oldest first, skip counted from the oldest;
    queue sizes and stats count each queue by its exact name (a subqueue
    apart from its parent), an unknown queue has zero of everything and an
    empty broker no stats."""
    sub = f"{QUEUE}.sub"
    assert tq.get_queue_stats() == {}
    assert tq.get_queue_sizes("nowhere") == {"queued": 0, "scheduled": 0, "active": 0}
    for hours in (5, 1, 3, 2, 4):
        tq.delay(record, args=[hours], queue=QUEUE, when=dt.timedelta(hours=hours))
    tq.delay(record, args=["sub"], queue=sub)
    total, page = Task.tasks_from_queue(tq, QUEUE, "scheduled", skip=1, limit=2)
    assert total == 5
    assert [t.args for t in page] == [[2], [3]]
    assert all(t.state == "scheduled" and t.queue == QUEUE for t in page)
    assert [t.args for t in Task.tasks_from_queue(tq, QUEUE, "scheduled", skip=3)[1]] == [[4], [5]]
    assert Task.tasks_from_queue(tq, QUEUE, "scheduled", skip=5) == (5, [])
    assert tq.get_queue_stats() == {QUEUE: {"scheduled": 5}, sub: {"queued": 1}}
    assert tq.get_queue_sizes(QUEUE) == {"queued": 0, "scheduled": 5, "active": 0}
    assert tq.get_total_queue_size(sub) == 1


def purge_errored_tasks_filters_and_limits(tq: TaskQ) -> None:
    """purge_errored_tasks counts what it deleted, honours the queue filters,
    ``limit`` (below 1: ValueError) and ``last_execution_before``, and with
    no limit deletes every errored task of every queue."""
    sub = f"{QUEUE}.sub"
    for number in range(3):
        tq.delay(fail, args=[number], queue=QUEUE)
    tq.delay(fail, args=["sub"], queue=sub)
    _burst(tq)
    assert tq.get_queue_stats() == {QUEUE: {"error": 3}, sub: {"error": 1}}
    with pytest.raises(ValueError, match="limit"):
        tq.purge_errored_tasks(limit=0)
    assert tq.purge_errored_tasks(last_execution_before=LONG_AGO) == 0
    assert tq.purge_errored_tasks(queues=[QUEUE], exclude_queues=[sub], limit=2) == 2
    assert tq.get_queue_stats() == {QUEUE: {"error": 1}, sub: {"error": 1}}
    assert tq.purge_errored_tasks() == 2
    assert tq.get_queue_stats() == {}


# -- decision 14 --------------------------------------------------------------------


def past_when_is_queued_at_once_and_stamped_now(tq: TaskQ) -> None:
    """A past or present ``when`` queues the task at once; its ``scheduled_at``
    is the time it was queued (the broker's now), on the returned task and on
    the stored one alike."""
    for when in (LONG_AGO, dt.timedelta(seconds=-30), dt.timedelta(0)):
        task = tq.delay(record, args=[str(when)], queue=QUEUE, when=when)
        now = tq.broker.time()
        assert task.state == "queued"
        stored = Task.from_id(tq, QUEUE, State.QUEUED, task.id)
        assert stored.scheduled_at == stored.ts, when
        assert _near(stored.scheduled_at, now), (when, stored.scheduled_at)
        assert task.scheduled_at == stored.scheduled_at, when
    assert tq.get_queue_sizes(QUEUE)["queued"] == 3


# -- decision 15 --------------------------------------------------------------------


def reenqueued_queued_unique_task_keeps_place_takes_arguments(tq: TaskQ) -> None:
    """Re-enqueueing a queued unique task (same ``unique_key``, other
    arguments) keeps its place in the queue and stores the latest arguments,
    which the worker then runs."""
    calls.clear()
    first = Task(tq, record, args=["first"], kwargs={"key": 1}, queue=QUEUE, unique_key="key")
    first.delay()
    other = tq.delay(record, args=["other"], queue=QUEUE)
    again = Task(
        tq, record, args=["latest"], kwargs={"key": 1}, queue=QUEUE, unique_key="key", priority=5
    )
    again.delay()
    assert again.id == first.id
    assert again.args == ["latest"]
    total, tasks = Task.tasks_from_queue(tq, QUEUE, State.QUEUED)
    assert total == 2
    assert [t.id for t in tasks] == [first.id, other.id]
    stored = tasks[0]
    assert stored.args == ["latest"]
    assert stored.priority == 0  # its place, priority included
    assert stored.ts == first.ts
    assert stored.scheduled_at == stored.ts
    assert again.ts == first.ts
    assert again.scheduled_at == stored.scheduled_at
    _burst(tq)
    assert calls == [(("latest",), {"key": 1}), (("other",), {})]


def reenqueued_scheduled_unique_task_keeps_due_time_takes_arguments(tq: TaskQ) -> None:
    """Re-enqueueing a scheduled unique task with another ``when`` (earlier,
    later or now) keeps its due time, stores the latest arguments, and its
    ``scheduled_at`` still agrees with the due time."""
    first = tq.delay(
        record,
        args=["first"],
        kwargs={"key": 2},
        queue=QUEUE,
        unique_key="key",
        when=dt.timedelta(hours=2),
    )
    assert first.ts is not None
    for number, when in enumerate((dt.timedelta(hours=1), dt.timedelta(hours=5), None)):
        again = tq.delay(
            record,
            args=[f"call {number}"],
            kwargs={"key": 2},
            queue=QUEUE,
            unique_key="key",
            when=when,
        )
        assert again.id == first.id
        assert again.ts == first.ts
        assert again.scheduled_at == first.ts
        stored = Task.from_id(tq, QUEUE, State.SCHEDULED, first.id)
        assert stored.args == [f"call {number}"]
        assert stored.ts == first.ts
        assert stored.scheduled_at == first.ts
    assert tq.get_queue_sizes(QUEUE) == {"queued": 0, "scheduled": 1, "active": 0}


# -- decision 16 --------------------------------------------------------------------


def periodic_error_entry_stays_until_someone_acts(tq: TaskQ) -> None:
    """A periodic task that failed for good keeps its ``error`` entry and its
    records while later runs succeed or fail; only retry, delete or purge
    remove it, and the schedule goes on meanwhile."""
    saved = dict(taskq_core.app.PERIODIC_TASKS)
    try:
        tq.task(schedule=periodic(hours=1), queue=QUEUE)(periodic_report)
        periodic_failures[:] = [True, False, True, False]
        _burst(tq)  # queues the next run, an hour away

        def run_next() -> None:
            _, (pending,) = Task.tasks_from_queue(tq, QUEUE, State.SCHEDULED)
            pending.update_scheduled_time(LONG_AGO)
            _burst(tq)
            assert tq.get_queue_sizes(QUEUE)["scheduled"] == 1

        def error_entry() -> Task:
            total, (failed,) = Task.tasks_from_queue(tq, QUEUE, State.ERROR, load_executions=10)
            assert total == 1
            return failed

        run_next()  # fails for good (no retries)
        first = error_entry()
        assert [e["exception_name"] for e in first.executions] == ["builtins:ValueError"]

        run_next()  # succeeds: the error entry and its record stay
        kept = error_entry()
        assert kept.id == first.id
        assert kept.ts == first.ts
        assert kept.executions == first.executions
        assert kept.n_executions() == 1

        run_next()  # fails again: still one error entry, now with both records
        again = error_entry()
        assert again.id == first.id
        assert len(again.executions) == 2
        assert again.executions[0] == first.executions[0]
        assert again.ts is not None
        assert first.ts is not None
        assert again.ts >= first.ts

        again.delete()  # a person acts: the entry goes, the schedule stays
        assert tq.get_queue_sizes(QUEUE)["scheduled"] == 1
        assert Task.tasks_from_queue(tq, QUEUE, State.ERROR)[0] == 0
        run_next()
        assert Task.tasks_from_queue(tq, QUEUE, State.ERROR)[0] == 0
        assert [c for c in calls if c[0] == "periodic_report"][-4:] == [
            ("periodic_report", True),
            ("periodic_report", False),
            ("periodic_report", True),
            ("periodic_report", False),
        ]
    finally:
        taskq_core.app.PERIODIC_TASKS.clear()
        taskq_core.app.PERIODIC_TASKS.update(saved)


# -- lost data ----------------------------------------------------------------------


def expired_tasks_with_lost_data_are_removed(
    tq: TaskQ,
    pass_time: Callable[[float], None],
    drop_data: Callable[[str, str], None],
) -> None:
    """Five tasks of a dead worker lost their data; a sixth, popped last, did
    not. One recovery pass (batch size 2) removes the five from ``active``
    with one warning each, and still recovers the sixth.

    ``pass_time(seconds)`` makes that much broker time pass;
    ``drop_data(queue, task_id)`` deletes a task's data behind the broker's
    back. ``tq`` has ``REQUEUE_EXPIRED_TASKS_BATCH_SIZE`` 2 and an
    ``ACTIVE_TASK_UPDATE_TIMEOUT`` under a second."""
    assert tq.config["REQUEUE_EXPIRED_TASKS_BATCH_SIZE"] == 2
    lost = [tq.delay(record, args=[n], queue=QUEUE).id for n in range(5)]
    assert len(tq.broker.pop(QUEUE, 5, "dead-worker", 30)) == 5
    pass_time(0.01)
    survivor = tq.delay(record, args=["survivor"], queue=QUEUE).id
    assert [t.id for t in tq.broker.pop(QUEUE, 5, "dead-worker", 30)] == [survivor]
    for task_id in lost:
        drop_data(QUEUE, task_id)
    pass_time(float(tq.config["ACTIVE_TASK_UPDATE_TIMEOUT"]) + 0.2)

    with structlog.testing.capture_logs() as logs:
        _burst(tq)

    assert tq.get_queue_stats() == {QUEUE: {"error": 1}}
    (failed,) = Task.tasks_from_queue(tq, QUEUE, State.ERROR, load_executions=1)[1]
    assert failed.id == survivor
    assert failed.executions[0]["exception_name"].endswith(JobTimeoutException.__name__)
    warnings = [e for e in logs if e.get("task_id") in lost]
    assert sorted(e["task_id"] for e in warnings) == sorted(lost)
    assert all(e["log_level"] == "warning" for e in warnings)
    assert len({e["event"] for e in warnings}) == 1
