"""The task API: declaring tasks, their options and ids, refusals at enqueue,
and the :class:`~taskq_core.Task` methods (load, list, cancel, delete, retry,
reschedule, run inline)."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tasks_fixture as tf

from taskq_core import QueueFullException, State, Task, TaskNotFound, TaskQ, fixed
from taskq_core.brokers.memory import MemoryBroker

HEX64 = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    tf.calls.clear()
    broker = tf.tq.broker
    assert isinstance(broker, MemoryBroker)
    broker.clear()
    yield
    broker.clear()


@pytest.fixture
def app() -> TaskQ:
    return TaskQ(broker=MemoryBroker())


def sizes(app: TaskQ, queue: str = "default") -> dict[str, int]:
    return app.get_queue_sizes(queue)


EMPTY = {"queued": 0, "scheduled": 0, "active": 0}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# -- the decorator ----------


def test_bare_decorator_keeps_the_function_callable() -> None:
    """``@tq.task`` used bare leaves the function callable directly (it runs
    inline and enqueues nothing) and adds ``.delay``, which returns a queued Task."""
    assert tf.bare_task(3) == 6
    assert tf.calls == [("bare_task", 3)]
    assert sizes(tf.tq) == EMPTY
    task = tf.bare_task.delay(4)  # type: ignore[attr-defined]
    assert isinstance(task, Task)
    assert task.state is State.QUEUED
    assert task.queue == "default"
    assert task.serialized_func == "tasks_fixture:bare_task"
    assert task.args == [4]
    assert sizes(tf.tq) == {"queued": 1, "scheduled": 0, "active": 0}
    assert tf.calls == [("bare_task", 3)]  # delay does not run it


def test_called_decorator_stores_its_options() -> None:
    """``@tq.task(...)`` options become the task's: queue, hard timeout (read
    from the function at run time, as in TaskTiger), uniqueness,
    stored-executions limit and priority."""
    from taskq_core.execution import effective_hard_timeout

    assert tf.decorated_task(1, y=2) == 3
    task = tf.decorated_task.delay(1, y=2)  # type: ignore[attr-defined]
    assert task.queue == "decorated"
    assert task.hard_timeout is None  # only a call-site value is stored
    assert effective_hard_timeout(tf.tq, [task]) == 30.0
    assert task.unique is True
    assert task.max_stored_executions == 4
    assert task.priority == 5
    assert task.kwargs == {"y": 2}
    assert tf.tq.get_queue_sizes("decorated")["queued"] == 1


def test_call_site_options_override_decorator_options(app: TaskQ) -> None:
    """Options given to ``tq.delay`` win over the decorator's; the others are kept."""
    task = app.delay(tf.decorated_task, args=[1], queue="elsewhere", hard_timeout=5, priority=-3)
    assert task.queue == "elsewhere"
    assert task.hard_timeout == 5.0
    from taskq_core.execution import effective_hard_timeout

    assert effective_hard_timeout(app, [task]) == 5.0
    assert task.priority == -3
    assert task.unique is True  # from the decorator
    assert task.max_stored_executions == 4  # from the decorator
    assert app.get_queue_sizes("elsewhere")["queued"] == 1
    assert app.get_queue_sizes("decorated")["queued"] == 0


def test_undecorated_functions_can_be_delayed(app: TaskQ) -> None:
    """A plain module-level function needs no decorator to be enqueued."""
    task = app.delay(tf.record, args=[1])
    assert task.serialized_func == "tasks_fixture:record"
    assert task.state is State.QUEUED


def test_static_method_task(app: TaskQ) -> None:
    """A static method of a module-level class is a task: it is stored by its
    qualified name and a worker runs it."""
    task = tf.Holder.static_task.delay(3)  # type: ignore[attr-defined]
    assert task.serialized_func == "tasks_fixture:Holder.static_task"
    assert task.queue == "static"
    app.delay(tf.Holder.static_task, args=[4])
    app.run_worker(burst=True)
    assert tf.calls == [("static_task", 4)]


def test_default_queue_and_its_setting() -> None:
    """Tasks that name no queue go to ``default``, or to ``DEFAULT_QUEUE``."""
    plain = TaskQ(broker=MemoryBroker())
    assert plain.delay(tf.record).queue == "default"
    custom = TaskQ(broker=MemoryBroker(), config={"DEFAULT_QUEUE": "main"})
    task = custom.delay(tf.record)
    assert task.queue == "main"
    assert custom.get_queue_sizes("main")["queued"] == 1


