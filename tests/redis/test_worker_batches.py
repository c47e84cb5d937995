"""Batch queues whose pops mix functions and runner classes (Decisions 12 and
13), with real `taskq worker` processes (every executor, one group at a time
and N at once) against a real Redis: every popped task runs exactly once, in
groups that never mix functions or runner classes; a plain task that kills
its child process fails only itself (fork, pool); no task is left
``active``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from taskq_core import Task

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from worker_procs import MODES, Mode, WorkerPool, bound_app, lines, running  # noqa: E402

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def workers(
    redis_url: str, redis_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WorkerPool]:
    pool = WorkerPool(redis_url, tmp_path, app="batch_app:tq", pythonpath=[HERE])
    with running(pool, monkeypatch) as started:
        yield started


@pytest.fixture
def app(workers: WorkerPool) -> Any:
    return bound_app("batch_app", workers.url)


def calls(workers: WorkerPool) -> list[tuple[str, str, list[str]]]:
    """``(function, runner, [ids])`` of every call, in order."""
    found = []
    for line in lines(workers.trace_dir / "calls"):
        name, runner, ids = line.split()
        found.append((name, runner, ids.split(",")))
    return found


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_mixed_pops_run_every_task_exactly_once(workers: WorkerPool, app: Any, mode: Mode) -> None:
    """22 tasks of three batch functions (one ``async def``), two plain ones
    and two runner classes, popped 4 at a time by a --burst worker (with N
    slots, the groups of a pop run at once): every task runs exactly once;
    each batch call has one function and one runner; the plain task that
    ends its process (fork, pool: in the worker's own process it would end
    the worker) goes to error alone (the plain tasks popped with it succeed
    once); the worker exits 0 leaving nothing queued or active."""
    kinds = [
        (app.batch_a, None),
        (app.plain, None),
        (app.batch_a, app.OtherRunner),
        (app.plain_exits if mode.forks else app.batch_async, None),
        (app.batch_b, None),
        (app.plain, app.OtherRunner),
        (app.batch_async, app.OtherRunner),
        (app.batch_a, None),
    ]
    expected: dict[str, tuple[str, str]] = {}
    exits = []
    for i in range(22):
        func, runner = kinds[(i * 3) % len(kinds)]
        task = app.tq.delay(func, args=[i], runner_class=runner)
        expected[task.id] = (func.__name__, runner.__name__ if runner else "DefaultRunner")
        if func is app.plain_exits:
            exits.append(task.id)
    workers.burst(*mode.args)
    seen: list[str] = []
    for name, runner, ids in calls(workers):
        assert {expected[task_id] for task_id in ids} == {(name, runner)}, (name, runner, ids)
        if not name.startswith("batch"):
            assert len(ids) == 1
        seen.extend(ids)
    assert sorted(seen) == sorted(expected)
    assert app.tq.get_queue_stats() == ({"mix": {"error": len(exits)}} if exits else {})
    _, errored = Task.tasks_from_queue(app.tq, "mix", "error", load_executions=5)
    assert sorted(t.id for t in errored) == sorted(exits)
    for task in errored:
        (record,) = task.executions
        assert "exited with status 3" in record["exception"]


@pytest.mark.parametrize("executor", ["fork", "sync"])
def test_later_tasks_of_a_pop_stay_alive_while_an_earlier_one_runs(
    workers: WorkerPool, app: Any, executor: str
) -> None:
    """A pop of [a plain task that runs 3 s, a plain task of another
    function] by a worker with one slot: while the first runs (past
    ACTIVE_TASK_UPDATE_TIMEOUT = 1.5 s), the second waits for the slot and is
    kept alive by the heartbeat, so another worker's recovery pass never
    takes it for lost; it then runs once and succeeds. (The heartbeat comes
    from the worker's loop with every executor but sync, whose loop runs the
    task: there a thread of its own keeps it.)"""
    slow = app.tq.delay(app.plain_slow, args=[3.0])
    quick = app.tq.delay(app.plain, args=[1])
    watcher = workers.start("-q", "elsewhere")  # recovers expired tasks of every queue
    workers.wait_ready(0)
    workers.burst("-q", "mix", "--executor", executor)
    assert watcher.poll() is None
    assert [c[0] for c in calls(workers)] == ["plain_slow", "plain"]
    assert [c[2] for c in calls(workers)] == [[slow.id], [quick.id]]
    assert app.tq.get_queue_stats() == {}
    assert "expired task" not in workers.log(0)


@pytest.mark.parametrize(
    ("executor", "mode", "shown"),
    [
        ("fork", "exit", "exited with status 3"),
        ("pool", "exit", "exited with status 3"),
        ("fork", "hang", "the child process was killed by the worker"),
        ("pool", "hang", "the child process was killed by the worker"),
    ],
)
def test_a_crash_in_a_group_of_plain_tasks_costs_only_that_task(
    workers: WorkerPool, app: Any, executor: str, mode: str, shown: str
) -> None:
    """Decision 12: plain tasks of one function popped together run in one
    child, each with its own outcome. When the second one ends the child
    (os._exit) or hangs until the worker kills it, the first keeps its
    success (it is not run again), only the second goes to error, and the
    third, which had not started, goes back to the queue and runs once.
    (Only fork and pool: in the other executors the tasks run in the worker's
    own process, whose crash is the worker's: the kill -9 tests of
    test_worker_process.py.)"""
    first = app.tq.delay(app.plain_maybe, args=[1, "ok"])
    crash = app.tq.delay(app.plain_maybe, args=[2, mode])
    third = app.tq.delay(app.plain_maybe, args=[3, "ok"])
    workers.burst("--executor", executor)
    ran = [ids[0] for name, _, ids in calls(workers)]
    assert sorted(ran) == sorted([first.id, crash.id, third.id]), ran
    assert app.tq.get_queue_stats() == {"mix": {"error": 1}}
    stored = Task.from_id(app.tq, "mix", "error", crash.id, load_executions=5)
    (record,) = stored.executions
    assert shown in record["exception"]
