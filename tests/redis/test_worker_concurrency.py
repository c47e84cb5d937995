"""``taskq worker -c N`` as real processes against a real Redis: N tasks at
once with every executor, a stuck task killed while the others go on, pool
children recycled, SIGTERM with N running, kill -9 with N running."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from worker_procs import WorkerPool, bound_app, lines, running, wait_for  # noqa: E402

pytestmark = [pytest.mark.redis, pytest.mark.slow]

EXECUTORS = ["fork", "pool", "threads", "sync", "asyncio"]


@pytest.fixture
def workers(
    redis_url: str, redis_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WorkerPool]:
    pool = WorkerPool(redis_url, tmp_path, app="concurrency_app:tq", pythonpath=[HERE])
    with running(pool, monkeypatch) as started:
        yield started


@pytest.fixture
def app(workers: WorkerPool) -> Any:
    return bound_app("concurrency_app", workers.url)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_n_tasks_run_at_once_each_with_its_own_current_task(
    workers: WorkerPool, app: Any, executor: str
) -> None:
    """With ``-c 3`` three tasks are running at the same time (each waits
    until all three started), and each one's ``current_task`` is its own."""
    func = app.atogether if executor == "asyncio" else app.together
    tasks = [func.delay(f"t{i}", 3) for i in range(3)]
    workers.burst("--executor", executor, "-c", "3", timeout=60)
    starts = lines(workers.trace_dir / "starts")
    assert sorted(line.split()[2] for line in starts) == sorted(t.id for t in tasks)
    assert len(lines(workers.trace_dir / "finished")) == 3
    assert app.tq.get_queue_stats() == {}


@pytest.mark.parametrize("executor", ["fork", "pool", "threads"])
def test_a_stuck_task_is_stopped_while_the_others_go_on(
    workers: WorkerPool, app: Any, executor: str
) -> None:
    """A task past its hard timeout is killed (fork, pool) or interrupted and
    failed (threads) while the other slot keeps running tasks."""
    from taskq_core import Task

    app.stuck.delay()
    quick = [app.whoami.delay(str(i)) for i in range(6)]
    workers.burst("--executor", executor, "-c", "2", timeout=60)
    assert len(lines(workers.trace_dir / "pids")) == len(quick)
    _, failed = Task.tasks_from_queue(app.tq, "default", "error", load_executions=1)
    assert [t.executions[-1]["exception_name"] for t in failed] == [
        "taskq_core.exceptions:JobTimeoutException"
    ]


def test_pool_children_are_recycled_after_max_tasks(workers: WorkerPool, app: Any) -> None:
    """``--max-tasks-per-child 2``: no pool child runs more than two tasks."""
    for i in range(8):
        app.whoami.delay(str(i))
    workers.burst("--executor", "pool", "-c", "2", "--max-tasks-per-child", "2", timeout=60)
    pids = [line.split()[1] for line in lines(workers.trace_dir / "pids")]
    assert len(pids) == 8
    assert max(pids.count(pid) for pid in set(pids)) <= 2
    assert len(set(pids)) >= 4
    assert str(workers.procs[0].pid) not in pids  # never in the worker itself


def test_pool_children_are_recycled_past_max_memory(workers: WorkerPool, app: Any) -> None:
    """``--max-memory-per-child`` below any child's RSS: every task gets a
    fresh child."""
    for i in range(4):
        app.whoami.delay(str(i))
    workers.burst("--executor", "pool", "--max-memory-per-child", "1", timeout=60)
    pids = [line.split()[1] for line in lines(workers.trace_dir / "pids")]
    assert len(pids) == 4
    assert len(set(pids)) == 4
    assert "replacing pool child" in workers.log(0)


@pytest.mark.parametrize("executor", ["fork", "pool", "threads"])
def test_sigterm_with_n_running_lets_all_finish(
    workers: WorkerPool, app: Any, executor: str
) -> None:
    """SIGTERM while three tasks run: no new task starts, all three finish,
    the worker exits 0; the task still queued stays queued."""
    for i in range(3):
        app.together.delay(f"t{i}", 3, 1.0)
    app.whoami.delay("later")
    proc = workers.start("--executor", executor, "-c", "3")
    wait_for(lambda: len(lines(workers.trace_dir / "starts")) == 3, what="three running")
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, workers.log()
    assert len(lines(workers.trace_dir / "finished")) == 3
    assert not lines(workers.trace_dir / "pids")
    assert app.tq.get_queue_sizes("default") == {"queued": 1, "scheduled": 0, "active": 0}


@pytest.mark.parametrize("executor", ["fork", "threads"])
def test_second_sigterm_returns_all_running_tasks(
    workers: WorkerPool, app: Any, executor: str
) -> None:
    """A second SIGTERM returns every running task to queued (no failed
    record) and the worker exits 0."""
    for i in range(3):
        app.together.delay(f"t{i}", 3, 30.0)
    proc = workers.start("--executor", executor, "-c", "3")
    wait_for(lambda: len(lines(workers.trace_dir / "starts")) == 3, what="three running")
    os.killpg(proc.pid, signal.SIGTERM)
    wait_for(lambda: "stop requested" in workers.log(), what="first stop logged")
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, workers.log()
    assert app.tq.get_queue_sizes("default") == {"queued": 3, "scheduled": 0, "active": 0}


@pytest.mark.parametrize("executor", ["fork", "threads"])
def test_kill_9_with_n_running_recovers_all(workers: WorkerPool, app: Any, executor: str) -> None:
    """kill -9 of a worker running three tasks: another worker recovers all
    three (worker lost, retried per their policy) and runs them again."""
    for i in range(3):
        app.together.delay(f"t{i}", 3, 30.0)
    first = workers.start("--executor", executor, "-c", "3")
    wait_for(lambda: len(lines(workers.trace_dir / "starts")) == 3, what="three running")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    assert app.tq.get_queue_sizes("default")["active"] == 3
    (workers.trace_dir / "starts").unlink()
    workers.start("--executor", executor, "-c", "3")
    wait_for(
        lambda: sorted(lines(workers.trace_dir / "finished")) == ["t0 1", "t1 1", "t2 1"],
        timeout=60,
        what="all three run again",
    )
    assert "queueing expired task" in workers.log(1)
