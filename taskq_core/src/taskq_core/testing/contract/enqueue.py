"""Enqueueing: ``enqueue`` now, in the past or in the future, unique tasks and
their pending copies, ``max_queue_size``, ``enqueue_many`` and
``enqueue_on_connection`` (refused for a connection the broker cannot use)."""

from __future__ import annotations

import threading

import pytest

from taskq_core.broker import Broker
from taskq_core.exceptions import QueueFullException, TaskNotFound
from taskq_core.states import State
from taskq_core.testing.contract._base import (
    FAR,
    OTHER,
    ContractBase,
    Q,
    _activate,
    _between,
    _fail,
    _ids,
    _payload,
    _req,
    _states_of,
)

__all__ = ["EnqueueContract"]


class EnqueueContract(ContractBase):
    """Tests of ``enqueue``, ``max_queue_size``, ``enqueue_many`` and
    ``enqueue_on_connection``."""

    # -- enqueue ---------------------------------------------------------------
    def test_enqueue_now_is_queued_at_broker_now(self, broker: Broker) -> None:
        """A task without ``when`` is queued with score, scheduled_at and
        time_last_queued all equal to the broker's now."""
        before = broker.time()
        result = broker.enqueue(_req("a", priority=3))
        after = broker.time()
        assert result.id == "a"
        assert result.state is State.QUEUED
        assert result.created
        assert not result.refused
        assert _between(result.ts, before, after)
        task = broker.get_task(Q, State.QUEUED, "a")
        assert task.ts == result.ts
        assert task.payload == _payload("a")
        assert task.priority == 3
        assert task.scheduled_at == result.ts
        assert task.time_last_queued == result.ts
        assert task.executions_count == 0
        assert task.executions == []
        assert not task.missing
        assert Q in broker.queues(State.QUEUED)

    def test_enqueue_past_when_is_queued_now(self, broker: Broker) -> None:
        """A ``when`` not after the broker's now queues the task at now (not at
        ``when``), and scheduled_at is that now: the time it was actually
        queued, not the requested past time (API decision 14), by enqueue and
        enqueue_many alike."""
        before = broker.time()
        result = broker.enqueue(_req("a", when=before - 60))
        (many,) = broker.enqueue_many([_req("b", when=before - 3600)])
        at_now = broker.enqueue(_req("c", when=broker.time()))
        after = broker.time()
        for task_id, queued in (("a", result), ("b", many), ("c", at_now)):
            assert queued.state is State.QUEUED, task_id
            assert _between(queued.ts, before, after), task_id
            task = broker.get_task(Q, State.QUEUED, task_id)
            assert task.ts == queued.ts, task_id
            assert task.scheduled_at == queued.ts, task_id
            assert _between(task.time_last_queued, before, after), task_id

    def test_enqueue_future_is_scheduled_at_when(self, broker: Broker) -> None:
        """A future ``when`` schedules the task with exactly that score."""
        before = broker.time()
        when = before + FAR + 0.123456789
        result = broker.enqueue(_req("a", when=when))
        after = broker.time()
        assert result.state is State.SCHEDULED
        assert result.ts == when
        task = broker.get_task(Q, State.SCHEDULED, "a")
        assert task.ts == when
        assert task.scheduled_at == when
        assert _between(task.time_last_queued, before, after)
        assert broker.queue_sizes(Q)[State.QUEUED] == 0
        assert Q in broker.queues(State.SCHEDULED)

    def test_enqueue_keeps_payload_bytes_exactly(self, broker: Broker) -> None:
        """The payload is opaque: arbitrary bytes come back identical."""
        payloads = {
            "empty": b"",
            "binary": bytes(range(256)),
            "text-like": b'{"args": [], "kwargs": {}, "f": 1795437461.2412539}',
        }
        for task_id, payload in payloads.items():
            broker.enqueue(_req(task_id, payload=payload))
        for task_id, payload in payloads.items():
            assert broker.get_task(Q, State.QUEUED, task_id).payload == payload

    def test_enqueue_unique_existing_queued_keeps_place_takes_payload(self, broker: Broker) -> None:
        """Enqueueing a unique task that is already queued keeps its place (score,
        priority, order among the others, scheduled_at) and stores the new
        payload (API decision 15); the result says created=False with the
        existing state and score."""
        first = broker.enqueue(_req("u", unique=True, payload=b"first"))
        broker.enqueue(_req("v"))
        second = broker.enqueue(_req("u", unique=True, payload=b"second", priority=9))
        assert not second.created
        assert second.state is State.QUEUED
        assert second.ts == first.ts
        task = broker.get_task(Q, State.QUEUED, "u")
        assert task.payload == b"second"
        assert task.priority == 0
        assert task.ts == first.ts
        assert task.scheduled_at == first.ts
        assert task.time_last_queued == first.ts
        assert broker.queue_sizes(Q)[State.QUEUED] == 2
        assert _ids(broker.pop(Q, 2, "w1", FAR)) == ["u", "v"]

    def test_enqueue_unique_existing_scheduled_keeps_due_time(self, broker: Broker) -> None:
        """A unique task that is scheduled stays at its due time when enqueued
        again, whether the new ``when`` is earlier, later or now; it takes the
        latest payload, and scheduled_at still agrees with the due time (API
        decision 15)."""
        when = broker.time() + FAR
        broker.enqueue(_req("u", unique=True, when=when, payload=b"first"))
        for number, new_when in enumerate((when - 500, when + 500, None)):
            payload = f"call {number}".encode()
            result = broker.enqueue(_req("u", unique=True, when=new_when, payload=payload))
            assert not result.created
            assert result.state is State.SCHEDULED
            assert result.ts == when
            task = broker.get_task(Q, State.SCHEDULED, "u")
            assert task.ts == when
            assert task.scheduled_at == when
            assert task.payload == payload
        assert _states_of(broker, Q, "u") == {State.SCHEDULED}

    def test_enqueue_unique_pending_with_error_copy_takes_payload(self, broker: Broker) -> None:
        """Re-enqueueing a unique task that is pending next to its error copy
        stores the new payload (shared by both copies) and keeps the records
        and both copies' times."""
        _fail(broker, "u", unique=True)
        failed = broker.get_task(Q, State.ERROR, "u")
        when = broker.time() + FAR
        broker.enqueue(_req("u", unique=True, when=when, payload=b"second"))
        result = broker.enqueue(_req("u", unique=True, payload=b"third"))
        assert not result.created
        assert result.ts == when
        assert broker.get_task(Q, State.SCHEDULED, "u").payload == b"third"
        assert broker.get_task(Q, State.ERROR, "u").ts == failed.ts
        assert broker.executions_count(Q, "u") == 1

    def test_enqueue_existing_id_not_unique_changes_nothing(self, broker: Broker) -> None:
        """A non-unique request with the id of a pending task changes nothing either."""
        broker.enqueue(_req("a", payload=b"first"))
        result = broker.enqueue(_req("a", payload=b"second"))
        assert not result.created
        assert result.state is State.QUEUED
        assert broker.get_task(Q, State.QUEUED, "a").payload == b"first"
        assert broker.queue_sizes(Q)[State.QUEUED] == 1

    def test_enqueue_unique_while_active_adds_pending_twin(self, broker: Broker) -> None:
        """A unique task enqueued while its twin runs gets a pending copy with the
        new payload; the running copy stays active."""
        _activate(broker, "u", unique=True, payload=b"run-1")
        result = broker.enqueue(_req("u", unique=True, payload=b"run-2"))
        assert result.created
        assert result.state is State.QUEUED
        assert _states_of(broker, Q, "u") == {State.ACTIVE, State.QUEUED}
        assert broker.get_task(Q, State.QUEUED, "u").payload == b"run-2"
        assert broker.queue_sizes(Q) == {
            State.SCHEDULED: 0,
            State.QUEUED: 1,
            State.ACTIVE: 1,
            State.ERROR: 0,
        }

    def test_enqueue_unique_while_in_error_keeps_error_copy(self, broker: Broker) -> None:
        """A unique task enqueued while an older copy is in error is pending and
        still in error; its failure records are kept."""
        _fail(broker, "u", unique=True)
        result = broker.enqueue(_req("u", unique=True, when=broker.time() + FAR))
        assert result.created
        assert _states_of(broker, Q, "u") == {State.ERROR, State.SCHEDULED}
        assert broker.executions_count(Q, "u") == 1

    def test_queues_are_separate(self, broker: Broker) -> None:
        """The same id in two queues is two tasks; queue names are exact."""
        broker.enqueue(_req("a", Q, payload=b"q"))
        broker.enqueue(_req("a", OTHER, payload=b"other"))
        assert broker.get_task(Q, State.QUEUED, "a").payload == b"q"
        assert broker.get_task(OTHER, State.QUEUED, "a").payload == b"other"
        assert _ids(broker.pop(OTHER, 10, "w1", FAR)) == ["a"]
        assert broker.queue_sizes(Q)[State.QUEUED] == 1
        assert {Q, OTHER} <= broker.iter_queues([State.QUEUED, State.ACTIVE])

    # -- max_queue_size --------------------------------------------------------
    def test_max_queue_size_refuses_without_writing(self, broker: Broker) -> None:
        """A full queue raises QueueFullException("Queue size: N") and stores nothing."""
        broker.enqueue(_req("a"))
        broker.enqueue(_req("b", when=broker.time() + FAR))
        with pytest.raises(QueueFullException, match=r"^Queue size: 2$"):
            broker.enqueue(_req("c", max_queue_size=2))
        assert _states_of(broker, Q, "c") == set()
        with pytest.raises(TaskNotFound):
            broker.executions_count(Q, "c")
        assert broker.enqueue(_req("c", max_queue_size=3)).created

    def test_max_queue_size_counts_active_not_error(self, broker: Broker) -> None:
        """The size checked is queued + scheduled + active; error is not counted."""
        _activate(broker, "running")
        _fail(broker, "failed")
        with pytest.raises(QueueFullException, match=r"^Queue size: 1$"):
            broker.enqueue(_req("x", max_queue_size=1))
        assert broker.enqueue(_req("x", max_queue_size=2)).created

    def test_max_queue_size_checked_before_uniqueness(self, broker: Broker) -> None:
        """As in TaskTiger, a full queue refuses even a unique task that is
        already pending (and leaves that copy alone)."""
        broker.enqueue(_req("u", unique=True, payload=b"kept"))
        with pytest.raises(QueueFullException):
            broker.enqueue(_req("u", unique=True, max_queue_size=1, payload=b"new"))
        assert broker.get_task(Q, State.QUEUED, "u").payload == b"kept"

    def test_max_queue_size_is_atomic_under_concurrency(self, broker: Broker) -> None:
        """Many threads enqueueing at once never push a queue past its maximum."""
        maximum, threads, per_thread = 15, 6, 8
        created: list[str] = []
        refused: list[str] = []
        errors: list[BaseException] = []
        guard = threading.Lock()
        barrier = threading.Barrier(threads)

        def producer(number: int) -> None:
            try:
                barrier.wait()
                for i in range(per_thread):
                    task_id = f"t{number}-{i}"
                    try:
                        broker.enqueue(_req(task_id, max_queue_size=maximum))
                    except QueueFullException:
                        with guard:
                            refused.append(task_id)
                    else:
                        with guard:
                            created.append(task_id)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        workers = [threading.Thread(target=producer, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        assert errors == []
        assert len(created) == maximum
        assert len(refused) == threads * per_thread - maximum
        assert broker.queue_sizes(Q)[State.QUEUED] == maximum

    # -- enqueue_many ----------------------------------------------------------
    def test_enqueue_many_stores_all_in_order(self, broker: Broker) -> None:
        """enqueue_many returns one result per request, in order, each as enqueue would."""
        future = broker.time() + FAR
        results = broker.enqueue_many(
            [_req("a"), _req("b", when=future), _req("c", OTHER, priority=2)]
        )
        assert [r.id for r in results] == ["a", "b", "c"]
        assert [r.state for r in results] == [State.QUEUED, State.SCHEDULED, State.QUEUED]
        assert all(r.created and not r.refused for r in results)
        assert results[1].ts == future
        assert broker.get_task(OTHER, State.QUEUED, "c").priority == 2

    def test_enqueue_many_unique_duplicate_in_batch(self, broker: Broker) -> None:
        """A unique id repeated in one batch is stored once, with the payload
        of the last request; the repeat reports created=False."""
        results = broker.enqueue_many(
            [_req("u", unique=True, payload=b"1"), _req("u", unique=True, payload=b"2")]
        )
        assert [r.created for r in results] == [True, False]
        assert results[1].ts == results[0].ts
        assert broker.get_task(Q, State.QUEUED, "u").payload == b"2"
        assert broker.queue_sizes(Q)[State.QUEUED] == 1

    def test_enqueue_many_marks_refused_and_stores_the_rest(self, broker: Broker) -> None:
        """A request refused by max_queue_size gets refused=True (no exception);
        the other requests are stored."""
        results = broker.enqueue_many(
            [
                _req("a", max_queue_size=2),
                _req("b", max_queue_size=2),
                _req("c", max_queue_size=2),
                _req("d"),
            ]
        )
        assert [r.refused for r in results] == [False, False, True, False]
        assert results[2].state is None
        assert not results[2].created
        assert _states_of(broker, Q, "c") == set()
        assert broker.queue_sizes(Q)[State.QUEUED] == 3

    # -- enqueue_on_connection -------------------------------------------------
    def test_enqueue_on_a_connection_it_cannot_use_is_refused(self, broker: Broker) -> None:
        """enqueue_on_connection with something that is not a connection the
        broker can write on raises TypeError or ValueError naming the broker
        (brokers that cannot enqueue in the caller's transaction refuse every
        connection), and writes nothing."""
        not_a_connection = object()
        with pytest.raises((TypeError, ValueError)) as raised:
            broker.enqueue_on_connection(_req("a"), not_a_connection)
        assert (broker.name or type(broker).__name__) in str(raised.value)
        assert _states_of(broker, Q, "a") == set()
        with pytest.raises(TaskNotFound):
            broker.executions_count(Q, "a")
