"""Repair: ``cancel``, ``delete``, ``retry_from_error``,
``update_scheduled_time`` and ``purge_errors``."""

from __future__ import annotations

import math
import time

import pytest

from taskq_core.broker import Broker
from taskq_core.exceptions import TaskNotFound
from taskq_core.states import STATES, State
from taskq_core.testing.contract._base import (
    FAR,
    OTHER,
    ContractBase,
    Q,
    _activate,
    _between,
    _execution,
    _fail,
    _ids,
    _req,
    _states_of,
)

__all__ = ["RepairContract"]


class RepairContract(ContractBase):
    """Tests of the repair methods."""

    # -- repair ----------------------------------------------------------------
    def test_cancel_removes_scheduled_task_and_data(self, broker: Broker) -> None:
        """cancel removes a scheduled task and its data."""
        broker.enqueue(_req("a", when=broker.time() + FAR))
        broker.cancel(Q, "a")
        assert _states_of(broker, Q, "a") == set()
        with pytest.raises(TaskNotFound):
            broker.executions_count(Q, "a")
        with pytest.raises(TaskNotFound):
            broker.cancel(Q, "a")

    def test_cancel_other_states_raise(self, broker: Broker) -> None:
        """cancel of a task that is not scheduled raises TaskNotFound and
        changes nothing."""
        broker.enqueue(_req("queued"))
        _activate(broker, "active", OTHER)
        for queue, task_id in ((Q, "queued"), (OTHER, "active"), (Q, "unknown")):
            with pytest.raises(TaskNotFound):
                broker.cancel(queue, task_id)
        assert _states_of(broker, Q, "queued") == {State.QUEUED}
        assert _states_of(broker, OTHER, "active") == {State.ACTIVE}

    def test_cancel_pending_twin_keeps_running_copy(self, broker: Broker) -> None:
        """Cancelling the scheduled twin of a running task keeps the running
        copy's data."""
        _activate(broker, "u", unique=True)
        broker.enqueue(_req("u", unique=True, when=broker.time() + FAR))
        broker.cancel(Q, "u")
        assert _states_of(broker, Q, "u") == {State.ACTIVE}
        assert broker.executions_count(Q, "u") == 0
        assert broker.finish(Q, "u", "w1", "retry", when=broker.time() + 5)
        assert _states_of(broker, Q, "u") == {State.SCHEDULED}

    def test_delete_removes_errored_task_and_data(self, broker: Broker) -> None:
        """delete removes a task in error and its data."""
        _fail(broker, "a")
        broker.delete(Q, "a")
        assert _states_of(broker, Q, "a") == set()
        with pytest.raises(TaskNotFound):
            broker.executions_count(Q, "a")

    def test_delete_other_states_raise(self, broker: Broker) -> None:
        """delete of a task that is not in error raises TaskNotFound."""
        broker.enqueue(_req("s", when=broker.time() + FAR))
        broker.enqueue(_req("q"))
        for task_id in ("s", "q", "unknown"):
            with pytest.raises(TaskNotFound):
                broker.delete(Q, task_id)
        assert broker.queue_sizes(Q)[State.SCHEDULED] == 1

    def test_delete_with_pending_twin_keeps_its_data(self, broker: Broker) -> None:
        """Deleting the error copy of a task that is pending again keeps the
        pending copy and its data."""
        _fail(broker, "u", unique=True)
        broker.enqueue(_req("u", unique=True, payload=b"again"))
        broker.delete(Q, "u")
        assert _states_of(broker, Q, "u") == {State.QUEUED}
        assert broker.get_task(Q, State.QUEUED, "u").payload == b"again"

    def test_retry_from_error_queues_now_keeping_records(self, broker: Broker) -> None:
        """retry_from_error moves the task to queued at now with its records;
        after another failure the count is 2."""
        _fail(broker, "a")
        before = broker.time()
        broker.retry_from_error(Q, "a")
        after = broker.time()
        task = broker.get_task(Q, State.QUEUED, "a", load_executions=5)
        assert _between(task.ts, before, after)
        assert task.executions == [_execution(1)]
        assert _states_of(broker, Q, "a") == {State.QUEUED}
        assert _ids(broker.pop(Q, 1, "w1", FAR)) == ["a"]
        assert broker.finish(Q, "a", "w1", "error", execution=_execution(2))
        assert broker.executions_count(Q, "a") == 2

    def test_retry_from_error_other_states_raise(self, broker: Broker) -> None:
        """retry_from_error of a task not in error raises TaskNotFound."""
        broker.enqueue(_req("q"))
        with pytest.raises(TaskNotFound):
            broker.retry_from_error(Q, "q")
        with pytest.raises(TaskNotFound):
            broker.retry_from_error(Q, "unknown")
        assert _states_of(broker, Q, "q") == {State.QUEUED}

    def test_retry_from_error_with_pending_twin_keeps_twin(self, broker: Broker) -> None:
        """retry_from_error while a copy is pending drops the error copy and
        keeps the pending one at its time (no duplicate)."""
        _fail(broker, "u", unique=True)
        when = broker.time() + FAR
        broker.enqueue(_req("u", unique=True, when=when))
        broker.retry_from_error(Q, "u")
        assert _states_of(broker, Q, "u") == {State.SCHEDULED}
        assert broker.get_task(Q, State.SCHEDULED, "u").ts == when
        assert broker.executions_count(Q, "u") == 1

    def test_update_scheduled_time_changes_only_time(self, broker: Broker) -> None:
        """update_scheduled_time changes the score and scheduled_at; the payload
        bytes, priority, time_last_queued and records stay identical."""
        payload = b'{"args": [], "kwargs": {}, "x": 1795437461.2412539}\x00\xff'
        _activate(broker, "a", payload=payload, priority=2)
        assert broker.finish(
            Q, "a", "w1", "retry", when=broker.time() + FAR, execution=_execution(1)
        )
        before = broker.get_task(Q, State.SCHEDULED, "a", load_executions=5)
        when = broker.time() + 2 * FAR + 0.000123
        broker.update_scheduled_time(Q, "a", when)
        after = broker.get_task(Q, State.SCHEDULED, "a", load_executions=5)
        assert after.ts == when
        assert after.scheduled_at == when
        assert after.payload == payload
        assert after.priority == before.priority == 2
        assert after.time_last_queued == before.time_last_queued
        assert after.executions == before.executions == [_execution(1)]
        assert after.executions_count == 1

    def test_update_scheduled_time_refuses_a_time_not_finite(self, broker: Broker) -> None:
        """update_scheduled_time to a time that is not a finite number raises
        ValueError and leaves the due time as it was."""
        when = broker.time() + FAR
        broker.enqueue(_req("a", when=when))
        for bad in (math.inf, math.nan):
            with pytest.raises(ValueError, match="finite"):
                broker.update_scheduled_time(Q, "a", bad)
        assert broker.get_task(Q, State.SCHEDULED, "a").ts == when

    def test_update_scheduled_time_other_states_raise(self, broker: Broker) -> None:
        """update_scheduled_time of a task that is not scheduled raises
        TaskNotFound and changes nothing."""
        queued = broker.enqueue(_req("q"))
        _fail(broker, "e", OTHER)
        for queue, task_id in ((Q, "q"), (OTHER, "e"), (Q, "unknown")):
            with pytest.raises(TaskNotFound):
                broker.update_scheduled_time(queue, task_id, broker.time() + FAR)
        assert broker.get_task(Q, State.QUEUED, "q").ts == queued.ts

    def test_purge_errors_filters_by_time_and_limit(self, broker: Broker) -> None:
        """purge_errors deletes errored tasks failed before ``older_than``,
        oldest first, at most ``limit``, only in the given queue."""
        for task_id in ("e1", "e2", "e3"):
            _fail(broker, task_id)
            time.sleep(0.01)
        _fail(broker, "elsewhere", OTHER)
        scores = [t.ts for t in broker.list_tasks(Q, State.ERROR)[1]]
        assert broker.purge_errors(Q, (scores[1] + scores[2]) / 2, 1) == 1
        assert _ids(broker.list_tasks(Q, State.ERROR)[1]) == ["e2", "e3"]
        assert broker.purge_errors(Q, (scores[1] + scores[2]) / 2, None) == 1
        assert _ids(broker.list_tasks(Q, State.ERROR)[1]) == ["e3"]
        assert broker.purge_errors(Q, scores[0] - 1, None) == 0
        assert broker.purge_errors(Q, None, None) == 1
        assert broker.queue_sizes(Q)[State.ERROR] == 0
        with pytest.raises(TaskNotFound):
            broker.executions_count(Q, "e3")
        assert broker.queue_sizes(OTHER)[State.ERROR] == 1

    def test_purge_errors_older_than_is_exclusive(self, broker: Broker) -> None:
        """``older_than`` is exclusive: a task that failed exactly at
        ``older_than`` is kept, one that failed before it is deleted (with a
        limit or without)."""
        _fail(broker, "a")
        failed_at = broker.get_task(Q, State.ERROR, "a").ts
        just_after = math.nextafter(failed_at, math.inf)
        assert broker.purge_errors(Q, failed_at, None) == 0
        assert broker.purge_errors(Q, failed_at, 1) == 0
        assert _states_of(broker, Q, "a") == {State.ERROR}
        assert broker.purge_errors(Q, just_after, 1) == 1
        assert broker.queue_sizes(Q)[State.ERROR] == 0

    def test_purge_errors_with_pending_twin_keeps_it(self, broker: Broker) -> None:
        """Purging the error copy of a pending task keeps the pending copy."""
        _fail(broker, "u", unique=True)
        broker.enqueue(_req("u", unique=True, when=broker.time() + FAR))
        assert broker.purge_errors(Q, None, None) == 1
        assert _states_of(broker, Q, "u") == {State.SCHEDULED}
        assert broker.executions_count(Q, "u") == 1

    def test_purge_errors_over_5000_in_one_call(self, broker: Broker) -> None:
        """purge_errors with no limit deletes every errored task in one call,
        even beyond 5000 (TaskTiger deleted only part of them)."""
        total = 6000
        broker.enqueue_many([_req(f"t{i}", payload=b"x") for i in range(total)])
        popped = broker.pop(Q, total, "w1", FAR)
        assert len(popped) == total
        for task in popped:
            broker.finish(Q, task.id, "w1", "error")
        assert broker.queue_sizes(Q)[State.ERROR] == total
        assert broker.purge_errors(Q, None, None) == total
        assert broker.queue_sizes(Q) == dict.fromkeys(STATES, 0)

    def test_purge_errors_refuses_a_limit_below_one(self, broker: Broker) -> None:
        """purge_errors with a limit of 0 or less raises ValueError (as
        TaskTiger asserts) and deletes nothing; a limit above the number of
        matching tasks deletes them all."""
        _fail(broker, "a")
        _fail(broker, "b")
        for limit in (0, -1):
            with pytest.raises(ValueError, match="limit"):
                broker.purge_errors(Q, None, limit)
        assert broker.queue_sizes(Q)[State.ERROR] == 2
        assert broker.purge_errors(Q, None, 10) == 2
        assert broker.purge_errors(Q, None, 10) == 0

    def test_removing_one_copy_keeps_the_data_of_the_others(self, broker: Broker) -> None:
        """cancel of a scheduled copy beside an error copy, and delete or
        purge of an error copy beside a running one, keep the data and
        records the other copy still needs; the running copy ends normally."""
        _fail(broker, "u", unique=True)
        broker.enqueue(_req("u", unique=True, when=broker.time() + FAR))
        broker.cancel(Q, "u")
        assert _states_of(broker, Q, "u") == {State.ERROR}
        assert broker.get_task(Q, State.ERROR, "u", load_executions=5).executions == [_execution(1)]
        broker.enqueue(_req("u", unique=True, payload=b"run"))
        assert _ids(broker.pop(Q, 1, "w1", FAR)) == ["u"]
        broker.delete(Q, "u")
        assert broker.get_task(Q, State.ACTIVE, "u").payload == b"run"
        assert broker.finish(Q, "u", "w1", "error", execution=_execution(2))
        broker.enqueue(_req("u", unique=True, payload=b"again"))
        assert _ids(broker.pop(Q, 1, "w1", FAR)) == ["u"]
        assert broker.purge_errors(Q, None, None) == 1
        assert broker.executions_count(Q, "u") == 2
        assert broker.finish(Q, "u", "w1", "retry", when=broker.time() + FAR)
        assert _states_of(broker, Q, "u") == {State.SCHEDULED}
        assert broker.get_task(Q, State.SCHEDULED, "u").payload == b"again"

    def test_retry_from_error_beside_a_running_copy(self, broker: Broker) -> None:
        """retry_from_error of an error copy while a copy of the task runs
        queues a pending copy beside it (with the records); popping it while
        the twin runs defers it."""
        _fail(broker, "u", unique=True)
        broker.enqueue(_req("u", unique=True))
        assert _ids(broker.pop(Q, 1, "w1", FAR)) == ["u"]
        broker.retry_from_error(Q, "u")
        assert _states_of(broker, Q, "u") == {State.ACTIVE, State.QUEUED}
        assert broker.get_task(Q, State.QUEUED, "u", load_executions=5).executions == [
            _execution(1)
        ]
        assert broker.pop(Q, 1, "w2", FAR) == []
        assert _states_of(broker, Q, "u") == {State.ACTIVE, State.SCHEDULED}
