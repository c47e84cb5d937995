"""Popping: ``pop`` in priority and FIFO order (kept through every move),
ownership, unique twins that are already running or in ``error``,
concurrent workers, and calls on many tasks at once."""

from __future__ import annotations

import threading
import time

from taskq_core.broker import Broker, FinishRequest
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
    _fail_n_times,
    _ids,
    _make_due,
    _payload,
    _req,
    _states_of,
)

__all__ = ["PopContract"]


class PopContract(ContractBase):
    """Tests of ``pop``."""

    # -- pop -------------------------------------------------------------------
    def test_pop_moves_to_active_owned_and_stamped(self, broker: Broker) -> None:
        """pop moves a queued task to active with score now and returns its data."""
        broker.enqueue(_req("a", priority=4))
        before = broker.time()
        popped = broker.pop(Q, 5, "w1", FAR)
        after = broker.time()
        assert len(popped) == 1
        task = popped[0]
        assert (task.id, task.queue, task.state) == ("a", Q, State.ACTIVE)
        assert task.payload == _payload("a")
        assert task.priority == 4
        assert task.executions_count == 0
        assert _between(task.ts, before, after)
        assert _states_of(broker, Q, "a") == {State.ACTIVE}
        assert broker.get_task(Q, State.ACTIVE, "a").ts == task.ts
        assert broker.heartbeat(Q, ["a"], "w1") == ["a"]
        assert broker.heartbeat(Q, ["a"], "w2") == []

    def test_pop_respects_limit(self, broker: Broker) -> None:
        """pop returns at most ``limit`` tasks and leaves the rest queued."""
        broker.enqueue_many([_req(f"t{i}") for i in range(5)])
        assert len(broker.pop(Q, 2, "w1", FAR)) == 2
        assert broker.queue_sizes(Q)[State.QUEUED] == 3
        assert broker.pop(Q, 0, "w1", FAR) == []
        assert len(broker.pop(Q, 10, "w1", FAR)) == 3
        assert broker.pop(Q, 10, "w1", FAR) == []

    def test_pop_highest_priority_first(self, broker: Broker) -> None:
        """Higher priority pops first, whatever the enqueue order."""
        for task_id, priority in (("low", 0), ("high", 5), ("mid", 2), ("neg", -1)):
            broker.enqueue(_req(task_id, priority=priority))
        assert _ids(broker.pop(Q, 10, "w1", FAR)) == ["high", "mid", "low", "neg"]

    def test_pop_fifo_within_priority(self, broker: Broker) -> None:
        """Within one priority the task queued first pops first."""
        order = ["c", "a", "d", "b"]
        for task_id in order:
            broker.enqueue(_req(task_id))
            time.sleep(0.002)
        assert _ids(broker.pop(Q, 2, "w1", FAR)) == order[:2]
        assert _ids(broker.pop(Q, 2, "w1", FAR)) == order[2:]

    def test_pop_priority_then_fifo(self, broker: Broker) -> None:
        """Priority wins over age; age orders tasks of equal priority."""
        for task_id, priority in (("a0", 0), ("b1", 1), ("c0", 0), ("d1", 1)):
            broker.enqueue(_req(task_id, priority=priority))
            time.sleep(0.002)
        assert _ids(broker.pop(Q, 4, "w1", FAR)) == ["b1", "d1", "a0", "c0"]

    def test_pop_keeps_times_and_priority_of_the_task(self, broker: Broker) -> None:
        """A popped task (and its active copy) still has the scheduled_at and
        time_last_queued it was enqueued with, and its priority."""
        when = broker.time() + FAR
        broker.enqueue(_req("a", when=when, priority=-2))
        enqueued = broker.get_task(Q, State.SCHEDULED, "a")
        _make_due(broker, "a")
        moved = broker.get_task(Q, State.SCHEDULED, "a")
        assert broker.move_due(Q, 10) == 1
        (popped,) = broker.pop(Q, 1, "w1", FAR)
        for task in (popped, broker.get_task(Q, State.ACTIVE, "a")):
            assert task.scheduled_at == moved.scheduled_at
            assert task.time_last_queued == enqueued.time_last_queued
            assert task.priority == -2

    def test_requeued_task_goes_behind_tasks_queued_before(self, broker: Broker) -> None:
        """FIFO within a priority holds across a requeue and a retry from
        error: the task is queued at now, behind the tasks of its priority
        queued before, still ahead of lower priorities."""
        broker.enqueue(_req("a", priority=1))
        assert _ids(broker.pop(Q, 1, "w1", FAR)) == ["a"]
        broker.enqueue(_req("b", priority=1))
        broker.enqueue(_req("low"))
        time.sleep(0.002)
        assert broker.finish(Q, "a", "w1", "requeue")
        assert _ids(broker.pop(Q, 3, "w1", FAR)) == ["b", "a", "low"]
        assert broker.finish(Q, "b", "w1", "error", execution=_execution(1))
        broker.enqueue(_req("c", priority=1))
        time.sleep(0.002)
        broker.retry_from_error(Q, "b")
        assert _ids(broker.pop(Q, 3, "w1", FAR)) == ["c", "b"]

    def test_priority_survives_every_move(self, broker: Broker) -> None:
        """A task keeps its priority through requeue, retry (and move_due),
        error and retry_from_error, recovery, and a deferral behind its
        running twin: each time it is queued again it pops ahead of a task of
        lower priority queued before it."""

        def move(number: int) -> None:
            if number == 0:
                assert broker.finish(Q, "hi", "w1", "requeue")
            elif number == 1:
                assert broker.finish(Q, "hi", "w1", "retry", when=broker.time() - 1)
                assert broker.move_due(Q, 10) == 1
            elif number == 2:
                assert broker.finish(Q, "hi", "w1", "error")
                broker.retry_from_error(Q, "hi")
            else:
                assert broker.recover_expired(Q, "hi", broker.time() + 1, "requeue")

        broker.enqueue(_req("hi", priority=5, unique=True))
        for number in range(4):
            assert _ids(broker.pop(Q, 1, "w1", FAR)) == ["hi"], number
            broker.enqueue(_req(f"low{number}"))
            time.sleep(0.002)
            move(number)
            popped = broker.pop(Q, 1, "w1", FAR)
            assert _ids(popped) == ["hi"], number
            assert popped[0].priority == 5, number
            assert broker.finish(Q, "hi", "w1", "requeue")
        assert _ids(broker.pop(Q, 1, "w1", FAR)) == ["hi"]
        broker.enqueue(_req("hi", priority=5, unique=True))
        assert _ids(broker.pop(Q, 1, "w2", FAR)) == ["low0"]  # hi deferred
        assert broker.finish(Q, "hi", "w1", "done")
        _make_due(broker, "hi")
        assert broker.move_due(Q, 10) == 1
        popped = broker.pop(Q, 1, "w1", FAR)
        assert _ids(popped) == ["hi"]
        assert popped[0].priority == 5

    def test_pop_ignores_scheduled_and_other_queues(self, broker: Broker) -> None:
        """pop takes only queued tasks of the given queue."""
        broker.enqueue(_req("later", when=broker.time() + FAR))
        broker.enqueue(_req("elsewhere", OTHER))
        assert broker.pop(Q, 10, "w1", FAR) == []
        assert _states_of(broker, Q, "later") == {State.SCHEDULED}
        assert _states_of(broker, OTHER, "elsewhere") == {State.QUEUED}

    def test_pop_defers_unique_task_whose_twin_is_active(self, broker: Broker) -> None:
        """A pending copy popped while its twin is active is not returned: it goes
        to scheduled at now + defer_seconds and the twin keeps running."""
        _activate(broker, "u", unique=True)
        broker.enqueue(_req("u", unique=True, payload=b"next"))
        before = broker.time()
        assert broker.pop(Q, 5, "w2", 30.0) == []
        after = broker.time()
        assert _states_of(broker, Q, "u") == {State.ACTIVE, State.SCHEDULED}
        deferred = broker.get_task(Q, State.SCHEDULED, "u")
        assert _between(deferred.ts, before + 30.0, after + 30.0)
        assert deferred.payload == b"next"
        assert broker.heartbeat(Q, ["u"], "w1") == ["u"]

    def test_pop_keeps_error_copy_and_records(self, broker: Broker) -> None:
        """Popping the pending copy of a unique task that is in error leaves the
        error copy where it is, with its failure time and records (API
        decision 16): the task is then active and in error."""
        _fail(broker, "u", unique=True)
        failed = broker.get_task(Q, State.ERROR, "u", load_executions=5)
        broker.enqueue(_req("u", unique=True))
        popped = broker.pop(Q, 1, "w2", FAR)
        assert _ids(popped) == ["u"]
        assert popped[0].executions_count == 1
        assert _states_of(broker, Q, "u") == {State.ACTIVE, State.ERROR}
        kept = broker.get_task(Q, State.ERROR, "u", load_executions=5)
        assert kept.ts == failed.ts
        assert kept.executions == [_execution(1)]
        assert broker.executions_count(Q, "u") == 1

    def test_later_success_keeps_error_copy_and_records(self, broker: Broker) -> None:
        """A later run of a task in error that succeeds leaves the error copy and
        every record (API decision 16), with or without a pending twin."""
        _fail(broker, "u", unique=True)
        broker.enqueue(_req("u", unique=True))
        assert _ids(broker.pop(Q, 1, "w2", FAR)) == ["u"]
        twin_at = broker.time() + FAR
        broker.enqueue(_req("u", unique=True, when=twin_at))
        assert broker.finish(Q, "u", "w2", "done")
        assert _states_of(broker, Q, "u") == {State.ERROR, State.SCHEDULED}
        broker.update_scheduled_time(Q, "u", broker.time() - 10)
        assert broker.move_due(Q, 10) == 1
        assert _ids(broker.pop(Q, 1, "w2", FAR)) == ["u"]
        assert broker.finish(Q, "u", "w2", "done")
        assert _states_of(broker, Q, "u") == {State.ERROR}
        task = broker.get_task(Q, State.ERROR, "u", load_executions=5)
        assert task.executions == [_execution(1)]
        assert task.executions_count == 1

    def test_later_failure_stays_in_error_adding_records(self, broker: Broker) -> None:
        """A later run of a task in error that fails for good leaves one error
        copy, stamped with the new failure time, with both records; one that
        is retried leaves the error copy as it was, next to the retry."""
        _fail(broker, "u", unique=True)
        first = broker.get_task(Q, State.ERROR, "u")
        broker.enqueue(_req("u", unique=True))
        assert _ids(broker.pop(Q, 1, "w2", FAR)) == ["u"]
        retry_at = broker.time() + FAR
        assert broker.finish(Q, "u", "w2", "retry", when=retry_at, execution=_execution(2))
        assert _states_of(broker, Q, "u") == {State.ERROR, State.SCHEDULED}
        assert broker.get_task(Q, State.ERROR, "u").ts == first.ts
        broker.update_scheduled_time(Q, "u", broker.time() - 10)
        assert broker.move_due(Q, 10) == 1
        time.sleep(0.002)
        assert _ids(broker.pop(Q, 1, "w2", FAR)) == ["u"]
        before = broker.time()
        assert broker.finish(Q, "u", "w2", "error", execution=_execution(3))
        assert _states_of(broker, Q, "u") == {State.ERROR}
        assert broker.list_tasks(Q, State.ERROR)[0] == 1
        task = broker.get_task(Q, State.ERROR, "u", load_executions=5)
        assert _between(task.ts, before, broker.time())
        assert task.ts > first.ts
        assert task.executions == [_execution(1), _execution(2), _execution(3)]
        assert task.executions_count == 3

    def test_pop_returns_executions_count(self, broker: Broker) -> None:
        """A task that failed before pops with its count of failed executions."""
        _fail_n_times(broker, "a", 2)
        popped = broker.pop(Q, 1, "w1", FAR)
        assert popped[0].executions_count == 2

    def test_concurrent_pops_never_share_a_task(self, broker: Broker) -> None:
        """Threads popping the same queue get disjoint tasks and all of them."""
        total = 120
        broker.enqueue_many([_req(f"t{i}") for i in range(total)])
        seen: list[str] = []
        guard = threading.Lock()

        def consumer(worker: str) -> None:
            while True:
                batch = broker.pop(Q, 3, worker, FAR)
                if not batch:
                    return
                with guard:
                    seen.extend(_ids(batch))

        threads = [threading.Thread(target=consumer, args=(f"w{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(seen) == total
        assert set(seen) == {f"t{i}" for i in range(total)}
        assert broker.queue_sizes(Q)[State.ACTIVE] == total

    def test_big_batches_in_one_call(self, broker: Broker) -> None:
        """Calls on many tasks at once (beyond any batch a broker may split
        them into) handle every task once, in order: enqueue_many, pop,
        heartbeat, finish_many, and purge_errors with a limit."""
        total = 2500
        names = [f"t{i:05d}" for i in range(total)]
        broker.enqueue_many([_req(name, payload=b"x") for name in names])
        popped = broker.pop(Q, 10 * total, "w1", FAR)
        assert _ids(popped) == names
        assert broker.heartbeat(Q, names, "w1") == names
        ended = broker.finish_many(Q, "w1", [FinishRequest(name, "error") for name in names])
        assert ended == [True] * total
        assert broker.queue_sizes(Q)[State.ERROR] == total
        assert broker.purge_errors(Q, None, 1500) == 1500
        assert broker.queue_sizes(Q)[State.ERROR] == total - 1500
        assert broker.purge_errors(Q, None, None) == total - 1500
        assert broker.queue_sizes(Q) == dict.fromkeys(STATES, 0)
