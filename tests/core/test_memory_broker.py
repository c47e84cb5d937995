"""The memory broker: the broker contract suite, the stateful model test, and
what is specific to the in-process broker (its clock, options, helpers)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from taskq_core.broker import Broker, EnqueueRequest
from taskq_core.brokers.memory import MemoryBroker
from taskq_core.exceptions import TaskNotFound
from taskq_core.states import STATES, State, Transition
from taskq_core.testing.contract import BrokerContractTests, DropTaskData
from taskq_core.testing.stateful import make_broker_state_machine


def _drop(broker: Broker, queue: str, task_id: str) -> None:
    assert isinstance(broker, MemoryBroker)
    broker._drop_data(queue, task_id)


class TestMemoryContract(BrokerContractTests):
    """The memory broker passes the whole broker contract."""

    @pytest.fixture
    def broker(self) -> Broker:
        return MemoryBroker()

    @pytest.fixture
    def drop_task_data(self) -> DropTaskData | None:
        return _drop


TestMemoryStateful = make_broker_state_machine(MemoryBroker, _drop).TestCase
TestMemoryStateful.settings = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def broker(clock: Clock) -> MemoryBroker:
    return MemoryBroker(clock=clock)


def _req(task_id: str, queue: str = "q", **options: Any) -> EnqueueRequest:
    return EnqueueRequest(task_id, queue, task_id.encode(), **options)


def test_state_machine_exercises_every_transition() -> None:
    """The stateful test's model performs every transition of the table (a
    fixed-seed run, so that the check is repeatable)."""
    machine = make_broker_state_machine(MemoryBroker, _drop)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=100,
            stateful_step_count=50,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    assert machine.seen_transitions == set(Transition)  # type: ignore[attr-defined]


def test_class_attributes() -> None:
    """The memory broker is named "memory" and cannot be shared with a fork."""
    assert MemoryBroker.name == "memory"
    assert MemoryBroker.supports_fork is False
    assert MemoryBroker().check() == []


def test_unknown_options_are_named() -> None:
    """An unknown constructor option is a TypeError that names it."""
    with pytest.raises(TypeError, match="colour, size"):
        MemoryBroker(size=3, colour="red")


def test_memory_url_is_accepted_other_urls_are_not() -> None:
    """A memory:// URL (as make_broker passes it) is accepted; another scheme is not."""
    MemoryBroker(url="memory://")
    with pytest.raises(ValueError, match="memory://"):
        MemoryBroker(url="redis://localhost")


def test_clock_drives_time_and_move_due(broker: MemoryBroker, clock: Clock) -> None:
    """The broker's time is the given clock; scheduled tasks come due as it moves."""
    assert broker.time() == clock.now
    result = broker.enqueue(_req("a", when=clock.now + 60))
    assert result.state is State.SCHEDULED
    clock.advance(59.5)
    assert broker.move_due("q", 10) == 0
    clock.advance(0.5)
    assert broker.move_due("q", 10) == 1
    assert broker.get_task("q", State.QUEUED, "a").ts == result.ts


def test_lock_ttls_follow_the_clock(broker: MemoryBroker, clock: Clock) -> None:
    """Locks, slots, system locks and rate limits expire by the broker's clock."""
    assert broker.acquire_lock("L", "t1", 10)
    assert broker.acquire_queue_slot("q", "w1", 1, 10)
    broker.set_queue_system_lock("other", 10)
    assert broker.try_rate_limit("scan", 10)
    clock.advance(9.9)
    assert not broker.acquire_lock("L", "t2", 10)
    assert not broker.acquire_queue_slot("q", "w2", 1, 10)
    assert broker.get_queue_system_lock("other") == clock.now + 0.1
    assert not broker.try_rate_limit("scan", 10)
    clock.advance(0.1)
    assert broker.acquire_lock("L", "t2", 10)
    assert broker.acquire_queue_slot("q", "w2", 1, 10)
    assert broker.get_queue_system_lock("other") is None
    assert broker.try_rate_limit("scan", 10)


def test_expiry_follows_the_clock(broker: MemoryBroker, clock: Clock) -> None:
    """Active tasks expire by the broker's clock, oldest heartbeat first."""
    broker.enqueue_many([_req("a"), _req("b")])
    broker.pop("q", 1, "w1", 30)
    clock.advance(5)
    broker.pop("q", 1, "w1", 30)
    assert broker.expired_tasks(clock.now, 10) == [("q", "a")]
    clock.advance(1)
    assert broker.heartbeat("q", ["a"], "w1") == ["a"]
    assert broker.expired_tasks(clock.now, 10) == [("q", "b")]
    assert broker.expired_tasks(clock.now + 1, 10) == [("q", "b"), ("q", "a")]


