"""The :class:`~taskq_core.TaskQ` object: choosing the broker, queue
inspection, purging errors, queue system locks, and task priorities."""

from __future__ import annotations

import datetime as dt
import inspect
import time
from collections.abc import Callable
from typing import Any

import pytest
import tasks_fixture as tf

from taskq_core import State, Task, TaskQ
from taskq_core.brokers.memory import MemoryBroker
from taskq_core.exceptions import UnknownBrokerError

pytestmark = pytest.mark.usefixtures("clean_calls")


@pytest.fixture
def app() -> TaskQ:
    return TaskQ(broker=MemoryBroker())


def fail(app: TaskQ, queue: str, n: int = 1) -> list[Task]:
    """Put ``n`` failed tasks in ``error`` in ``queue``."""
    tasks = [app.delay(tf.fail_value_error, args=[i], queue=queue) for i in range(n)]
    app.run_worker(queues=[queue], burst=True)
    return tasks


# -- the API contract ---------------------------------------------------------------------

API_SIGNATURES: dict[str, tuple[Callable[..., Any], list[str]]] = {
    "TaskQ": (TaskQ.__init__, ["broker", "config", "setup_structlog"]),
    "TaskQ.delay": (
        TaskQ.delay,
        [
            "func",
            "args",
            "kwargs",
            "queue",
            "priority",
            "hard_timeout",
            "unique",
            "unique_key",
            "lock",
            "lock_key",
            "when",
            "retry",
            "retry_on",
            "retry_method",
            "max_queue_size",
            "max_stored_executions",
            "runner_class",
        ],
    ),
    "TaskQ.run_worker": (
        TaskQ.run_worker,
        [
            "queues",
            "exclude_queues",
            "max_workers_per_queue",
            "store_tracebacks",
            "executor",
            "burst",
            "exit_after",
        ],
    ),
    "TaskQ.purge_errored_tasks": (
        TaskQ.purge_errored_tasks,
        ["queues", "exclude_queues", "last_execution_before", "limit"],
    ),
    "Task": (
        Task.__init__,
        [
            "tq",
            "func",
            "args",
            "kwargs",
            "queue",
            "hard_timeout",
            "unique",
            "unique_key",
            "lock",
            "lock_key",
            "retry",
            "retry_on",
            "retry_method",
            "max_queue_size",
            "max_stored_executions",
            "runner_class",
        ],
    ),
    "Task.from_id": (Task.from_id, ["tq", "queue", "state", "task_id", "load_executions"]),
    "Task.tasks_from_queue": (
        Task.tasks_from_queue,
        ["tq", "queue", "state", "skip", "limit", "load_executions"],
    ),
    "Task.delay": (Task.delay, ["when", "max_queue_size"]),
    "Task.update_scheduled_time": (Task.update_scheduled_time, ["when"]),
}


