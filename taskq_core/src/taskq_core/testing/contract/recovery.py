"""Runs whose worker was lost: ``expired_tasks`` and ``recover_expired``."""

from __future__ import annotations

import math
import time

import pytest

from taskq_core.broker import Broker
from taskq_core.exceptions import TaskNotFound
from taskq_core.states import State
from taskq_core.testing.contract._base import (
    FAR,
    OTHER,
    ContractBase,
    Q,
    _activate,
    _announced,
    _between,
    _drain_activity,
    _execution,
    _fail_n_times,
    _ids,
    _req,
    _states_of,
)

__all__ = ["RecoveryContract"]


class RecoveryContract(ContractBase):
    """Tests of ``expired_tasks`` and ``recover_expired``."""

    # -- expiry and recovery ---------------------------------------------------
    def test_expired_tasks_oldest_first_across_queues(self, broker: Broker) -> None:
        """expired_tasks lists active tasks with a heartbeat before the cutoff,
        oldest first, across queues, at most ``limit``."""
        _activate(broker, "a", Q)
        time.sleep(0.01)
        _activate(broker, "b", OTHER)
        time.sleep(0.01)
        cutoff = broker.time()
        time.sleep(0.01)
        _activate(broker, "c", Q)
        assert broker.expired_tasks(cutoff, 10) == [(Q, "a"), (OTHER, "b")]
        assert broker.expired_tasks(cutoff, 1) == [(Q, "a")]
        assert len(broker.expired_tasks(broker.time() + 1, 10)) == 3

    def test_heartbeat_moves_a_task_to_the_end_of_active(self, broker: Broker) -> None:
        """Active tasks are listed, and found expired, in the order of their
        last heartbeat: a refreshed task comes after one not refreshed."""
        _activate(broker, "a")
        time.sleep(0.002)
        _activate(broker, "b")
        time.sleep(0.002)
        assert broker.heartbeat(Q, ["a"], "w1") == ["a"]
        assert _ids(broker.list_tasks(Q, State.ACTIVE)[1]) == ["b", "a"]
        assert broker.expired_tasks(broker.time() + 1, 10) == [(Q, "b"), (Q, "a")]

    def test_heartbeat_keeps_task_from_expiring(self, broker: Broker) -> None:
        """A task whose heartbeat is after the cutoff is neither listed nor
        recovered."""
        _activate(broker, "a")
        time.sleep(0.01)
        cutoff = broker.time()
        time.sleep(0.01)
        assert broker.heartbeat(Q, ["a"], "w1") == ["a"]
        assert broker.expired_tasks(cutoff, 10) == []
        assert not broker.recover_expired(Q, "a", cutoff, "requeue")
        assert _states_of(broker, Q, "a") == {State.ACTIVE}

    def test_recover_expired_requeue_records_and_queues(self, broker: Broker) -> None:
        """recover_expired with requeue queues the task now, appends the
        "worker lost" record, announces the queue and drops the ownership."""
        _activate(broker, "a", worker="w1")
        _drain_activity(broker)
        record = _execution(1, exception_name="taskq_core.exceptions:JobTimeoutException")
        before = broker.time()
        assert broker.recover_expired(Q, "a", before + 1, "requeue", execution=record)
        after = broker.time()
        task = broker.get_task(Q, State.QUEUED, "a", load_executions=5)
        assert _between(task.ts, before, after)
        assert task.executions == [record]
        assert task.executions_count == 1
        assert not broker.finish(Q, "a", "w1", "done")
        assert _announced(broker, Q)

    def test_recover_expired_retry_schedules(self, broker: Broker) -> None:
        """recover_expired with retry schedules the task at ``when``."""
        _activate(broker, "a")
        when = broker.time() + FAR
        assert broker.recover_expired(
            Q, "a", broker.time() + 1, "retry", when=when, execution=_execution(1)
        )
        assert broker.get_task(Q, State.SCHEDULED, "a").ts == when
        assert broker.executions_count(Q, "a") == 1

    def test_recover_expired_error_moves_to_error(self, broker: Broker) -> None:
        """recover_expired with error moves the task to error whichever worker
        owned it."""
        _activate(broker, "a", worker="somebody")
        before = broker.time()
        assert broker.recover_expired(Q, "a", before + 1, "error", execution=_execution(1))
        task = broker.get_task(Q, State.ERROR, "a")
        assert _between(task.ts, before, broker.time())
        assert task.executions_count == 1

    def test_recover_expired_refuses_fresh_or_inactive(self, broker: Broker) -> None:
        """recover_expired returns False for a task active since the cutoff or
        not active at all, and changes nothing."""
        task = _activate(broker, "a")
        broker.enqueue(_req("b"))
        assert not broker.recover_expired(Q, "a", task.ts - 1, "error")
        assert not broker.recover_expired(Q, "b", broker.time() + 1, "error")
        assert not broker.recover_expired(Q, "nope", broker.time() + 1, "error")
        assert _states_of(broker, Q, "a") == {State.ACTIVE}
        assert _states_of(broker, Q, "b") == {State.QUEUED}

    def test_recover_expired_trims_records(self, broker: Broker) -> None:
        """recover_expired honours max_stored_executions like finish."""
        _fail_n_times(broker, "a", 2)
        broker.pop(Q, 1, "w1", FAR)
        assert broker.recover_expired(
            Q, "a", broker.time() + 1, "error", execution=_execution(3), max_stored_executions=1
        )
        task = broker.get_task(Q, State.ERROR, "a", load_executions=10)
        assert task.executions == [_execution(3)]
        assert task.executions_count == 3

    def test_older_than_is_exclusive(self, broker: Broker) -> None:
        """A heartbeat exactly at ``older_than`` is not expired: expired_tasks
        does not list it, recover_expired and drop_expired_missing leave it;
        one just after the heartbeat makes it expired."""
        task = _activate(broker, "a")
        just_after = math.nextafter(task.ts, math.inf)
        assert broker.expired_tasks(task.ts, 10) == []
        assert not broker.recover_expired(Q, "a", task.ts, "requeue")
        assert not broker.drop_expired_missing(Q, "a", task.ts)
        assert _states_of(broker, Q, "a") == {State.ACTIVE}
        assert broker.expired_tasks(just_after, 10) == [(Q, "a")]
        assert broker.expired_tasks(just_after, 0) == []
        assert broker.recover_expired(Q, "a", just_after, "requeue")
        assert _states_of(broker, Q, "a") == {State.QUEUED}

    def test_recover_expired_done_deletes_the_task(self, broker: Broker) -> None:
        """recover_expired with done removes a lost run and its data, like a
        finish with done."""
        _fail_n_times(broker, "a", 1)
        broker.pop(Q, 1, "w1", FAR)
        assert broker.recover_expired(Q, "a", broker.time() + 1, "done")
        assert _states_of(broker, Q, "a") == set()
        with pytest.raises(TaskNotFound):
            broker.executions_count(Q, "a")

    def test_recover_expired_requeue_goes_behind_queued_tasks(self, broker: Broker) -> None:
        """A lost run requeued by recovery is queued at now, behind the tasks
        of its priority already queued, and is owned by nobody until popped
        again."""
        _activate(broker, "a", worker="dead")
        broker.enqueue(_req("b"))
        time.sleep(0.002)
        assert broker.recover_expired(Q, "a", broker.time() + 1, "requeue")
        assert broker.heartbeat(Q, ["a"], "dead") == []
        assert _ids(broker.pop(Q, 2, "w1", FAR)) == ["b", "a"]
        assert broker.heartbeat(Q, ["a", "b"], "w1") == ["a", "b"]
