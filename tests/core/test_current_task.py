"""``tq.current_task`` and ``tq.current_tasks``: the running task(s), inline
(eager, ``execute``) and under the worker, and the errors outside a task."""

from __future__ import annotations

import threading

import pytest
import tasks_fixture as tf

from taskq_core import Task, TaskQ
from taskq_core.brokers.memory import MemoryBroker

OUTSIDE = "Must be accessed from within a task."
IN_BATCH = "Must use current_tasks in a batch task."
NOT_BATCH = "Must use current_task in a non-batch task."


pytestmark = pytest.mark.usefixtures("clean_calls")


@pytest.fixture
def app() -> TaskQ:
    return TaskQ(broker=MemoryBroker())


@pytest.fixture
def eager_app() -> TaskQ:
    return TaskQ(broker=MemoryBroker(), config={"ALWAYS_EAGER": True})


def test_outside_a_task_both_raise(app: TaskQ) -> None:
    """Outside a task ``current_task`` and ``current_tasks`` raise RuntimeError."""
    with pytest.raises(RuntimeError, match=OUTSIDE):
        app.current_task  # noqa: B018
    with pytest.raises(RuntimeError, match=OUTSIDE):
        app.current_tasks  # noqa: B018


def test_current_task_in_eager_mode(eager_app: TaskQ) -> None:
    """An eager run sees its own task as ``current_task``; afterwards it is
    outside a task again."""
    task = eager_app.delay(tf.current_task_id)
    assert tf.calls == [("current", task.id)]
    with pytest.raises(RuntimeError, match=OUTSIDE):
        eager_app.current_task  # noqa: B018


def test_current_task_with_execute(app: TaskQ) -> None:
    """``Task.execute`` sets the current task too."""
    task = Task(app, tf.current_task_id)
    assert task.execute() == task.id


def test_current_task_under_the_worker(app: TaskQ) -> None:
    """Under the worker each task sees itself as ``current_task``."""
    first = app.delay(tf.current_task_id)
    second = app.delay(tf.current_task_id)
    app.run_worker(burst=True)
    assert sorted(tf.calls) == sorted([("current", first.id), ("current", second.id)])
    with pytest.raises(RuntimeError, match=OUTSIDE):
        app.current_task  # noqa: B018


def test_current_tasks_in_a_non_batch_task(app: TaskQ, eager_app: TaskQ) -> None:
    """``current_tasks`` in a non-batch task says to use ``current_task``."""
    eager_app.delay(tf.current_task_error)
    app.delay(tf.current_task_error)
    app.run_worker(burst=True)
    assert tf.calls == [("current_tasks error", NOT_BATCH)] * 2


def test_current_task_in_a_batch_task(app: TaskQ, eager_app: TaskQ) -> None:
    """``current_task`` in a batch function says to use ``current_tasks``."""
    eager_app.delay(tf.batch_current_task_error)
    app.delay(tf.batch_current_task_error)
    app.run_worker(burst=True)
    assert tf.calls == [("current_task error", IN_BATCH)] * 2


def test_current_tasks_in_a_worker_batch_follow_the_params() -> None:
    """In a batch run ``current_tasks`` lists the tasks in the order of the params."""
    app = TaskQ(broker=MemoryBroker(), config={"BATCH_QUEUES": {"batch": 3}})
    tasks = [app.delay(tf.batch_task, args=[n], queue="batch") for n in range(3)]
    app.run_worker(burst=True)
    assert len(tf.calls) == 1
    _, params, ids = tf.calls[0]
    assert ids == [t.id for t in tasks]
    assert [p["args"] for p in params] == [[0], [1], [2]]


def test_current_task_is_shared_by_every_app(app: TaskQ, eager_app: TaskQ) -> None:
    """The running task is visible through any TaskQ object (the module's
    ``tq`` in the task function, here a different one runs it)."""
    task = eager_app.delay(tf.current_task_id)
    assert tf.calls == [("current", task.id)]


def _wait_and_report(app_id: int, label: str) -> None:
    """A task that waits until its twin in the other thread runs too, records
    which task it sees as current, and waits again, so both are inside their
    run while either looks."""
    tq = _THREAD_APPS[app_id]
    _THREAD_BARRIER.wait(timeout=10)
    _THREAD_SEEN.append((label, tq.current_task.id))
    _THREAD_BARRIER.wait(timeout=10)


_THREAD_APPS: dict[int, TaskQ] = {}
_THREAD_SEEN: list[tuple[str, str]] = []
_THREAD_BARRIER = threading.Barrier(2)


def test_threads_each_see_their_own_current_task(app: TaskQ) -> None:
    """Two tasks running at once in two threads of one process each see
    themselves as ``current_task`` (the running task is per thread, not
    process-global)."""
    _THREAD_APPS[id(app)] = app
    _THREAD_SEEN.clear()
    tasks = {
        label: Task(app, _wait_and_report, args=[id(app)], kwargs={"label": label})
        for label in ("a", "b")
    }
    threads = [threading.Thread(target=task.execute) for task in tasks.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(_THREAD_SEEN) == sorted((label, t.id) for label, t in tasks.items())
    with pytest.raises(RuntimeError, match=OUTSIDE):
        app.current_task  # noqa: B018