@pytest.mark.parametrize("name", sorted(API_SIGNATURES))
def test_signatures_follow_the_api_contract(name: str) -> None:
    """The public signatures start with API.md's parameters, in API.md's
    order (so positional calls written for TaskTiger keep working)."""
    func, expected = API_SIGNATURES[name]
    params = [
        p.name
        for p in inspect.signature(func).parameters.values()
        if p.name not in ("self", "cls") and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    assert params[: len(expected)] == expected


# -- the broker -------------------------------------------------------------------------


def test_broker_from_a_memory_url() -> None:
    """``TaskQ("memory://")`` uses a new in-process memory broker."""
    app = TaskQ("memory://")
    assert isinstance(app.broker, MemoryBroker)
    assert app.broker is app.broker
    assert TaskQ("memory://").broker is not app.broker


def test_broker_object_is_used_as_given() -> None:
    """A broker object passed to TaskQ is the app's broker."""
    broker = MemoryBroker()
    assert TaskQ(broker=broker).broker is broker


def test_broker_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a broker argument the ``TASKQ_URL`` environment variable is used."""
    monkeypatch.setenv("TASKQ_URL", "memory://")
    assert isinstance(TaskQ().broker, MemoryBroker)


def test_broker_is_made_on_first_use() -> None:
    """The broker is built when first used, so an app can be declared before
    its broker is reachable; an unknown scheme is an error that names it."""
    app = TaskQ("nosuchbroker://somewhere")
    with pytest.raises(UnknownBrokerError, match="nosuchbroker"):
        app.broker  # noqa: B018


# -- inspection -----------------------------------------------------------------------------


def test_queue_sizes_and_stats(app: TaskQ) -> None:
    """``get_queue_sizes`` counts queued, scheduled and active tasks of a queue;
    ``get_total_queue_size`` adds them; ``get_queue_stats`` lists every
    non-empty state of every queue (error included)."""
    app.delay(tf.record, queue="a")
    app.delay(tf.record, queue="a")
    app.delay(tf.record, queue="a", when=dt.timedelta(hours=1))
    fail(app, "b")
    assert app.get_queue_sizes("a") == {"queued": 2, "scheduled": 1, "active": 0}
    assert app.get_total_queue_size("a") == 3
    assert app.get_queue_sizes("b") == {"queued": 0, "scheduled": 0, "active": 0}
    assert app.get_total_queue_size("b") == 0
    assert app.get_queue_stats() == {"a": {"queued": 2, "scheduled": 1}, "b": {"error": 1}}
    assert app.get_queue_sizes("unknown") == {"queued": 0, "scheduled": 0, "active": 0}


def test_would_process_configured_queue() -> None:
    """``would_process_configured_queue`` applies ``ONLY_QUEUES``/``EXCLUDE_QUEUES``."""
    app = TaskQ(
        broker=MemoryBroker(),
        config={"ONLY_QUEUES": ["a"], "EXCLUDE_QUEUES": ["a.secret"]},
    )
    assert app.would_process_configured_queue("a.b")
    assert not app.would_process_configured_queue("a.secret.x")
    assert not app.would_process_configured_queue("b")


# -- purging errors ---------------------------------------------------------------------------


def test_purge_errored_tasks_all(app: TaskQ) -> None:
    """``purge_errored_tasks()`` deletes every errored task and returns how many."""
    fail(app, "a", 3)
    fail(app, "b", 2)
    app.delay(tf.record, queue="a")
    assert app.purge_errored_tasks() == 5
    assert app.get_queue_stats() == {"a": {"queued": 1}}


def test_purge_errored_tasks_filters_and_limit(app: TaskQ) -> None:
    """Queue filters follow the worker's rules; ``limit`` caps the deletions."""
    fail(app, "a", 2)
    fail(app, "a.sub", 1)
    fail(app, "b", 2)
    assert app.purge_errored_tasks(queues=["a"], exclude_queues=["a.sub"]) == 2
    assert app.get_queue_stats() == {"a.sub": {"error": 1}, "b": {"error": 2}}
    assert app.purge_errored_tasks(limit=2) == 2
    assert app.purge_errored_tasks(limit=None) == 1
    assert app.get_queue_stats() == {}
    with pytest.raises(ValueError, match="limit"):
        app.purge_errored_tasks(limit=0)


def test_purge_errored_tasks_last_execution_before() -> None:
    """Only tasks that failed at or before ``last_execution_before`` are purged."""
    now = [1_000_000.0]
    app = TaskQ(broker=MemoryBroker(clock=lambda: now[0]))
    old = fail(app, "q")[0]
    now[0] += 3600
    recent = fail(app, "q")[0]
    cutoff = dt.datetime.fromtimestamp(1_000_000.0 + 60, dt.UTC).replace(tzinfo=None)
    assert app.purge_errored_tasks(last_execution_before=cutoff) == 1
    with pytest.raises(Exception, match="not"):
        Task.from_id(app, "q", State.ERROR, old.id)
    assert Task.from_id(app, "q", State.ERROR, recent.id).id == recent.id


# -- queue system lock ------------------------------------------------------------------------


def test_queue_system_lock(app: TaskQ) -> None:
    """``set_queue_system_lock`` sets an expiry that ``get_queue_system_lock``
    returns; unset queues give None."""
    assert app.get_queue_system_lock("q") is None
    app.set_queue_system_lock("q", 60)
    expiry = app.get_queue_system_lock("q")
    assert expiry is not None
    assert 0 < expiry - app.broker.time() <= 60


def test_queue_system_lock_blocks_limited_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A queue system lock keeps workers with ``max_workers_per_queue`` off the
    queue until it expires; a burst worker waits for it (polling every
    ``SELECT_TIMEOUT``, not spinning). Workers without a limit are not affected."""
    app = TaskQ(broker=MemoryBroker(), config={"SELECT_TIMEOUT": 0.05})
    attempts: list[str] = []
    acquire = app.broker.acquire_queue_slot

    def counting_acquire(queue: str, worker_id: str, limit: int, ttl: float) -> bool:
        attempts.append(queue)
        return acquire(queue, worker_id, limit, ttl)

    monkeypatch.setattr(app.broker, "acquire_queue_slot", counting_acquire)
    app.delay(tf.record, args=["limited"], queue="q")
    app.set_queue_system_lock("q", 0.5)
    started = time.monotonic()
    app.run_worker(max_workers_per_queue=1, burst=True, queues=["q"])
    assert tf.calls == [(("limited",), {})]
    assert time.monotonic() - started >= 0.4
    assert len(attempts) < 40  # about one try per SELECT_TIMEOUT, not a busy loop
    app.delay(tf.record, args=["unlimited"], queue="q")
    app.set_queue_system_lock("q", 60)
    app.run_worker(burst=True, queues=["q"])
    assert tf.calls[-1] == (("unlimited",), {})


# -- priorities ----------------------------------------------------------------------------------


def test_higher_priority_runs_first_fifo_within_a_priority() -> None:
    """Higher ``priority`` runs first; tasks of equal priority run in the order
    they were queued."""
    now = [1_000_000.0]
    app = TaskQ(broker=MemoryBroker(clock=lambda: now[0]))
    plan = [("a", 0), ("b", 5), ("c", 5), ("d", -1), ("e", 10), ("f", 0), ("g", 5)]
    for name, priority in plan:
        app.delay(tf.record, args=[name], priority=priority)
        now[0] += 1
    app.run_worker(burst=True)
    order = [args[0] for args, _ in tf.calls]
    assert order == ["e", "b", "c", "g", "a", "f", "d"]


def test_priority_from_the_decorator(app: TaskQ) -> None:
    """A decorator's ``priority`` applies unless the call gives one."""
    assert app.delay(tf.decorated_task, args=[1]).priority == 5
    assert app.delay(tf.decorated_task, args=[2], priority=0).priority == 0
    assert app.delay(tf.record).priority == 0


def test_due_scheduled_tasks_run_by_priority() -> None:
    """Scheduled tasks that became due run by priority, not by due time."""
    now = [time.time()]
    app = TaskQ(broker=MemoryBroker(clock=lambda: now[0]))
    app.delay(tf.record, args=["low, due first"], when=dt.timedelta(seconds=10), priority=-1)
    app.delay(tf.record, args=["high, due later"], when=dt.timedelta(seconds=20), priority=1)
    app.delay(tf.record, args=["normal, due last"], when=dt.timedelta(seconds=30))
    now[0] += 60
    app.run_worker(burst=True)
    order = [args[0] for args, _ in tf.calls]
    assert order == ["high, due later", "normal, due last", "low, due first"]


@pytest.mark.parametrize("priority", [1001, -1001, 10**9])
def test_priority_out_of_range_is_refused(app: TaskQ, priority: int) -> None:
    """A priority outside -1000..1000 is a ValueError; nothing is written."""
    with pytest.raises(ValueError, match="priority"):
        app.delay(tf.record, priority=priority)
    assert app.get_queue_stats() == {}


@pytest.mark.parametrize("priority", [1.5, "1", True])
def test_priority_must_be_an_int(app: TaskQ, priority: object) -> None:
    """A priority that is not an int is a TypeError."""
    with pytest.raises(TypeError, match="priority"):
        app.delay(tf.record, priority=priority)  # type: ignore[arg-type]


def test_priority_is_kept_through_a_retry() -> None:
    """A task retried after a failure keeps its priority."""
    app = TaskQ(broker=MemoryBroker())
    task = app.delay(tf.fail_value_error, priority=7, retry_method=tf.no_delay_twice)
    app.run_worker(burst=True)
    loaded = Task.from_id(app, "default", State.ERROR, task.id)
    assert loaded.priority == 7
    assert loaded.n_executions() == 3