# -- task ids ----------


def test_non_unique_ids_are_random_64_hex(app: TaskQ) -> None:
    """A non-unique task gets a random id of 64 hex characters: the same call
    twice gives two tasks."""
    first = app.delay(tf.record, args=[1])
    second = app.delay(tf.record, args=[1])
    assert HEX64.match(first.id)
    assert HEX64.match(second.id)
    assert first.id != second.id
    assert sizes(app)["queued"] == 2


def test_unique_ids_are_deterministic(app: TaskQ) -> None:
    """A unique task's id is a 64-hex hash of function and arguments: equal
    calls give equal ids (tuples and lists alike), different arguments differ."""
    a = Task(app, tf.record, args=[1, {"b": 2, "a": 1}], unique=True)
    b = Task(app, tf.record, args=(1, {"a": 1, "b": 2}), unique=True)
    c = Task(app, tf.record, args=[2], unique=True)
    d = Task(app, tf.add, args=[1, {"b": 2, "a": 1}], unique=True)
    assert HEX64.match(a.id)
    assert a.id == b.id
    assert len({a.id, c.id, d.id}) == 3


def test_unique_id_includes_the_queue(app: TaskQ) -> None:
    """Decision 1: the same unique function and arguments in two queues are two
    tasks with two ids."""
    in_a = app.delay(tf.record, args=[1], queue="a", unique=True)
    in_b = app.delay(tf.record, args=[1], queue="b", unique=True)
    assert in_a.id != in_b.id
    assert app.get_queue_sizes("a")["queued"] == 1
    assert app.get_queue_sizes("b")["queued"] == 1
    in_a_again = Task.from_id(app, "a", State.QUEUED, in_a.id)
    assert in_a_again.queue == "a"


def test_unique_task_enqueued_twice_is_one_task(app: TaskQ) -> None:
    """Enqueuing the same unique task twice leaves one task in the queue."""
    first = app.delay(tf.record, args=[1], unique=True)
    second = app.delay(tf.record, args=[1], unique=True)
    assert first.id == second.id
    assert sizes(app) == {"queued": 1, "scheduled": 0, "active": 0}


def test_unique_task_pending_copy_is_kept_unchanged(app: TaskQ) -> None:
    """Enqueuing a unique task whose copy is already scheduled keeps that copy
    as it is: its due time and its data agree (TaskTiger defect 4)."""
    first = app.delay(tf.record, args=[1], unique=True, when=dt.timedelta(hours=1))
    before = Task.from_id(app, "default", State.SCHEDULED, first.id)
    again = app.delay(tf.record, args=[1], unique=True, when=dt.timedelta(hours=5))
    assert again.id == first.id
    assert again.state is State.SCHEDULED
    after = Task.from_id(app, "default", State.SCHEDULED, first.id)
    assert after.ts == before.ts
    assert after.scheduled_at == before.scheduled_at
    assert after.data == before.data
    assert sizes(app) == {"queued": 0, "scheduled": 1, "active": 0}


def test_unique_key_uses_only_the_named_kwargs(app: TaskQ) -> None:
    """``unique_key`` makes the task unique on the named keyword arguments only
    (positional arguments and other kwargs are ignored); the string ``"a"``
    means the one key ``a``."""
    one = app.delay(tf.unique_key_task, kwargs={"a": 1, "b": 2})
    same = app.delay(tf.unique_key_task, kwargs={"a": 1, "b": 3})
    other = app.delay(tf.unique_key_task, kwargs={"a": 2, "b": 2})
    assert one.data["unique_key"] == ["a"]
    assert one.unique is True
    assert one.id == same.id
    assert one.id != other.id
    assert sizes(app)["queued"] == 2
    positional = Task(app, tf.record, args=[9], kwargs={"a": 1}, unique_key=["a"])
    positional_2 = Task(app, tf.record, args=[8], kwargs={"a": 1}, unique_key="a")
    assert positional.id == positional_2.id


def test_lock_key_string_means_one_key(app: TaskQ) -> None:
    """``lock_key="a"`` is the key ``a`` (not the characters of a string); it
    implies ``lock`` and the lock id depends on that kwarg only."""
    one = app.delay(tf.lock_key_task, kwargs={"a": 1, "b": 2})
    same_lock = Task(app, tf.lock_key_task, kwargs={"a": 1, "b": 5})
    other_lock = Task(app, tf.lock_key_task, kwargs={"a": 2, "b": 2})
    assert one.data["lock_key"] == ["a"]
    assert one.lock is True
    assert one.lock_id == same_lock.lock_id
    assert one.lock_id != other_lock.lock_id
    assert Task(app, tf.record, lock_key="ab").lock_key == ["ab"]


