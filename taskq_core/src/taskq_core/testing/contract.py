"""The broker contract, as a reusable pytest suite.

Every broker (taskq's own and third-party ones) runs these tests against
itself by subclassing :class:`BrokerContractTests` and providing a ``broker``
fixture that returns a fresh, empty broker::

    import pytest
    from taskq_core.testing.contract import BrokerContractTests

    class TestMyBrokerContract(BrokerContractTests):
        @pytest.fixture
        def broker(self):
            broker = MyBroker(...)
            yield broker
            broker.close()

        # optional: lets the suite simulate task data lost by an outside writer
        @pytest.fixture
        def drop_task_data(self):
            return lambda broker, queue, task_id: broker.drop_data(queue, task_id)

Without ``drop_task_data`` the "missing data" tests are skipped.

Brokers use their own clock, so the tests only use times relative to
:meth:`~taskq_core.broker.Broker.time` ("now + 1000" is the future, "now - 10"
the past). They sleep only where a TTL must run out, for well under a second.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar, Unpack

import pytest

from taskq_core.broker import (
    Broker,
    EnqueueRequest,
    Execution,
    FinishRequest,
    StoredTask,
)
from taskq_core.exceptions import QueueFullException, TaskNotFound
from taskq_core.states import OUTCOMES, STATES, State, Transition

__all__ = ["BrokerContractTests", "DropTaskData"]

#: ``(broker, queue, task_id)``: delete a task's data but keep its state entries.
DropTaskData = Callable[[Broker, str, str], None]

Q = "contract"
OTHER = "contract.other"
FAR = 1000.0
#: tolerance for comparing a broker-stamped time with a bracket read around it
EPS = 1e-3
#: a TTL short enough to wait out in a test, long enough not to lapse by itself
TTL = 0.3


def _payload(task_id: str) -> bytes:
    """Opaque bytes that are not valid UTF-8, to catch text round trips."""
    return b"\x00\xff\x80" + task_id.encode() + b" [] {} 1.2345678901234567"


def _req(task_id: str, queue: str = Q, **options: Any) -> EnqueueRequest:
    payload = options.pop("payload", None)
    return EnqueueRequest(
        id=task_id,
        queue=queue,
        payload=_payload(task_id) if payload is None else payload,
        **options,
    )


def _execution(number: int, **extra: Unpack[Execution]) -> Execution:
    record: Execution = {
        "time_started": 1_700_000_000.5 + number,
        "time_failed": 1_700_000_001.25 + number,
        "exception_name": "builtins:ValueError",
        "success": False,
        "host": "contract-host",
        "traceback": f"Traceback #{number}",
    }
    record.update(extra)
    return record


def _between(value: float | None, low: float, high: float) -> bool:
    return value is not None and low - EPS <= value <= high + EPS


def _states_of(broker: Broker, queue: str, task_id: str) -> set[State]:
    """Every state whose index holds ``task_id`` (data missing or not)."""
    found: set[State] = set()
    for state in STATES:
        _total, tasks = broker.list_tasks(queue, state, limit=1_000_000)
        if any(task.id == task_id for task in tasks):
            found.add(state)
    return found


def _ids(tasks: list[StoredTask]) -> list[str]:
    return [task.id for task in tasks]


def _activate(
    broker: Broker, task_id: str, queue: str = Q, worker: str = "w1", **options: Any
) -> StoredTask:
    """Enqueue ``task_id`` now and pop it (the queue must hold nothing else queued)."""
    broker.enqueue(_req(task_id, queue, **options))
    popped = broker.pop(queue, 1, worker, FAR)
    assert _ids(popped) == [task_id]
    return popped[0]


def _fail(broker: Broker, task_id: str, queue: str = Q, worker: str = "w1", **options: Any) -> None:
    """Enqueue, pop and fail ``task_id`` into ``error`` with one execution record."""
    _activate(broker, task_id, queue, worker, **options)
    assert broker.finish(queue, task_id, worker, "error", execution=_execution(1))


def _fail_n_times(
    broker: Broker, task_id: str, times: int, max_stored: int | None = None, queue: str = Q
) -> None:
    """Run ``task_id`` ``times`` times, each run failing and requeueing it."""
    broker.enqueue(_req(task_id, queue))
    for number in range(1, times + 1):
        assert _ids(broker.pop(queue, 1, "w1", FAR)) == [task_id]
        assert broker.finish(
            queue,
            task_id,
            "w1",
            "requeue",
            execution=_execution(number),
            max_stored_executions=max_stored,
        )


def _make_due(broker: Broker, task_id: str, queue: str = Q, ago: float = 10.0) -> float:
    """Make a scheduled task due now (without sleeping); returns its due time."""
    due = broker.time() - ago
    broker.update_scheduled_time(queue, task_id, due)
    return due


def _drain_activity(broker: Broker) -> None:
    """Consume notifications sent so far (and subscribe, for brokers that must)."""
    broker.wait_for_activity(0.05)
    broker.wait_for_activity(0.01)


def _announced(broker: Broker, queue: str, within: float = 3.0) -> bool:
    """Whether ``queue`` is announced by :meth:`Broker.wait_for_activity` soon."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if queue in broker.wait_for_activity(0.2):
            return True
    return False