def test_idle_wait_blocks_for_the_timeout() -> None:
    """With nothing queued, wait_for_activity sleeps (real time) instead of
    returning at once, so an idle worker does not spin."""
    broker = MemoryBroker()
    started = time.monotonic()
    assert broker.wait_for_activity(0.2) == set()
    assert time.monotonic() - started >= 0.15


def test_activity_is_reported_once_per_queue(broker: MemoryBroker, clock: Clock) -> None:
    """Notifications collect until the next call, once per queue, then clear;
    a scheduled enqueue is not announced."""
    broker.enqueue(_req("later", "s", when=clock.now + 100))
    broker.enqueue_many([_req("a", "q1"), _req("b", "q1"), _req("c", "q2")])
    assert broker.wait_for_activity(0) == {"q1", "q2"}
    assert broker.wait_for_activity(0) == set()


def test_waiter_wakes_when_another_thread_enqueues() -> None:
    """A thread blocked in wait_for_activity wakes as soon as work is queued."""
    broker = MemoryBroker()
    result: list[set[str]] = []
    waiter = threading.Thread(target=lambda: result.append(broker.wait_for_activity(10)))
    started = time.monotonic()
    waiter.start()
    time.sleep(0.05)
    broker.enqueue(_req("a"))
    waiter.join(5)
    assert result == [{"q"}]
    assert time.monotonic() - started < 2


def test_all_tasks_snapshot_and_clear(broker: MemoryBroker, clock: Clock) -> None:
    """all_tasks lists every stored copy (twins once per state) with all its
    records; clear forgets everything."""
    broker.enqueue(_req("u", unique=True))
    broker.pop("q", 1, "w1", 30)
    broker.finish("q", "u", "w1", "error", execution={"n": 1})
    broker.enqueue(_req("u", unique=True, when=clock.now + 50))
    broker.enqueue(_req("x", "other"))
    snapshot = broker.all_tasks()
    assert [(t.queue, t.id, t.state) for t in snapshot] == [
        ("other", "x", State.QUEUED),
        ("q", "u", State.SCHEDULED),
        ("q", "u", State.ERROR),
    ]
    assert snapshot[2].executions == [{"n": 1}]
    snapshot[2].executions[0]["n"] = 99
    assert broker.get_task("q", State.ERROR, "u", 1).executions == [{"n": 1}]
    broker.acquire_lock("L", "t", 10)
    broker.clear()
    assert broker.all_tasks() == []
    assert broker.queue_sizes("q") == dict.fromkeys(STATES, 0)
    assert broker.acquire_lock("L", "other", 10)


def test_stored_execution_is_a_copy(broker: MemoryBroker) -> None:
    """Changing an execution dict after finish does not change the stored record."""
    broker.enqueue(_req("a"))
    broker.pop("q", 1, "w1", 30)
    record = {"n": 1}
    broker.finish("q", "a", "w1", "error", execution=record)
    record["n"] = 2
    assert broker.get_task("q", State.ERROR, "a", 1).executions == [{"n": 1}]


def test_drop_data_leaves_the_state_entry(broker: MemoryBroker) -> None:
    """_drop_data removes the data only, as an outside writer losing it would."""
    broker.enqueue(_req("a"))
    broker._drop_data("q", "a")
    assert broker.queue_sizes("q")[State.QUEUED] == 1
    with pytest.raises(TaskNotFound):
        broker.get_task("q", State.QUEUED, "a")


def test_pop_heap_survives_many_reschedules(broker: MemoryBroker, clock: Clock) -> None:
    """Queued twins whose score moves again and again still pop once each,
    in score order, and the heap of stale entries stays bounded."""
    ids = [f"u{i}" for i in range(100)]
    broker.enqueue_many([_req(task_id, unique=True) for task_id in ids])
    for round_number in range(3):
        assert len(broker.pop("q", 100, "w1", 30)) == 100
        broker.enqueue_many([_req(task_id, unique=True) for task_id in ids])
        for i, task_id in enumerate(ids):
            # the queued twin absorbs the retry at an earlier score
            when = clock.now - 1000 * (round_number + 1) - i
            assert broker.finish("q", task_id, "w1", "retry", when=when)
        assert broker.queue_sizes("q") == {
            State.SCHEDULED: 0,
            State.QUEUED: 100,
            State.ACTIVE: 0,
            State.ERROR: 0,
        }
        assert len(broker._heaps["q"]) <= 2 * 100 + 64
    order = [task.id for task in broker.pop("q", 1000, "w1", 30)]
    assert order == list(reversed(ids))
    assert broker.queue_sizes("q")[State.QUEUED] == 0