# -- max_queue_size ----------


def test_max_queue_size_from_the_decorator(app: TaskQ) -> None:
    """A decorator's ``max_queue_size`` is stored with the task and refuses the
    enqueue that would exceed it with ``QueueFullException``, a BaseException
    that ``except Exception`` does not catch."""
    first = app.delay(tf.limited_task, args=[1])
    app.delay(tf.limited_task, args=[2])
    assert first.data["max_queue_size"] == 2
    with pytest.raises(QueueFullException) as info:
        app.delay(tf.limited_task, args=[3])
    assert not isinstance(info.value, Exception)
    assert isinstance(info.value, BaseException)
    assert sizes(app)["queued"] == 2


def test_max_queue_size_from_delay_is_stored(app: TaskQ) -> None:
    """``max_queue_size`` given to ``tq.delay`` is stored too (TaskTiger
    dropped it) and enforced; scheduled tasks count toward the size."""
    first = app.delay(tf.record, when=dt.timedelta(hours=1), max_queue_size=1)
    assert first.data["max_queue_size"] == 1
    assert first.state is State.SCHEDULED
    with pytest.raises(QueueFullException):
        app.delay(tf.record, max_queue_size=1)
    assert sizes(app) == {"queued": 0, "scheduled": 1, "active": 0}


def test_task_delay_max_queue_size_argument(app: TaskQ) -> None:
    """``Task.delay(max_queue_size=...)`` checks the limit for that enqueue."""
    Task(app, tf.record, args=[1]).delay()
    with pytest.raises(QueueFullException):
        Task(app, tf.record, args=[2]).delay(max_queue_size=1)
    assert sizes(app)["queued"] == 1


# -- refusals at enqueue ----------


def test_lambda_is_refused(app: TaskQ) -> None:
    """A lambda cannot be imported by a worker: enqueuing it is a ValueError
    that says so, and nothing is written."""
    with pytest.raises(ValueError, match="lambda") as info:
        app.delay(lambda: None)
    assert "module-level function" in str(info.value)
    assert sizes(app) == EMPTY


def test_local_function_is_refused(app: TaskQ) -> None:
    """A function defined inside another one is refused with a clear message."""

    def local() -> None:
        pass

    with pytest.raises(ValueError, match="inside another function") as info:
        app.delay(local)
    assert "move it to module level" in str(info.value)
    assert sizes(app) == EMPTY