class BrokerContractTests:
    """The behaviour every :class:`~taskq_core.broker.Broker` must have.

    Subclass it in a test module and provide the ``broker`` fixture (a fresh,
    empty broker per test) and optionally ``drop_task_data``.
    """

    #: the tests that exercise each transition of :data:`taskq_core.states.TRANSITIONS`
    TRANSITION_TESTS: ClassVar[dict[Transition, tuple[str, ...]]] = {
        Transition.ENQUEUE: (
            "test_enqueue_now_is_queued_at_broker_now",
            "test_enqueue_future_is_scheduled_at_when",
        ),
        Transition.POP: ("test_pop_moves_to_active_owned_and_stamped",),
        Transition.DONE: ("test_finish_done_deletes_task_and_records",),
        Transition.RETRY_LATER: ("test_finish_retry_schedules_at_when_with_record",),
        Transition.FAIL: ("test_finish_error_moves_to_error_with_record",),
        Transition.LOCK_CONFLICT: (
            "test_finish_requeue_now_is_queued_without_counting",
            "test_finish_requeue_future_is_scheduled",
            "test_pop_defers_unique_task_whose_twin_is_active",
        ),
        Transition.REQUEUE_EXPIRED: (
            "test_recover_expired_requeue_records_and_queues",
            "test_recover_expired_retry_schedules",
        ),
        Transition.FAIL_EXPIRED: ("test_recover_expired_error_moves_to_error",),
        Transition.SCHEDULED_DUE: ("test_move_due_moves_only_due_tasks",),
        Transition.CANCEL: ("test_cancel_removes_scheduled_task_and_data",),
        Transition.DELETE: ("test_delete_removes_errored_task_and_data",),
        Transition.RETRY_FROM_ERROR: ("test_retry_from_error_queues_now_keeping_records",),
        Transition.UPDATE_SCHEDULED_TIME: ("test_update_scheduled_time_changes_only_time",),
    }

    # -- fixtures --------------------------------------------------------------
    @pytest.fixture
    def broker(self) -> Broker:
        """A fresh, empty broker; subclasses must override this fixture."""
        raise NotImplementedError("subclasses of BrokerContractTests provide a `broker` fixture")

    @pytest.fixture
    def drop_task_data(self) -> DropTaskData | None:
        """Override to return a ``(broker, queue, task_id)`` callable that deletes
        a task's data but keeps its state entries; ``None`` skips those tests."""
        return None

    @staticmethod
    def _need_drop(drop_task_data: DropTaskData | None) -> DropTaskData:
        if drop_task_data is None:
            pytest.skip("the broker's test module provides no drop_task_data fixture")
        return drop_task_data

    # -- the table -------------------------------------------------------------
    def test_every_transition_has_contract_tests(self) -> None:
        """Every transition of the state table is exercised by named tests here."""
        assert set(self.TRANSITION_TESTS) == set(Transition)
        for names in self.TRANSITION_TESTS.values():
            assert names
            for name in names:
                assert callable(getattr(self, name, None)), name

    # -- clock and empty broker ------------------------------------------------
    def test_time_is_float_epoch_and_does_not_go_back(self, broker: Broker) -> None:
        """time() is a float number of epoch seconds that does not decrease."""
        first = broker.time()
        second = broker.time()
        assert isinstance(first, float)
        assert first > 1_000_000_000
        assert second >= first

    def test_empty_broker_has_no_tasks(self, broker: Broker) -> None:
        """A fresh broker reports zero tasks in all four states and no queues."""
        assert broker.queue_sizes(Q) == dict.fromkeys(STATES, 0)
        for state in STATES:
            assert Q not in broker.queues(state)
            assert broker.list_tasks(Q, state) == (0, [])
        assert broker.expired_tasks(broker.time() + FAR, 100) == []
        assert broker.pop(Q, 10, "w1", FAR) == []
        assert broker.move_due(Q, 100) == 0

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

    # -- heartbeat -------------------------------------------------------------
    def test_heartbeat_refreshes_owned_tasks(self, broker: Broker) -> None:
        """heartbeat moves the active score of the worker's tasks to now and
        returns their ids."""
        broker.enqueue_many([_req("a"), _req("b")])
        popped = broker.pop(Q, 2, "w1", FAR)
        time.sleep(0.01)
        before = broker.time()
        assert sorted(broker.heartbeat(Q, ["a", "b"], "w1")) == ["a", "b"]
        after = broker.time()
        for task in popped:
            refreshed = broker.get_task(Q, State.ACTIVE, task.id)
            assert refreshed.ts > task.ts
            assert _between(refreshed.ts, before, after)

    def test_heartbeat_ignores_foreign_and_inactive_ids(self, broker: Broker) -> None:
        """heartbeat leaves alone tasks of another worker and ids not active."""
        mine = _activate(broker, "mine", worker="w1")
        theirs = _activate(broker, "theirs", worker="w2")
        broker.enqueue(_req("waiting"))
        time.sleep(0.01)
        assert broker.heartbeat(Q, ["mine", "theirs", "waiting", "nope"], "w1") == ["mine"]
        assert broker.get_task(Q, State.ACTIVE, "theirs").ts == theirs.ts
        assert broker.get_task(Q, State.ACTIVE, "mine").ts > mine.ts
        assert _states_of(broker, Q, "waiting") == {State.QUEUED}
        assert _states_of(broker, Q, "nope") == set()

    def test_heartbeat_after_recovery_does_not_resurrect(self, broker: Broker) -> None:
        """Once a task was recovered from an expired worker, that worker's
        heartbeat and finish do not touch it, even after another worker took it."""
        _activate(broker, "a", worker="w1")
        assert broker.recover_expired(Q, "a", broker.time() + 1, "requeue")
        assert broker.heartbeat(Q, ["a"], "w1") == []
        assert _states_of(broker, Q, "a") == {State.QUEUED}
        taken = broker.pop(Q, 1, "w2", FAR)
        assert _ids(taken) == ["a"]
        time.sleep(0.01)
        assert broker.heartbeat(Q, ["a"], "w1") == []
        assert broker.get_task(Q, State.ACTIVE, "a").ts == taken[0].ts
        assert not broker.finish(Q, "a", "w1", "done")
        assert broker.finish(Q, "a", "w2", "done")

    def test_heartbeat_after_failed_recovery_does_not_resurrect(self, broker: Broker) -> None:
        """A heartbeat after the task was failed by recovery leaves it in error."""
        _activate(broker, "a", worker="w1")
        assert broker.recover_expired(Q, "a", broker.time() + 1, "error")
        assert broker.heartbeat(Q, ["a"], "w1") == []
        assert _states_of(broker, Q, "a") == {State.ERROR}

    # -- finish ----------------------------------------------------------------
    def test_finish_done_deletes_task_and_records(self, broker: Broker) -> None:
        """A done task leaves active and its data and records are deleted."""
        _fail_n_times(broker, "a", 1)
        broker.pop(Q, 1, "w1", FAR)
        assert broker.finish(Q, "a", "w1", "done")
        assert _states_of(broker, Q, "a") == set()
        assert broker.queue_sizes(Q) == dict.fromkeys(STATES, 0)
        with pytest.raises(TaskNotFound):
            broker.executions_count(Q, "a")
        for state in STATES:
            with pytest.raises(TaskNotFound):
                broker.get_task(Q, state, "a")

    def test_finish_by_other_worker_changes_nothing(self, broker: Broker) -> None:
        """finish by a worker that does not own the task returns False and
        changes nothing, not even the records."""
        task = _activate(broker, "a", worker="w1")
        for outcome in OUTCOMES:
            assert not broker.finish(Q, "a", "w2", outcome, execution=_execution(1))
        assert _states_of(broker, Q, "a") == {State.ACTIVE}
        assert broker.get_task(Q, State.ACTIVE, "a").ts == task.ts
        assert broker.executions_count(Q, "a") == 0

    def test_finish_of_task_not_active_changes_nothing(self, broker: Broker) -> None:
        """finish of a task that is not active (or unknown) returns False."""
        _fail(broker, "failed")
        broker.enqueue(_req("queued"))
        broker.enqueue(_req("later", when=broker.time() + FAR))
        for task_id in ("queued", "later", "failed", "unknown"):
            assert not broker.finish(Q, task_id, "w1", "done")
        assert broker.queue_sizes(Q) == {
            State.SCHEDULED: 1,
            State.QUEUED: 1,
            State.ACTIVE: 0,
            State.ERROR: 1,
        }

    def test_finish_retry_schedules_at_when_with_record(self, broker: Broker) -> None:
        """retry moves the task to scheduled at ``when`` and appends its record."""
        _activate(broker, "a")
        when = broker.time() + FAR
        assert broker.finish(Q, "a", "w1", "retry", when=when, execution=_execution(1))
        task = broker.get_task(Q, State.SCHEDULED, "a", load_executions=5)
        assert task.ts == when
        assert task.executions_count == 1
        assert task.executions == [_execution(1)]
        assert task.payload == _payload("a")
        assert _states_of(broker, Q, "a") == {State.SCHEDULED}

    def test_finish_many_ends_each_run_like_finish(self, broker: Broker) -> None:
        """finish_many ends a group's runs, each as its own finish: done,
        retry and error outcomes land where finish would put them, and a task
        this worker does not own is refused alone."""
        for task_id in ("a", "b", "c"):
            broker.enqueue(_req(task_id))
        assert sorted(_ids(broker.pop(Q, 3, "w1", FAR))) == ["a", "b", "c"]
        broker.enqueue(_req("d"))
        assert _ids(broker.pop(Q, 1, "w2", FAR)) == ["d"]
        when = broker.time() + FAR
        results = broker.finish_many(
            Q,
            "w1",
            [
                FinishRequest("a", "done"),
                FinishRequest("b", "retry", when=when, execution=_execution(1)),
                FinishRequest("c", "error", execution=_execution(1), max_stored_executions=1),
                FinishRequest("d", "done"),
            ],
        )
        assert results == [True, True, True, False]
        assert _states_of(broker, Q, "a") == set()
        assert broker.get_task(Q, State.SCHEDULED, "b").ts == when
        assert broker.get_task(Q, State.ERROR, "c", load_executions=5).executions == [_execution(1)]
        assert _states_of(broker, Q, "d") == {State.ACTIVE}

    def test_finish_many_then_pop_ends_runs_then_pops_the_next(self, broker: Broker) -> None:
        """finish_many_then_pop ends the given runs, then pops up to ``limit`` of
        what is queued next, owned by the same worker; limit 0 pops nothing."""
        for task_id in ("a", "b", "c"):
            broker.enqueue(_req(task_id))
        assert _ids(broker.pop(Q, 1, "w1", FAR)) == ["a"]
        finished, popped = broker.finish_many_then_pop(
            Q, "w1", [FinishRequest("a", "done")], 5, FAR
        )
        assert finished == [True]
        assert _ids(popped) == ["b", "c"]
        assert _states_of(broker, Q, "a") == set()
        assert broker.heartbeat(Q, ["b", "c"], "w1") == ["b", "c"]
        finished, popped = broker.finish_many_then_pop(
            Q, "w1", [FinishRequest("b", "done")], 0, FAR
        )
        assert (finished, popped) == ([True], [])
        assert _states_of(broker, Q, "c") == {State.ACTIVE}

    def test_finish_retry_in_the_past_is_due(self, broker: Broker) -> None:
        """A retry time already past leaves the task scheduled but due: move_due
        queues it at once."""
        _activate(broker, "a")
        when = broker.time() - 5
        assert broker.finish(Q, "a", "w1", "retry", when=when, execution=_execution(1))
        assert broker.get_task(Q, State.SCHEDULED, "a").ts == when
        assert broker.move_due(Q, 10) == 1
        assert broker.get_task(Q, State.QUEUED, "a").ts == when

    def test_finish_error_moves_to_error_with_record(self, broker: Broker) -> None:
        """error moves the task to error with score now and appends its record."""
        _activate(broker, "a")
        before = broker.time()
        assert broker.finish(Q, "a", "w1", "error", execution=_execution(1, retry=False))
        after = broker.time()
        task = broker.get_task(Q, State.ERROR, "a", load_executions=1)
        assert _between(task.ts, before, after)
        assert task.executions == [_execution(1, retry=False)]
        assert task.executions_count == 1
        assert Q in broker.queues(State.ERROR)
        assert _states_of(broker, Q, "a") == {State.ERROR}

    def test_finish_requeue_now_is_queued_without_counting(self, broker: Broker) -> None:
        """requeue without ``when`` queues the task at now; without an execution
        record the count does not change."""
        _activate(broker, "a")
        _drain_activity(broker)
        before = broker.time()
        assert broker.finish(Q, "a", "w1", "requeue")
        after = broker.time()
        task = broker.get_task(Q, State.QUEUED, "a")
        assert _between(task.ts, before, after)
        assert task.executions_count == 0
        assert _announced(broker, Q)

    def test_finish_requeue_future_is_scheduled(self, broker: Broker) -> None:
        """requeue with a future ``when`` schedules the task at ``when``."""
        _activate(broker, "a")
        when = broker.time() + 42.5
        assert broker.finish(Q, "a", "w1", "requeue", when=when)
        assert broker.get_task(Q, State.SCHEDULED, "a").ts == when
        assert _states_of(broker, Q, "a") == {State.SCHEDULED}

    def test_executions_are_trimmed_but_counted(self, broker: Broker) -> None:
        """max_stored_executions keeps the newest records; the count goes on."""
        _fail_n_times(broker, "a", 5, max_stored=2)
        task = broker.get_task(Q, State.QUEUED, "a", load_executions=100)
        assert task.executions == [_execution(4), _execution(5)]
        assert task.executions_count == 5
        assert broker.executions_count(Q, "a") == 5

    def test_executions_unlimited_with_zero_or_none(self, broker: Broker) -> None:
        """max_stored_executions of 0 or None keeps every record."""
        _fail_n_times(broker, "zero", 4, max_stored=0)
        _fail_n_times(broker, "none", 4, max_stored=None, queue=OTHER)
        expected = [_execution(n) for n in range(1, 5)]
        assert broker.get_task(Q, State.QUEUED, "zero", load_executions=10).executions == expected
        assert (
            broker.get_task(OTHER, State.QUEUED, "none", load_executions=10).executions == expected
        )

    def test_load_executions_gives_newest_oldest_first(self, broker: Broker) -> None:
        """load_executions=n returns the newest n records, oldest first; 0 none."""
        _fail_n_times(broker, "a", 3)
        assert broker.get_task(Q, State.QUEUED, "a").executions == []
        assert broker.get_task(Q, State.QUEUED, "a", load_executions=2).executions == [
            _execution(2),
            _execution(3),
        ]
        _total, tasks = broker.list_tasks(Q, State.QUEUED, load_executions=1)
        assert tasks[0].executions == [_execution(3)]

    # -- unique twins and finish -----------------------------------------------
    def test_done_with_pending_twin_keeps_data_resets_records(self, broker: Broker) -> None:
        """When a run succeeds while its pending twin waits, the twin keeps the
        data; the earlier failure records are cleared."""
        _fail_n_times(broker, "u", 2)
        assert _ids(broker.pop(Q, 1, "w1", FAR)) == ["u"]
        broker.enqueue(_req("u", unique=True, payload=b"next"))
        assert broker.finish(Q, "u", "w1", "done")
        assert _states_of(broker, Q, "u") == {State.QUEUED}
        task = broker.get_task(Q, State.QUEUED, "u", load_executions=10)
        assert task.payload == b"next"
        assert task.executions == []
        assert task.executions_count == 0

    def test_error_with_pending_twin_keeps_both(self, broker: Broker) -> None:
        """A run that fails while its twin is pending leaves an error copy and
        the pending copy, sharing one data record."""
        _activate(broker, "u", unique=True)
        when = broker.time() + FAR
        broker.enqueue(_req("u", unique=True, when=when))
        assert broker.finish(Q, "u", "w1", "error", execution=_execution(1))
        assert _states_of(broker, Q, "u") == {State.ERROR, State.SCHEDULED}
        assert broker.get_task(Q, State.SCHEDULED, "u").ts == when
        assert broker.executions_count(Q, "u") == 1

    def test_retry_with_later_pending_twin_moves_it_earlier(self, broker: Broker) -> None:
        """retry while a twin is scheduled later keeps one scheduled copy, at
        the earlier (retry) time."""
        _activate(broker, "u", unique=True)
        broker.enqueue(_req("u", unique=True, when=broker.time() + FAR))
        retry_at = broker.time() + FAR / 2
        assert broker.finish(Q, "u", "w1", "retry", when=retry_at, execution=_execution(1))
        assert _states_of(broker, Q, "u") == {State.SCHEDULED}
        assert broker.list_tasks(Q, State.SCHEDULED)[0] == 1
        assert broker.get_task(Q, State.SCHEDULED, "u").ts == retry_at
        assert broker.executions_count(Q, "u") == 1

    def test_retry_with_earlier_pending_twin_keeps_it(self, broker: Broker) -> None:
        """retry while a twin is scheduled earlier keeps that earlier time."""
        _activate(broker, "u", unique=True)
        twin_at = broker.time() + FAR / 2
        broker.enqueue(_req("u", unique=True, when=twin_at))
        assert broker.finish(Q, "u", "w1", "retry", when=twin_at + FAR, execution=_execution(1))
        assert _states_of(broker, Q, "u") == {State.SCHEDULED}
        assert broker.get_task(Q, State.SCHEDULED, "u").ts == twin_at

    def test_retry_with_queued_twin_keeps_one_queued_copy(self, broker: Broker) -> None:
        """retry while a twin is queued leaves just the queued copy."""
        _activate(broker, "u", unique=True)
        queued = broker.enqueue(_req("u", unique=True))
        assert broker.finish(Q, "u", "w1", "retry", when=broker.time() + 60)
        assert _states_of(broker, Q, "u") == {State.QUEUED}
        assert broker.get_task(Q, State.QUEUED, "u").ts == queued.ts

    def test_requeue_with_pending_twin_does_not_duplicate(self, broker: Broker) -> None:
        """requeue (now or later) while a twin is pending keeps one pending copy
        at the earlier of the two times."""
        _activate(broker, "u", unique=True)
        queued = broker.enqueue(_req("u", unique=True))
        assert broker.finish(Q, "u", "w1", "requeue")
        assert _states_of(broker, Q, "u") == {State.QUEUED}
        assert broker.get_task(Q, State.QUEUED, "u").ts == queued.ts
        assert _ids(broker.pop(Q, 1, "w1", FAR)) == ["u"]
        twin_at = broker.time() + FAR
        broker.enqueue(_req("u", unique=True, when=twin_at))
        assert broker.finish(Q, "u", "w1", "requeue", when=twin_at - 100)
        assert _states_of(broker, Q, "u") == {State.SCHEDULED}
        assert broker.get_task(Q, State.SCHEDULED, "u").ts == twin_at - 100

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

    # -- move_due --------------------------------------------------------------
    def test_move_due_moves_only_due_tasks(self, broker: Broker) -> None:
        """move_due queues the scheduled tasks due by now, at their due time,
        leaves future ones, and returns how many moved."""
        now = broker.time()
        for task_id in ("a", "b", "future"):
            broker.enqueue(_req(task_id, when=now + FAR))
        due_a = _make_due(broker, "a", ago=5)
        due_b = _make_due(broker, "b", ago=10)
        _drain_activity(broker)
        assert broker.move_due(Q, 100) == 2
        assert broker.get_task(Q, State.QUEUED, "a").ts == due_a
        assert broker.get_task(Q, State.QUEUED, "b").ts == due_b
        assert _states_of(broker, Q, "future") == {State.SCHEDULED}
        assert broker.move_due(Q, 100) == 0
        assert _announced(broker, Q)

    def test_move_due_keeps_priority_and_due_order(self, broker: Broker) -> None:
        """Moved tasks keep their priority and run in due-time order, ahead of
        tasks queued after their due time."""
        now = broker.time()
        for task_id, priority in (("late", 0), ("early", 0), ("urgent", 3)):
            broker.enqueue(_req(task_id, when=now + FAR, priority=priority))
        _make_due(broker, "late", ago=1)
        _make_due(broker, "early", ago=20)
        _make_due(broker, "urgent", ago=2)
        broker.enqueue(_req("fresh"))
        assert broker.move_due(Q, 100) == 3
        assert broker.get_task(Q, State.QUEUED, "urgent").priority == 3
        assert _ids(broker.pop(Q, 10, "w1", FAR)) == ["urgent", "early", "late", "fresh"]

    def test_move_due_respects_limit_oldest_first(self, broker: Broker) -> None:
        """move_due moves at most ``limit`` tasks, the earliest due first."""
        now = broker.time()
        for i in range(4):
            broker.enqueue(_req(f"t{i}", when=now + FAR))
            _make_due(broker, f"t{i}", ago=10 - i)
        assert broker.move_due(Q, 3) == 3
        assert _ids(broker.list_tasks(Q, State.QUEUED)[1]) == ["t0", "t1", "t2"]
        assert broker.move_due(Q, 3) == 1
        assert broker.move_due(Q, 3) == 0

    def test_move_due_after_real_wait(self, broker: Broker) -> None:
        """A task scheduled a moment ahead becomes due by the broker's clock."""
        broker.enqueue(_req("soon", when=broker.time() + 0.05))
        assert broker.move_due(Q, 10) == 0
        time.sleep(0.1)
        assert broker.move_due(Q, 10) == 1
        assert _ids(broker.pop(Q, 1, "w1", FAR)) == ["soon"]

    # -- locks -----------------------------------------------------------------
    def test_lock_is_exclusive_and_reentrant_for_its_token(self, broker: Broker) -> None:
        """A held lock refuses other tokens; its own token re-acquires it."""
        assert broker.acquire_lock("L", "t1", 10)
        assert not broker.acquire_lock("L", "t2", 10)
        assert broker.acquire_lock("L", "t1", 10)
        assert broker.acquire_lock("other", "t2", 10)

    def test_lock_expires_after_ttl(self, broker: Broker) -> None:
        """A lock not renewed within its TTL can be taken by another token, and
        the old holder can then neither renew nor release it."""
        assert broker.acquire_lock("L", "t1", TTL)
        time.sleep(TTL + 0.1)
        assert broker.acquire_lock("L", "t2", 10)
        assert not broker.renew_lock("L", "t1", 10)
        assert not broker.release_lock("L", "t1")
        assert not broker.acquire_lock("L", "t1", 10)

    def test_lock_renew_extends_ttl(self, broker: Broker) -> None:
        """renew_lock by the holder pushes the expiry out by the new TTL."""
        assert broker.acquire_lock("L", "t1", TTL)
        time.sleep(TTL / 2)
        assert broker.renew_lock("L", "t1", 5)
        time.sleep(TTL / 2 + 0.1)
        assert not broker.acquire_lock("L", "t2", 5)

    def test_lock_renew_and_release_only_by_holder(self, broker: Broker) -> None:
        """renew_lock and release_lock by another token fail; release by the
        holder frees the lock."""
        assert broker.acquire_lock("L", "t1", 10)
        assert not broker.renew_lock("L", "t2", 10)
        assert not broker.release_lock("L", "t2")
        assert broker.renew_lock("L", "t1", 10)
        assert broker.release_lock("L", "t1")
        assert not broker.release_lock("L", "t1")
        assert not broker.renew_lock("L", "t1", 10)
        assert broker.acquire_lock("L", "t2", 10)

    # -- queue slots -----------------------------------------------------------
    def test_queue_slots_limit_holders(self, broker: Broker) -> None:
        """At most ``limit`` workers hold slots; a holder renews without taking a
        second slot; a release frees one."""
        assert broker.acquire_queue_slot(Q, "w1", 2, 10)
        assert broker.acquire_queue_slot(Q, "w2", 2, 10)
        assert not broker.acquire_queue_slot(Q, "w3", 2, 10)
        assert broker.acquire_queue_slot(Q, "w1", 2, 10)
        assert not broker.acquire_queue_slot(Q, "w3", 2, 10)
        broker.release_queue_slot(Q, "w1")
        assert broker.acquire_queue_slot(Q, "w3", 2, 10)
        broker.release_queue_slot(Q, "nobody")

    def test_queue_slots_expire(self, broker: Broker) -> None:
        """A slot not renewed within its TTL is given to another worker."""
        assert broker.acquire_queue_slot(Q, "w1", 1, TTL)
        assert not broker.acquire_queue_slot(Q, "w2", 1, 10)
        time.sleep(TTL + 0.1)
        assert broker.acquire_queue_slot(Q, "w2", 1, 10)
        assert not broker.acquire_queue_slot(Q, "w1", 1, 10)

    def test_queue_slots_are_per_exact_queue(self, broker: Broker) -> None:
        """A subqueue has its own slots, separate from its parent's."""
        assert broker.acquire_queue_slot(Q, "w1", 1, 10)
        assert broker.acquire_queue_slot(OTHER, "w2", 1, 10)
        assert not broker.acquire_queue_slot(Q, "w2", 1, 10)

    def test_queue_system_lock_blocks_slots_until_expiry(self, broker: Broker) -> None:
        """While a queue's system lock is set no slot is given or renewed;
        get_queue_system_lock reports its expiry, then None once it lapsed."""
        assert broker.get_queue_system_lock(Q) is None
        assert broker.acquire_queue_slot(Q, "w1", 5, 10)
        before = broker.time()
        broker.set_queue_system_lock(Q, TTL)
        after = broker.time()
        assert _between(broker.get_queue_system_lock(Q), before + TTL, after + TTL)
        assert not broker.acquire_queue_slot(Q, "w2", 5, 10)
        assert not broker.acquire_queue_slot(Q, "w1", 5, 10)
        assert broker.acquire_queue_slot(OTHER, "w2", 5, 10)
        time.sleep(TTL + 0.1)
        assert broker.get_queue_system_lock(Q) is None
        assert broker.acquire_queue_slot(Q, "w2", 5, 10)

    # -- rate limit ------------------------------------------------------------
    def test_try_rate_limit_once_per_ttl(self, broker: Broker) -> None:
        """try_rate_limit is True once per TTL per name."""
        assert broker.try_rate_limit("scan", TTL)
        assert not broker.try_rate_limit("scan", TTL)
        assert broker.try_rate_limit("other", TTL)
        time.sleep(TTL + 0.1)
        assert broker.try_rate_limit("scan", TTL)
        assert not broker.try_rate_limit("scan", TTL)

    # -- notifications ---------------------------------------------------------
    def test_enqueue_now_is_announced(self, broker: Broker) -> None:
        """Queueing a task announces its queue to wait_for_activity."""
        _drain_activity(broker)
        broker.enqueue(_req("a", OTHER))
        assert _announced(broker, OTHER)

    def test_wait_for_activity_wakes_on_enqueue_from_another_thread(self, broker: Broker) -> None:
        """A waiting caller returns soon after another thread queues a task."""
        _drain_activity(broker)
        seen: list[set[str]] = []

        def waiter() -> None:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                names = broker.wait_for_activity(5)
                if names:
                    seen.append(names)
                    return

        thread = threading.Thread(target=waiter)
        started = time.monotonic()
        thread.start()
        time.sleep(0.1)
        broker.enqueue(_req("a"))
        thread.join(10)
        assert seen
        assert Q in seen[0]
        assert time.monotonic() - started < 4

    def test_wait_for_activity_returns_within_timeout(self, broker: Broker) -> None:
        """With nothing to announce, wait_for_activity returns a set within
        about its timeout."""
        _drain_activity(broker)
        started = time.monotonic()
        names = broker.wait_for_activity(0.2)
        assert isinstance(names, set)
        assert Q not in names
        assert time.monotonic() - started < 1.5

    def test_retry_from_error_is_announced(self, broker: Broker) -> None:
        """Moving a task from error to queued announces its queue."""
        _fail(broker, "a")
        _drain_activity(broker)
        broker.retry_from_error(Q, "a")
        assert _announced(broker, Q)

    # -- inspection ------------------------------------------------------------
    def test_queue_sizes_and_queues(self, broker: Broker) -> None:
        """queue_sizes counts every state; queues lists the queue per state."""
        _activate(broker, "running")
        _fail(broker, "failed")
        broker.enqueue_many([_req("q1"), _req("q2"), _req("s1", when=broker.time() + FAR)])
        assert broker.queue_sizes(Q) == {
            State.SCHEDULED: 1,
            State.QUEUED: 2,
            State.ACTIVE: 1,
            State.ERROR: 1,
        }
        for state in STATES:
            assert Q in broker.queues(state)
        assert broker.iter_queues(STATES) >= {Q}
        assert broker.queue_sizes(OTHER) == dict.fromkeys(STATES, 0)

    def test_list_tasks_ascending_with_skip_from_oldest(self, broker: Broker) -> None:
        """list_tasks returns (total, tasks) in ascending score, skipping from
        the oldest."""
        now = broker.time()
        offsets = {"c": 300, "a": 100, "e": 500, "b": 200, "d": 400}
        for task_id, offset in offsets.items():
            broker.enqueue(_req(task_id, when=now + offset))
        total, tasks = broker.list_tasks(Q, State.SCHEDULED)
        assert total == 5
        assert _ids(tasks) == ["a", "b", "c", "d", "e"]
        assert [t.ts for t in tasks] == sorted(now + o for o in offsets.values())
        assert all(t.state is State.SCHEDULED and t.queue == Q for t in tasks)
        assert _ids(broker.list_tasks(Q, State.SCHEDULED, skip=1, limit=2)[1]) == ["b", "c"]
        assert broker.list_tasks(Q, State.SCHEDULED, skip=4, limit=10)[1][0].id == "e"
        assert broker.list_tasks(Q, State.SCHEDULED, skip=5) == (5, [])
        assert broker.list_tasks(Q, State.QUEUED) == (0, [])

    def test_get_task_wrong_state_or_queue_raises(self, broker: Broker) -> None:
        """get_task raises TaskNotFound for a task not in that queue and state."""
        broker.enqueue(_req("a"))
        for state in (State.SCHEDULED, State.ACTIVE, State.ERROR):
            with pytest.raises(TaskNotFound):
                broker.get_task(Q, state, "a")
        with pytest.raises(TaskNotFound):
            broker.get_task(OTHER, State.QUEUED, "a")
        with pytest.raises(TaskNotFound):
            broker.get_task(Q, State.QUEUED, "missing")
        assert broker.get_task(Q, State.QUEUED, "a").id == "a"

    def test_executions_count_of_unknown_task_raises(self, broker: Broker) -> None:
        """executions_count raises TaskNotFound for a task with no data."""
        with pytest.raises(TaskNotFound):
            broker.executions_count(Q, "nope")
        broker.enqueue(_req("a"))
        assert broker.executions_count(Q, "a") == 0

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

    # -- missing data ----------------------------------------------------------
    def test_pop_drops_id_with_missing_data(
        self, broker: Broker, drop_task_data: DropTaskData | None
    ) -> None:
        """pop drops a queued id whose data is missing and returns the others."""
        drop = self._need_drop(drop_task_data)
        broker.enqueue(_req("lost"))
        time.sleep(0.002)
        broker.enqueue(_req("kept"))
        drop(broker, Q, "lost")
        assert _ids(broker.pop(Q, 10, "w1", FAR)) == ["kept"]
        assert broker.queue_sizes(Q)[State.QUEUED] == 0
        assert _states_of(broker, Q, "lost") == set()

    def test_pop_reports_the_ids_it_drops(
        self, broker: Broker, drop_task_data: DropTaskData | None
    ) -> None:
        """Decision 19: an id that pop drops because its data is missing is
        reported once by take_dropped (queue, id, state, reason), so that the
        worker can log it; nothing else is reported."""
        drop = self._need_drop(drop_task_data)
        broker.enqueue(_req("lost"))
        time.sleep(0.002)
        broker.enqueue(_req("kept"))
        drop(broker, Q, "lost")
        assert broker.take_dropped() == []
        assert _ids(broker.pop(Q, 10, "w1", FAR)) == ["kept"]
        dropped = broker.take_dropped()
        assert [(d.queue, d.task_id, d.state, d.moved_to_error) for d in dropped] == [
            (Q, "lost", State.QUEUED, False)
        ]
        assert "missing" in dropped[0].reason
        assert broker.take_dropped() == []

    def test_list_tasks_marks_missing_data_once(
        self, broker: Broker, drop_task_data: DropTaskData | None
    ) -> None:
        """list_tasks returns a task whose data is missing once, in its place,
        with missing=True; no other task is duplicated or dropped."""
        drop = self._need_drop(drop_task_data)
        now = broker.time()
        for offset, task_id in enumerate(("first", "lost", "last"), start=1):
            broker.enqueue(_req(task_id, when=now + FAR + offset))
        drop(broker, Q, "first")
        drop(broker, Q, "lost")
        total, tasks = broker.list_tasks(Q, State.SCHEDULED)
        assert total == 3
        assert _ids(tasks) == ["first", "lost", "last"]
        assert [t.missing for t in tasks] == [True, True, False]
        assert tasks[1].payload == b""
        assert tasks[1].ts == now + FAR + 2
        assert tasks[2].payload == _payload("last")
        with pytest.raises(TaskNotFound):
            broker.get_task(Q, State.SCHEDULED, "lost")
        with pytest.raises(TaskNotFound):
            broker.executions_count(Q, "lost")

    def test_purge_errors_includes_missing_data(
        self, broker: Broker, drop_task_data: DropTaskData | None
    ) -> None:
        """purge_errors deletes error ids whose data is missing too."""
        drop = self._need_drop(drop_task_data)
        _fail(broker, "lost")
        _fail(broker, "kept")
        drop(broker, Q, "lost")
        assert broker.purge_errors(Q, None, None) == 2
        assert broker.list_tasks(Q, State.ERROR) == (0, [])

    def test_recover_expired_clears_active_id_with_missing_data(
        self, broker: Broker, drop_task_data: DropTaskData | None
    ) -> None:
        """An active id whose data is missing is listed as expired, and
        recover_expired with done removes it."""
        drop = self._need_drop(drop_task_data)
        _activate(broker, "lost")
        drop(broker, Q, "lost")
        assert broker.expired_tasks(broker.time() + 1, 10) == [(Q, "lost")]
        assert broker.recover_expired(Q, "lost", broker.time() + 1, "done")
        assert broker.queue_sizes(Q) == dict.fromkeys(STATES, 0)

    def test_drop_expired_missing_removes_only_lost_expired_ids(
        self, broker: Broker, drop_task_data: DropTaskData | None
    ) -> None:
        """drop_expired_missing removes an expired active id whose data is
        missing and returns True; it leaves alone (False) an id whose data is
        there, one whose heartbeat is not before ``older_than``, and ids that
        are not active."""
        drop = self._need_drop(drop_task_data)
        lost = _activate(broker, "lost")
        _activate(broker, "kept")
        broker.enqueue(_req("queued"))
        drop(broker, Q, "lost")
        drop(broker, Q, "queued")
        assert not broker.drop_expired_missing(Q, "lost", lost.ts)
        assert not broker.drop_expired_missing(Q, "kept", broker.time() + 1)
        assert not broker.drop_expired_missing(Q, "queued", broker.time() + 1)
        assert not broker.drop_expired_missing(Q, "unknown", broker.time() + 1)
        assert _states_of(broker, Q, "lost") == {State.ACTIVE}
        assert broker.drop_expired_missing(Q, "lost", broker.time() + 1)
        assert _states_of(broker, Q, "lost") == set()
        assert not broker.drop_expired_missing(Q, "lost", broker.time() + 1)
        assert broker.expired_tasks(broker.time() + 1, 10) == [(Q, "kept")]
        assert broker.get_task(Q, State.ACTIVE, "kept").payload == _payload("kept")
        assert broker.queue_sizes(Q)[State.QUEUED] == 1

    def test_drop_expired_missing_refuses_once_data_is_back(
        self, broker: Broker, drop_task_data: DropTaskData | None
    ) -> None:
        """A unique task enqueued again after its running copy lost its data has
        data again: drop_expired_missing leaves it, and the lost run is then
        recovered as usual."""
        drop = self._need_drop(drop_task_data)
        _activate(broker, "u", unique=True)
        drop(broker, Q, "u")
        broker.enqueue(_req("u", unique=True, payload=b"again"))
        assert not broker.drop_expired_missing(Q, "u", broker.time() + 1)
        assert _states_of(broker, Q, "u") == {State.ACTIVE, State.QUEUED}
        assert broker.recover_expired(Q, "u", broker.time() + 1, "requeue")
        assert _states_of(broker, Q, "u") == {State.QUEUED}
        assert broker.get_task(Q, State.QUEUED, "u").payload == b"again"

    def test_unique_reenqueue_gives_a_pending_id_its_data_again(
        self, broker: Broker, drop_task_data: DropTaskData | None
    ) -> None:
        """A unique task enqueued again while its pending id has lost its data
        gets the new payload, in the same place; a request that is not
        unique leaves the id without data."""
        drop = self._need_drop(drop_task_data)
        first = broker.enqueue(_req("u", unique=True))
        broker.enqueue(_req("v"))
        drop(broker, Q, "u")
        assert not broker.enqueue(_req("u", payload=b"plain")).created
        assert broker.list_tasks(Q, State.QUEUED)[1][0].missing
        again = broker.enqueue(_req("u", unique=True, payload=b"again"))
        assert not again.created
        assert again.ts == first.ts
        assert broker.get_task(Q, State.QUEUED, "u").payload == b"again"
        assert _ids(broker.pop(Q, 2, "w1", FAR)) == ["u", "v"]

    def test_cancel_and_delete_clear_ids_with_missing_data(
        self, broker: Broker, drop_task_data: DropTaskData | None
    ) -> None:
        """cancel and delete remove an id from its state even when its data is
        missing; update_scheduled_time and retry_from_error refuse it."""
        drop = self._need_drop(drop_task_data)
        broker.enqueue(_req("s", when=broker.time() + FAR))
        _fail(broker, "e")
        drop(broker, Q, "s")
        drop(broker, Q, "e")
        with pytest.raises(TaskNotFound):
            broker.update_scheduled_time(Q, "s", broker.time() + 5)
        with pytest.raises(TaskNotFound):
            broker.retry_from_error(Q, "e")
        broker.cancel(Q, "s")
        broker.delete(Q, "e")
        assert broker.queue_sizes(Q) == dict.fromkeys(STATES, 0)
