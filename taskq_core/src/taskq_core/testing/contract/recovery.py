"""Runs whose worker was lost: ``expired_tasks`` and ``recover_expired``."""

from __future__ import annotations

import time

from taskq_core.broker import Broker
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