def test_main_function_is_refused(tmp_path: Path) -> None:
    """A function defined in ``__main__`` (a script) is refused at enqueue,
    with a message naming ``__main__`` and saying what to do."""
    script = textwrap.dedent(
        """
        from taskq_core import TaskQ

        tq = TaskQ("memory://")

        def job():
            pass

        try:
            tq.delay(job)
        except ValueError as exc:
            print("refused:", exc)
            print("sizes:", tq.get_queue_sizes("default"))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "TASKQ_URL"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "refused:" in result.stdout
    assert "__main__" in result.stdout
    assert "importable module" in result.stdout
    assert "'queued': 0" in result.stdout


def test_retry_method_lambda_is_refused_at_decoration(app: TaskQ) -> None:
    """A lambda retry method is refused when the function is decorated, not
    when the task fails."""
    with pytest.raises(ValueError, match="lambda"):
        app.task(retry_method=lambda n: 1.0)


def test_retry_method_lambda_is_refused_at_enqueue(app: TaskQ) -> None:
    """A lambda retry method given to ``delay`` is refused before anything is
    written."""
    with pytest.raises(ValueError, match="lambda"):
        app.delay(tf.record, retry_method=lambda n: 1.0)
    assert sizes(app) == EMPTY


def test_retry_options_store_a_policy(app: TaskQ) -> None:
    """``retry=True`` stores ``DEFAULT_RETRY_METHOD``; ``retry_on`` stores the
    exception classes by name; ``retry_method`` stores the given policy."""
    from taskq_core.retry import serialize_retry_method

    default = serialize_retry_method(fixed(60, 3))
    assert app.delay(tf.record, retry=True).retry_method == default
    on = app.delay(tf.record, retry_on=[tf.CustomError, KeyError])
    assert on.retry_on == ["tasks_fixture:CustomError", "builtins:KeyError"]
    assert on.retry_method == default
    custom = app.delay(tf.record, retry_method=fixed(2, 5))
    assert custom.retry_method == serialize_retry_method(fixed(2, 5))
    assert custom.retry_on is None
    assert app.delay(tf.record).retry_method is None


# -- properties and loading ----------


def test_task_properties(app: TaskQ) -> None:
    """A delayed task exposes its id, data, queue, state, function, arguments,
    executions and times (naive UTC datetimes)."""
    before = utcnow()
    task = app.delay(tf.record, args=[1, "x"], kwargs={"k": [1, 2]}, queue="props")
    after = utcnow()
    assert HEX64.match(task.id)
    assert task.data["func"] == "tasks_fixture:record"
    assert task.data["args"] == [1, "x"]
    assert task.data["kwargs"] == {"k": [1, 2]}
    assert task.queue == "props"
    assert task.state is State.QUEUED
    assert task.func is tf.record
    assert task.serialized_func == "tasks_fixture:record"
    assert task.args == [1, "x"]
    assert task.kwargs == {"k": [1, 2]}
    assert task.executions == []
    for value in (task.ts, task.scheduled_at, task.time_last_queued):
        assert isinstance(value, dt.datetime)
        assert value.tzinfo is None
        assert before - dt.timedelta(seconds=1) <= value <= after + dt.timedelta(seconds=1)


def test_from_id_loads_the_task(app: TaskQ) -> None:
    """``Task.from_id`` loads a task by queue, state and id with the same data."""
    task = app.delay(tf.record, args=[1], kwargs={"a": None}, queue="q")
    loaded = Task.from_id(app, "q", State.QUEUED, task.id)
    assert loaded.id == task.id
    assert loaded.data == task.data
    assert loaded.state is State.QUEUED
    assert loaded.queue == "q"
    assert loaded.args == [1]
    assert loaded.kwargs == {"a": None}
    assert loaded.ts == task.ts
    assert Task.from_id(app, "q", "queued", task.id).id == task.id  # state by name


def test_from_id_wrong_queue_or_state_is_not_found(app: TaskQ) -> None:
    """``from_id`` raises TaskNotFound for the wrong queue, the wrong state or
    an unknown id."""
    task = app.delay(tf.record, queue="q")
    with pytest.raises(TaskNotFound):
        Task.from_id(app, "other", State.QUEUED, task.id)
    with pytest.raises(TaskNotFound):
        Task.from_id(app, "q", State.SCHEDULED, task.id)
    with pytest.raises(TaskNotFound):
        Task.from_id(app, "q", State.QUEUED, "0" * 64)


def test_tasks_from_queue_oldest_first_and_skip_from_oldest() -> None:
    """``tasks_from_queue`` returns ``(total, tasks)`` in ascending score order
    (oldest first), and ``skip`` counts from the oldest."""
    now = [1_000_000.0]
    app = TaskQ(broker=MemoryBroker(clock=lambda: now[0]))
    ids = []
    for n in range(5):
        ids.append(app.delay(tf.record, args=[n]).id)
        now[0] += 1
    total, tasks = Task.tasks_from_queue(app, "default", State.QUEUED)
    assert total == 5
    assert [t.id for t in tasks] == ids
    assert [t.args for t in tasks] == [[0], [1], [2], [3], [4]]
    total, window = Task.tasks_from_queue(app, "default", State.QUEUED, skip=1, limit=2)
    assert total == 5
    assert [t.id for t in window] == ids[1:3]
    assert Task.tasks_from_queue(app, "empty", State.QUEUED) == (0, [])


def test_tasks_from_queue_orders_scheduled_by_due_time(app: TaskQ) -> None:
    """Scheduled tasks are listed by due time, soonest first."""
    late = app.delay(tf.record, args=["late"], when=dt.timedelta(hours=2))
    soon = app.delay(tf.record, args=["soon"], when=dt.timedelta(hours=1))
    total, tasks = Task.tasks_from_queue(app, "default", State.SCHEDULED)
    assert total == 2
    assert [t.id for t in tasks] == [soon.id, late.id]
    assert all(t.state is State.SCHEDULED for t in tasks)


def test_tasks_from_queue_keeps_a_task_whose_data_is_missing(app: TaskQ) -> None:
    """A listed task whose data has gone missing appears once, with only its id:
    never duplicated, never dropped (TaskTiger defect 2)."""
    ids = [app.delay(tf.record, args=[n]).id for n in range(3)]
    broker = app.broker
    assert isinstance(broker, MemoryBroker)
    broker._drop_data("default", ids[1])
    total, tasks = Task.tasks_from_queue(app, "default", State.QUEUED)
    assert total == 3
    assert [t.id for t in tasks] == ids
    assert tasks[1].data == {"id": ids[1]}
    assert tasks[0].args == [0]
    assert tasks[2].args == [2]
    with pytest.raises(TaskNotFound):
        Task.from_id(app, "default", State.QUEUED, ids[1])


# -- delay(when=...) ----------


def test_delay_with_timedelta_schedules(app: TaskQ) -> None:
    """``when=timedelta`` schedules the task that far from now."""
    before = utcnow()
    task = app.delay(tf.record, when=dt.timedelta(minutes=10))
    assert task.state is State.SCHEDULED
    assert sizes(app) == {"queued": 0, "scheduled": 1, "active": 0}
    loaded = Task.from_id(app, "default", State.SCHEDULED, task.id)
    assert loaded.ts is not None
    expected = before + dt.timedelta(minutes=10)
    assert abs((loaded.ts - expected).total_seconds()) < 5
    assert loaded.scheduled_at == loaded.ts


def test_delay_with_naive_datetime_is_utc(app: TaskQ) -> None:
    """A naive ``when`` datetime is UTC; an aware one is converted."""
    due = utcnow().replace(microsecond=0) + dt.timedelta(hours=1)
    task = app.delay(tf.record, args=[1], when=due)
    loaded = Task.from_id(app, "default", State.SCHEDULED, task.id)
    assert loaded.ts == due
    aware = (
        (due + dt.timedelta(hours=1))
        .replace(tzinfo=dt.UTC)
        .astimezone(dt.timezone(dt.timedelta(hours=5)))
    )
    other = app.delay(tf.record, args=[2], when=aware)
    assert Task.from_id(app, "default", State.SCHEDULED, other.id).ts == due + dt.timedelta(hours=1)


def test_delay_with_past_time_queues_now(app: TaskQ) -> None:
    """A ``when`` in the past (or now) queues the task at once."""
    task = app.delay(tf.record, when=utcnow() - dt.timedelta(minutes=5))
    assert task.state is State.QUEUED
    assert sizes(app)["queued"] == 1


def test_task_constructor_then_delay(app: TaskQ) -> None:
    """``Task(tq, func, ...)`` builds an unsaved task; its ``delay`` stores it."""
    task = Task(app, tf.record, args=[1], queue="built")
    assert task.state is None
    assert app.get_queue_sizes("built")["queued"] == 0
    assert task.delay() is None
    assert Task.from_id(app, "built", State.QUEUED, task.id).state is State.QUEUED
    assert app.get_queue_sizes("built")["queued"] == 1


# -- cancel, delete, retry, n_executions ----------


def _errored(app: TaskQ, **options: Any) -> Task:
    """A task that failed once and is now in ``error``."""
    task = app.delay(tf.fail_value_error, **options)
    app.run_worker(burst=True)
    return Task.from_id(app, task.queue, State.ERROR, task.id, load_executions=10)


def test_cancel_removes_a_scheduled_task_only(app: TaskQ) -> None:
    """``cancel`` removes a scheduled task; on a queued one it raises TaskNotFound."""
    scheduled = app.delay(tf.record, when=dt.timedelta(hours=1))
    scheduled.cancel()
    assert sizes(app) == EMPTY
    with pytest.raises(TaskNotFound):
        Task.from_id(app, "default", State.SCHEDULED, scheduled.id)
    queued = app.delay(tf.record)
    with pytest.raises(TaskNotFound):
        queued.cancel()
    assert sizes(app)["queued"] == 1


def test_unique_task_can_be_cancelled_from_a_new_object(app: TaskQ) -> None:
    """A unique task can be rebuilt from the same call and cancelled."""
    app.delay(tf.record, args=[7], unique=True, when=dt.timedelta(hours=1))
    Task(app, tf.record, args=[7], unique=True).cancel()
    assert sizes(app) == EMPTY


def test_delete_removes_an_errored_task_only(app: TaskQ) -> None:
    """``delete`` removes a task in ``error``; on a queued task it raises TaskNotFound."""
    failed = _errored(app)
    failed.delete()
    assert app.get_queue_stats() == {}
    queued = app.delay(tf.record)
    with pytest.raises(TaskNotFound):
        queued.delete()
    assert sizes(app)["queued"] == 1


def test_retry_moves_error_to_queued_and_keeps_executions(app: TaskQ) -> None:
    """``retry`` moves a task from ``error`` to ``queued`` keeping its
    execution records, so ``n_executions`` counts across: 2 after another failure."""
    failed = _errored(app)
    assert failed.n_executions() == 1
    failed.retry()
    assert failed.state is State.QUEUED
    assert sizes(app)["queued"] == 1
    requeued = Task.from_id(app, "default", State.QUEUED, failed.id, load_executions=10)
    assert len(requeued.executions) == 1
    app.run_worker(burst=True)
    again = Task.from_id(app, "default", State.ERROR, failed.id, load_executions=10)
    assert again.n_executions() == 2
    assert len(again.executions) == 2
    with pytest.raises(TaskNotFound):
        app.delay(tf.record).retry()  # not in error


def test_n_executions(app: TaskQ) -> None:
    """``n_executions`` is 0 for a new task, counts failed runs, and raises
    TaskNotFound once the task is gone (a success removes it)."""
    task = app.delay(tf.record)
    assert task.n_executions() == 0
    app.run_worker(burst=True)
    with pytest.raises(TaskNotFound):
        task.n_executions()
    assert _errored(app).n_executions() == 1


def test_update_scheduled_time_changes_only_the_due_time(app: TaskQ) -> None:
    """``update_scheduled_time`` moves a scheduled task's due time and
    ``scheduled_at`` and nothing else: arguments (an empty list included) and
    every other stored field stay exactly the same (TaskTiger defect 3)."""
    args: list[Any] = [[], {}, 1.2345678901234567, "s", [[]]]
    kwargs: dict[str, Any] = {"empty": [], "nested": {"x": []}}
    task = app.delay(tf.record, args=args, kwargs=kwargs, when=dt.timedelta(hours=1))
    before = Task.from_id(app, "default", State.SCHEDULED, task.id)
    new_due = utcnow().replace(microsecond=0) + dt.timedelta(hours=3)
    task.update_scheduled_time(new_due)
    after = Task.from_id(app, "default", State.SCHEDULED, task.id)
    assert after.data == before.data
    assert after.args == args
    assert after.kwargs == kwargs
    assert after.ts == new_due
    assert after.scheduled_at == new_due
    assert before.scheduled_at != new_due
    assert after.time_last_queued == before.time_last_queued
    assert sizes(app) == {"queued": 0, "scheduled": 1, "active": 0}


def test_update_scheduled_time_needs_a_scheduled_task(app: TaskQ) -> None:
    """``update_scheduled_time`` on a queued task raises TaskNotFound."""
    task = app.delay(tf.record)
    with pytest.raises(TaskNotFound):
        task.update_scheduled_time(dt.timedelta(hours=1))


def test_update_scheduled_time_to_the_past_runs_it(app: TaskQ) -> None:
    """A scheduled task moved to a past time runs at the next worker pass."""
    task = app.delay(tf.record, args=["moved"], when=dt.timedelta(hours=1))
    task.update_scheduled_time(utcnow() - dt.timedelta(seconds=1))
    app.run_worker(burst=True)
    assert tf.calls == [(("moved",), {})]
    assert app.get_queue_stats() == {}


# -- execute ----------


def test_execute_runs_inline(app: TaskQ) -> None:
    """``Task.execute`` runs the function now and returns its result, with no
    broker writes; exceptions propagate."""
    task = Task(app, tf.add, args=[2, 3])
    assert task.execute() == 5
    assert tf.calls == [("add", 2, 3)]
    assert app.get_queue_stats() == {}
    with pytest.raises(ValueError, match="value error"):
        Task(app, tf.fail_value_error).execute()
    assert app.get_queue_stats() == {}


def test_ts_tracks_the_state_score(app: TaskQ) -> None:
    """``ts`` of an errored task is the time it failed."""
    start = time.time()
    failed = _errored(app)
    assert failed.ts is not None
    failed_at = failed.ts.replace(tzinfo=dt.UTC).timestamp()
    assert start - 1 <= failed_at <= time.time() + 1
