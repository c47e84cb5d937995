"""``ALWAYS_EAGER``: tasks due now run inline in ``delay`` (for tests and
scripts), tasks for later are stored as usual."""

from __future__ import annotations

import datetime as dt

import pytest
import tasks_fixture as tf

from taskq_core import QueueFullException, SerializationError, State, Task, TaskQ
from taskq_core.brokers.memory import MemoryBroker

pytestmark = pytest.mark.usefixtures("clean_calls")


@pytest.fixture
def app() -> TaskQ:
    return TaskQ(broker=MemoryBroker(), config={"ALWAYS_EAGER": True})


def test_task_delay_returns_the_result(app: TaskQ) -> None:
    """``Task.delay`` runs the function at once and returns its result;
    nothing is stored."""
    assert Task(app, tf.add, args=[2, 3]).delay() == 5
    assert tf.calls == [("add", 2, 3)]
    assert app.get_queue_stats() == {}


def test_tq_delay_returns_the_task(app: TaskQ) -> None:
    """``tq.delay`` runs the function and returns the Task (as TaskTiger does)."""
    task = app.delay(tf.add, args=[1, 1])
    assert isinstance(task, Task)
    assert task.serialized_func == "tasks_fixture:add"
    assert tf.calls == [("add", 1, 1)]
    assert app.get_queue_stats() == {}


def test_decorated_delay_runs_inline() -> None:
    """``f.delay`` on a function declared on an eager app runs it at once."""
    eager = TaskQ(broker=MemoryBroker(), config={"ALWAYS_EAGER": True})
    decorated = eager.task(queue="eager")(tf.record)
    try:
        task = decorated.delay(1, k=2)  # type: ignore[attr-defined]
        assert isinstance(task, Task)
        assert tf.calls == [((1,), {"k": 2})]
        assert eager.get_queue_stats() == {}
    finally:
        del tf.record._taskq_options  # type: ignore[attr-defined]
        del tf.record.delay  # type: ignore[attr-defined]


def test_future_task_is_stored_not_run(app: TaskQ) -> None:
    """A task for later is stored as scheduled and not run."""
    task = app.delay(tf.add, args=[1, 2], when=dt.timedelta(hours=1))
    assert tf.calls == []
    assert task.state is State.SCHEDULED
    assert app.get_queue_sizes("default") == {"queued": 0, "scheduled": 1, "active": 0}


def test_past_when_runs_inline(app: TaskQ) -> None:
    """A ``when`` already past runs inline like no ``when``."""
    past = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=5)
    assert Task(app, tf.add, args=[4, 4]).delay(when=past) == 8
    assert app.get_queue_stats() == {}


def test_exceptions_propagate(app: TaskQ) -> None:
    """An exception in the task reaches the caller of ``delay``; nothing is stored."""
    with pytest.raises(ValueError, match="value error in a task"):
        app.delay(tf.fail_value_error)
    assert app.get_queue_stats() == {}


def test_serialization_is_still_checked(app: TaskQ) -> None:
    """Arguments are checked as if the task were stored: the function does not run."""
    with pytest.raises(SerializationError):
        app.delay(tf.add, args=[1, {2}])
    assert tf.calls == []


def test_batch_function_gets_the_params_list(app: TaskQ) -> None:
    """A batch function run eagerly receives a one-element params list and
    sees its task in ``current_tasks``."""
    task = app.delay(tf.batch_task, args=[1], kwargs={"k": "v"})
    assert tf.calls == [("batch", [{"args": [1], "kwargs": {"k": "v"}}], [task.id])]


def test_custom_runner_eager_result_is_returned(app: TaskQ) -> None:
    """The result of the runner's ``run_eager_task`` is what ``delay`` returns."""
    task = Task(app, tf.add, args=[1, 2], runner_class=tf.ConstantRunner)
    assert task.delay() == 123
    assert tf.calls == [("runner eager", task.id), ("add", 1, 2)]


def test_max_queue_size_is_still_checked(app: TaskQ) -> None:
    """``max_queue_size`` is checked against the stored tasks before running."""
    app.delay(tf.record, when=dt.timedelta(hours=1))
    with pytest.raises(QueueFullException):
        app.delay(tf.record, args=["now"], max_queue_size=1)
    assert tf.calls == []
    assert Task(app, tf.add, args=[1, 1]).delay(max_queue_size=2) == 2


def test_eager_off_by_default() -> None:
    """Without ``ALWAYS_EAGER`` ``delay`` only stores the task."""
    app = TaskQ(broker=MemoryBroker())
    assert Task(app, tf.add, args=[1, 2]).delay() is None
    assert tf.calls == []
    assert app.get_queue_sizes("default")["queued"] == 1
