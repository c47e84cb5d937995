"""``taskq worker -c N`` as real processes against a real Redis: N tasks at
once with every executor, each in the process its executor says, and pool
children recycled. The worker suite's scenarios (crashes, timeouts, signals,
locks...) run at ``-c N`` too, in ``test_worker_process.py``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from worker_procs import MODES, Mode, N, WorkerPool, bound_app, lines, running  # noqa: E402

pytestmark = [pytest.mark.redis, pytest.mark.slow]

#: the class ``ready`` names for each mode: ``sync -c N`` is the threads executor
EXECUTOR_CLASSES = {
    "fork": "ForkExecutor",
    "pool": "PoolExecutor",
    "threads": "ThreadsExecutor",
    "asyncio": "AsyncioExecutor",
    "sync": "SyncExecutor",
}


@pytest.fixture
def workers(
    redis_url: str, redis_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WorkerPool]:
    pool = WorkerPool(redis_url, tmp_path, app="worker_app:tq", pythonpath=[HERE])
    with running(pool, monkeypatch) as started:
        yield started


@pytest.fixture
def app(workers: WorkerPool) -> Any:
    return bound_app("worker_app", workers.url)


@pytest.mark.parametrize("mode", [*MODES, Mode("sync", N)], ids=str)
def test_n_tasks_run_at_once_each_with_its_own_current_task(
    workers: WorkerPool, app: Any, mode: Mode
) -> None:
    """A --burst worker with ``-c N`` runs N tasks (sync and async) at the
    same time (each fails unless all N started), each with its own
    ``current_task``, in child processes (fork: one per task; pool: one per
    slot) or in the worker's own process; then N more, and exits 0."""
    n = mode.concurrency
    funcs = [mode.task(app, "together", i) for i in range(2 * n)]
    tasks = [app.tq.delay(func, args=[f"t{i}", n]) for i, func in enumerate(funcs)]
    workers.burst(*mode.args, timeout=60)
    starts = [line.split() for line in lines(workers.trace_dir / "starts")]
    assert sorted(task_id for _, _, task_id in starts) == sorted(t.id for t in tasks)
    assert len(lines(workers.trace_dir / "finished")) == 2 * n
    assert app.tq.get_queue_stats() == {}
    worker = str(workers.procs[0].pid)
    pids = [pid for _, pid, _ in starts]
    first = set(pids[:n])
    if mode.forks:
        assert worker not in pids
        assert len(first) == n  # the N running at once are N processes
    else:
        assert set(pids) == {worker}
    if mode.executor == "fork":
        assert len(set(pids)) == 2 * n  # a fresh child per task
    expected = "ThreadsExecutor" if mode == Mode("sync", N) else EXECUTOR_CLASSES[mode.executor]
    assert f'"executor": "{expected}"' in workers.log()


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
