"""The pool executor: one reused child process runs many tasks; whatever kills
or hangs it costs only that child."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pool_tasks

from taskq_core import Task, TaskQ
from taskq_core.brokers.memory import MemoryBroker

CONFIG = {
    "STATS_INTERVAL": 0,
    "ACTIVE_TASK_UPDATE_TIMER": 0.2,
    "ACTIVE_TASK_UPDATE_TIMEOUT": 1.0,
    "POOL_MAX_TASKS_PER_CHILD": 5,
}


@pytest.fixture
def tq(
    redis_url: str, redis_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TaskQ]:
    monkeypatch.setenv("TASKQ_TEST_DIR", str(tmp_path))
    app = TaskQ(redis_url, config=CONFIG)
    yield app
    app.broker.close()


def trace(tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "pool-trace"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def test_one_child_runs_many_tasks_and_is_replaced_after_its_share(
    tq: TaskQ, tmp_path: Path
) -> None:
    """Twelve tasks run in children, not the worker; a child serves
    POOL_MAX_TASKS_PER_CHILD (5) tasks, then a fresh one takes over: 3 children."""
    for i in range(12):
        tq.delay(pool_tasks.whoami, args=[str(i)])
    tq.run_worker(executor="pool", burst=True)
    rows = trace(tmp_path)
    assert [label for label, _ in rows] == [str(i) for i in range(12)]
    pids = [pid for _, pid in rows]
    assert str(os.getpid()) not in pids
    assert [len(set(pids[i : i + 5])) for i in (0, 5, 10)] == [1, 1, 1]
    assert len(set(pids)) == 3
    assert tq.get_queue_stats() == {}


def test_a_failing_task_keeps_the_child(tq: TaskQ, tmp_path: Path) -> None:
    """An exception is an ordinary failure: recorded, and the same child runs
    the next task."""
    tq.delay(pool_tasks.whoami, args=["before"])
    tq.delay(pool_tasks.boom)
    tq.delay(pool_tasks.whoami, args=["after"])
    tq.run_worker(executor="pool", burst=True)
    rows = trace(tmp_path)
    assert [label for label, _ in rows] == ["before", "after"]
    assert rows[0][1] == rows[1][1]
    _, failed = Task.tasks_from_queue(tq, "default", "error", load_executions=1)
    assert [t.executions[-1]["exception_name"] for t in failed] == ["builtins:ValueError"]


def test_a_child_that_exits_is_recorded_and_replaced(tq: TaskQ, tmp_path: Path) -> None:
    """os._exit inside a task ends the child: the task is failed with a record
    saying how, and a new child runs the next task."""
    tq.delay(pool_tasks.whoami, args=["before"])
    tq.delay(pool_tasks.exit_hard, args=[3])
    tq.delay(pool_tasks.whoami, args=["after"])
    tq.run_worker(executor="pool", burst=True)
    rows = trace(tmp_path)
    assert [label for label, _ in rows] == ["before", "after"]
    assert rows[0][1] != rows[1][1]
    _, failed = Task.tasks_from_queue(tq, "default", "error", load_executions=1)
    (task,) = failed
    assert "exited with status 3" in task.executions[-1]["traceback"]


def test_a_hung_child_is_killed_and_replaced(tq: TaskQ, tmp_path: Path) -> None:
    """A task ignoring SIGALRM is killed by the worker after its hard timeout
    plus ACTIVE_TASK_UPDATE_TIMEOUT; the timeout is recorded and a new child
    runs the next task."""
    tq.delay(pool_tasks.hang, hard_timeout=0.3)
    tq.delay(pool_tasks.whoami, args=["after"])
    tq.run_worker(executor="pool", burst=True)
    assert [label for label, _ in trace(tmp_path)] == ["after"]
    _, failed = Task.tasks_from_queue(tq, "default", "error", load_executions=1)
    (task,) = failed
    assert task.executions[-1]["exception_name"] == "taskq_core.exceptions:JobTimeoutException"


def test_pool_needs_a_broker_outside_the_process() -> None:
    """With the memory broker the pool executor is refused, saying why."""
    tq = TaskQ(broker=MemoryBroker())
    with pytest.raises(ValueError, match="executor='sync'"):
        tq.run_worker(executor="pool", burst=True)


def test_cli_worker_with_the_pool_executor(tq: TaskQ, tmp_path: Path, redis_url: str) -> None:
    """`taskq worker --executor pool --burst` runs the tasks in one child and exits
    0, leaving no child process behind."""
    from worker_procs import WorkerPool

    for i in range(3):
        tq.delay(pool_tasks.whoami, args=[str(i)])
    pool = WorkerPool(redis_url, tmp_path, pythonpath=[Path(__file__).resolve().parent])
    try:
        pool.burst("--executor", "pool", app=None)
    finally:
        pool.cleanup()
    rows = trace(tmp_path)
    assert [label for label, _ in rows] == ["0", "1", "2"]
    (child,) = {int(pid) for _, pid in rows}
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)  # the worker let its child go and reaped it before exiting
