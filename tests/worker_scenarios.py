"""The process-level worker scenarios every broker runs: real `taskq worker`
processes on one broker, whatever it is.

Each class here is a suite of scenarios (like the broker contract suite of
``taskq_core.testing.contract``): a test module of a distribution subclasses
it as ``Test...`` and gives its ``broker_url`` fixture, a URL on which every
test starts with no task (the Redis tests: their private server, emptied; the
SQLite tests: a file in ``tmp_path``; the PostgreSQL tests: the private
server's test database, emptied), and adds what only its broker has (a Redis
restart, a SQLite file locked by another program, connections cut by the
PostgreSQL server...)::

    class TestWorkerProcessOnRedis(ProcessScenarios):
        @pytest.fixture
        def broker_url(self, redis_url: str, redis_client: Any) -> str:
            return redis_url

The scenarios run with every executor, one task at a time and N at once
(``MODES`` of ``tests/worker_procs.py``; at ``-c N`` sync and ``async def``
tasks run side by side). The apps the workers run (``worker_app``,
``batch_app``, ``fork_ahead_app``, ``periodic_module``) are in this folder
and take their broker from ``TASKQ_URL``.

* :class:`ProcessScenarios`: kill -9 with tasks running, hard timeouts,
  SIGTERM (idle, busy, twice), locks across workers and slots, unique tasks,
  and periodic tasks of a CLI module;
* :class:`ConcurrencyScenarios`: ``-c N`` runs N tasks at once, each in the
  process its executor says; pool children recycled;
* :class:`BatchScenarios`: pops that mix functions and runner classes, and a
  crash in a group of plain tasks;
* :class:`ForkAheadScenarios`: the ``fork`` executor's child forked ahead.
"""

from __future__ import annotations

import inspect
import itertools
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from taskq_core import Task
from worker_procs import (
    EACH_EXECUTOR,
    MODES,
    Mode,
    N,
    WorkerPool,
    bound_app,
    lines,
    release,
    running,
    wait_for,
)

__all__ = [
    "TIMEOUT",
    "BatchScenarios",
    "ConcurrencyScenarios",
    "ForkAheadScenarios",
    "ProcessScenarios",
    "worker_app_pool",
]

#: this folder: the apps the workers run are importable from it
HERE = Path(__file__).resolve().parent
TIMEOUT = "taskq_core.exceptions:JobTimeoutException"

each_mode = pytest.mark.parametrize("mode", MODES, ids=str)
#: the modes whose executor can stop a task that runs in the worker's process
#: (sync cannot: its own tests say what it does instead)
stopping_modes = pytest.mark.parametrize(
    "mode", [m for m in MODES if m.executor != "sync"], ids=str
)


def worker_app_pool(url: str, trace_dir: Path) -> WorkerPool:
    """Workers on ``url`` running ``worker_app`` (unless told otherwise)."""
    return WorkerPool(url, trace_dir, app="worker_app:tq", pythonpath=[HERE])


class _OnBroker:
    """The fixtures of every suite: ``workers`` (a :class:`WorkerPool` on the
    broker running :attr:`app_module`, this process pointed at the same
    broker and trace directory) and ``app`` (that module, bound to the broker
    in this process, to enqueue and inspect)."""

    #: the module whose ``tq`` the workers run (``--app <module>:tq``)
    app_module: ClassVar[str] = "worker_app"

    @pytest.fixture
    def broker_url(self) -> str:
        """The URL of a broker with no task on it: each broker's test class gives it."""
        raise NotImplementedError("a test class of the suite gives the broker_url fixture")

    @pytest.fixture
    def workers(
        self, broker_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[WorkerPool]:
        pool = WorkerPool(broker_url, tmp_path, app=f"{self.app_module}:tq", pythonpath=[HERE])
        with running(pool, monkeypatch) as started:
            yield started

    @pytest.fixture
    def app(self, workers: WorkerPool) -> Iterator[Any]:
        module = bound_app(self.app_module, workers.url)
        try:
            yield module
        finally:
            release(module.tq)


# -- the worker suite --------------------------------------------------------------


def enqueue_together(app: Any, mode: Mode, hold: float) -> list[Task]:
    """As many tasks as the mode runs at once, sync and async alternating; on
    their first run they wait for each other, then hold ``hold`` seconds."""
    n = mode.concurrency
    return [app.tq.delay(mode.task(app, "together", i), args=[f"t{i}", n, hold]) for i in range(n)]


def wait_running(workers: WorkerPool, n: int) -> None:
    wait_for(lambda: len(lines(workers.trace_dir / "starts")) == n, what=f"{n} tasks running")


def finished(workers: WorkerPool) -> list[str]:
    """``label run`` of every task that finished, sorted."""
    return sorted(lines(workers.trace_dir / "finished"))


def stopped_by(executor: str, func: Any) -> tuple[str, ...]:
    """What the execution record of a task stopped at its hard timeout may say."""
    is_async = inspect.iscoroutinefunction(func)
    # SIGALRM, or the task's own event loop, in the process that runs it
    itself = "task exceeded its hard timeout"
    if executor == "asyncio" and is_async:
        return ("the coroutine was cancelled",)
    if executor in ("threads", "asyncio"):
        interrupted = "the task's thread was interrupted"
        # an async task's own loop may cancel it before the executor sees its deadline
        return (interrupted, itself) if is_async else (interrupted,)
    if executor in ("fork", "pool") and not is_async:
        return ("the child process was killed by the worker",)
    return (itself,)


def check_stopped(
    workers: WorkerPool, app: Any, executor: str, stuck: list[Any], tasks: list[Task]
) -> None:
    """Each stuck task is in error with one JobTimeoutException record saying
    how it was stopped; it said it was stopped, unless its process was killed."""
    for i, (func, task) in enumerate(zip(stuck, tasks, strict=True)):
        stored = Task.from_id(app.tq, "default", "error", task.id, load_executions=5)
        (record,) = stored.executions
        assert record["exception_name"] == TIMEOUT
        how = stopped_by(executor, func)
        assert any(text in record["exception"] for text in how), record
        trace = workers.trace_dir / f"stuck{i}"
        if "killed" in how[0]:
            assert lines(trace) == ["started"]
        else:  # in a thread, it may say so just after its failure was stored
            wait_for(lambda t=trace: len(lines(t)) == 2, what=f"stuck{i} stopped")
            assert lines(trace)[1].startswith("stopped "), lines(trace)


class ProcessScenarios(_OnBroker):
    """The worker suite: crashes, hard timeouts, stopping, locks, unique and
    periodic tasks, with every executor (``worker_app``)."""

    @each_mode
    def test_kill_9_with_n_running_recovers_every_task(
        self, workers: WorkerPool, app: Any, mode: Mode
    ) -> None:
        """kill -9 of a worker (and its children) while N tasks run: after
        ACTIVE_TASK_UPDATE_TIMEOUT another worker records a JobTimeoutException
        ("worker lost") execution for each (decision 2) and applies each one's
        policy: the tasks with retry=True run again, the one without goes to
        error (at -c 1 the one task has retry=True)."""
        n = mode.concurrency
        retried = [i % 2 == 0 for i in range(n)]
        tasks = [
            app.tq.delay(mode.task(app, "together", i), args=[f"t{i}", n, 30.0], retry=retry)
            for i, retry in enumerate(retried)
        ]
        first = workers.start(*mode.args)
        wait_running(workers, n)
        os.killpg(first.pid, signal.SIGKILL)  # the worker and its children: a lost host
        first.wait(timeout=10)
        assert app.tq.get_queue_sizes("default")["active"] == n
        workers.start(*mode.args)
        again = sorted(f"t{i} 1" for i in range(n) if retried[i])
        wait_for(lambda: finished(workers) == again, timeout=60, what="retried tasks run again")
        lost = [task for task, retry in zip(tasks, retried, strict=True) if not retry]
        expected = {"default": {"error": len(lost)}} if lost else {}
        wait_for(lambda: app.tq.get_queue_stats() == expected, what="outcomes stored")
        for task in lost:
            stored = Task.from_id(app.tq, "default", "error", task.id, load_executions=5)
            (record,) = stored.executions
            assert record["exception_name"] == TIMEOUT
            assert "worker lost" in record["traceback"]
        assert "queueing expired task" in workers.log(1)
        assert ("failing expired task" in workers.log(1)) is bool(lost)

    @stopping_modes
    def test_a_task_past_its_hard_timeout_is_stopped_while_the_others_go_on(
        self, workers: WorkerPool, app: Any, mode: Mode
    ) -> None:
        """Two tasks (one sync, one async) run past their 0.5 s hard timeout
        beside six quick ones. Each fails with JobTimeoutException, stopped the
        executor's way: fork and pool: the sync one ignores SIGALRM and the
        worker kills its child (ACTIVE_TASK_UPDATE_TIMEOUT later), the async one
        is cancelled on its event loop in the child; threads: the task's thread is
        interrupted (the async one's own loop may cancel it first); asyncio: the
        coroutine is cancelled, the sync task's thread interrupted. The worker
        goes on (the threads are free again): every quick task runs. (The sync
        executor exits instead: see the next test.)"""
        stuck = [mode.task(app, "stubborn", i) for i in range(2)]
        tasks = [app.tq.delay(func, args=[f"stuck{i}", mode.forks]) for i, func in enumerate(stuck)]
        for i in range(6):
            app.whoami.delay(str(i))
        proc = workers.start(*mode.args)
        wait_for(
            lambda: app.tq.get_queue_stats() == {"default": {"error": 2}},
            timeout=30,
            what="stuck tasks failed, quick ones done",
        )
        assert len(lines(workers.trace_dir / "pids")) == 6
        check_stopped(workers, app, mode.executor, stuck, tasks)
        if mode.forks:
            assert "hard timeout elapsed in parent process" in workers.log()
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, workers.log()

    def test_sync_worker_exits_after_a_hard_timeout(self, workers: WorkerPool, app: Any) -> None:
        """The sync executor runs tasks in the worker's own process: a task past
        its hard timeout gets JobTimeoutException (SIGALRM), its outcome is
        stored, and the worker exits with status 1 (its state is suspect), for
        its supervisor to start a fresh one. Started again each time, workers run
        every task: each stuck one (a sync and an async one) costs one exit."""
        mode = Mode("sync")
        stuck = [mode.task(app, "stubborn", i) for i in range(2)]
        tasks = [app.tq.delay(func, args=[f"stuck{i}", False]) for i, func in enumerate(stuck)]
        for i in range(3):
            app.whoami.delay(str(i))
        statuses: list[int] = []
        while not statuses or (statuses[-1] != 0 and len(statuses) < 4):  # a supervisor
            statuses.append(workers.start("--burst", *mode.args).wait(timeout=30))
        assert statuses == [1, 1, 0], [workers.log(i) for i in range(len(statuses))]
        assert "exiting worker due to job timeout error" in workers.log(0)
        assert len(lines(workers.trace_dir / "pids")) == 3
        assert app.tq.get_queue_stats() == {"default": {"error": 2}}
        check_stopped(workers, app, "sync", stuck, tasks)

    @pytest.mark.parametrize("mode", EACH_EXECUTOR, ids=str)
    def test_sigterm_while_idle_exits_cleanly(
        self, workers: WorkerPool, app: Any, mode: Mode
    ) -> None:
        """SIGTERM to a worker that ran N tasks and is idle again (its children,
        threads or event loop started): exit status 0 with the final "done" log
        line. (Idle, one slot or N make no difference.)"""
        enqueue_together(app, mode, hold=0.0)
        proc = workers.start(*mode.args)
        wait_for(lambda: app.tq.get_queue_stats() == {}, what="tasks done")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, workers.log()
        assert '"done"' in workers.log()
        assert len(finished(workers)) == mode.concurrency

    @each_mode
    def test_sigterm_while_busy_lets_every_running_task_finish(
        self, workers: WorkerPool, app: Any, mode: Mode
    ) -> None:
        """SIGTERM (to the whole process group, as supervisors do) while N tasks
        run: no new task starts, all N finish and their outcomes are stored, the
        worker exits 0; the task still queued stays queued."""
        n = mode.concurrency
        enqueue_together(app, mode, hold=1.0)
        app.whoami.delay("later")
        proc = workers.start(*mode.args)
        wait_running(workers, n)
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, workers.log()
        assert finished(workers) == [f"t{i} 0" for i in range(n)]
        assert not lines(workers.trace_dir / "pids")
        assert app.tq.get_queue_sizes("default") == {"queued": 1, "scheduled": 0, "active": 0}

    @stopping_modes
    def test_second_sigterm_returns_every_running_task(
        self, workers: WorkerPool, app: Any, mode: Mode
    ) -> None:
        """A second SIGTERM insists: every running task is stopped (its child
        killed, its coroutine cancelled) or given up (a thread) and goes back to
        queued without a failed execution; the worker exits 0."""
        n = mode.concurrency
        enqueue_together(app, mode, hold=30.0)
        proc = workers.start(*mode.args)
        wait_running(workers, n)
        os.killpg(proc.pid, signal.SIGTERM)
        wait_for(lambda: "stop requested" in workers.log(), what="first stop logged")
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, workers.log()
        _, tasks = Task.tasks_from_queue(app.tq, "default", "queued")
        assert len(tasks) == n
        assert [task.n_executions() for task in tasks] == [0] * n
        assert app.tq.get_queue_sizes("default") == {"queued": n, "scheduled": 0, "active": 0}
        assert not finished(workers)

    def test_second_sigterm_lets_a_sync_task_finish(self, workers: WorkerPool, app: Any) -> None:
        """The sync executor cannot stop a task running in the worker's own
        process: after a second SIGTERM the task still finishes, its success is
        stored, and the worker exits 0 (docs/workers.md, Stopping workers)."""
        mode = Mode("sync")
        enqueue_together(app, mode, hold=1.5)
        proc = workers.start(*mode.args)
        wait_running(workers, 1)
        os.killpg(proc.pid, signal.SIGTERM)
        # the handler runs as soon as the signal interrupts the task's sleep;
        # nothing shows that from outside while the task runs
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, workers.log()
        assert finished(workers) == ["t0 0"]
        assert app.tq.get_queue_stats() == {}

    @each_mode
    def test_runs_holding_one_lock_never_overlap(
        self, workers: WorkerPool, app: Any, mode: Mode
    ) -> None:
        """Two workers with N slots each, eight tasks of each of two functions (a
        sync and an async one) sharing a lock key: no two runs of one function
        overlap, whether in two workers or in two slots of one (a lock is per
        function and key)."""
        funcs = [mode.task(app, "exclusive", i) for i in range(2)]
        for func in funcs:
            for _ in range(8):
                func.delay(func.__name__, resource="printer", seconds=0.05)
        # not --burst: a task that meets the lock waits LOCK_RETRY in scheduled
        procs = [workers.start(*mode.args) for _ in range(2)]
        wait_for(lambda: app.tq.get_queue_stats() == {}, timeout=60, what="all done")
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert proc.wait(timeout=20) == 0
        for func in funcs:
            spans: dict[str, list[float]] = {}
            for line in lines(workers.trace_dir / func.__name__):
                _, stamp, task_id = line.split()
                spans.setdefault(task_id, []).append(float(stamp))
            assert len(spans) == 8
            assert all(len(span) == 2 for span in spans.values()), spans
            for before, after in itertools.pairwise(sorted(spans.values())):
                assert before[1] <= after[0], f"overlap: {before} {after}"

    @each_mode
    def test_unique_tasks_are_pending_once_and_run_once(
        self, workers: WorkerPool, app: Any, mode: Mode
    ) -> None:
        """Three unique calls (sync and async), each enqueued seven times while
        nothing runs, are pending once each; two --burst workers with N slots
        each run every one of them exactly once."""
        labels = ["a", "b", "c"]
        for _ in range(7):
            for i, label in enumerate(labels):
                mode.task(app, "unique_job", i).delay("unique", label)
        assert app.tq.get_queue_sizes("default")["queued"] == len(labels)
        procs = [workers.start("--burst", *mode.args) for _ in range(2)]
        for index, proc in enumerate(procs):
            assert proc.wait(timeout=30) == 0, workers.log(index)
        assert sorted(lines(workers.trace_dir / "unique")) == [f"ran {label}" for label in labels]
        assert app.tq.get_queue_stats() == {}

    @pytest.mark.parametrize("mode", EACH_EXECUTOR, ids=str)
    def test_cli_module_periodic_tasks_run(self, workers: WorkerPool, mode: Mode) -> None:
        """`taskq worker -m module` runs the periodic tasks (a sync and an async
        one) the module declared on its own TaskQ object (decision 7), once per
        period. (The worker's loop schedules them; the executor only runs them,
        so each executor runs once, with room for both at once.)"""
        proc = workers.start("-m", "periodic_module", *mode.args, app=None)
        for name in ("tick", "atick"):
            trace = workers.trace_dir / name
            wait_for(lambda t=trace: len(lines(t)) >= 2, timeout=20, what=f"two runs of {name}")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, workers.log()
        for name in ("tick", "atick"):
            stamps = [float(x) for x in lines(workers.trace_dir / name)]
            assert all(b - a > 0.5 for a, b in itertools.pairwise(stamps)), (name, stamps)


# -- -c N ------------------------------------------------------------------------------

#: the class ``ready`` names for each mode: ``sync -c N`` is the threads executor
EXECUTOR_CLASSES = {
    "fork": "ForkExecutor",
    "pool": "PoolExecutor",
    "threads": "ThreadsExecutor",
    "asyncio": "AsyncioExecutor",
    "sync": "SyncExecutor",
}


class ConcurrencyScenarios(_OnBroker):
    """``taskq worker -c N``: N tasks at once with every executor, each in the
    process its executor says, and pool children recycled (``worker_app``).
    The worker suite's scenarios (crashes, timeouts, signals, locks...) run at
    ``-c N`` too, in :class:`ProcessScenarios`."""

    @pytest.mark.parametrize("mode", [*MODES, Mode("sync", N)], ids=str)
    def test_n_tasks_run_at_once_each_with_its_own_current_task(
        self, workers: WorkerPool, app: Any, mode: Mode
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

    def test_pool_children_are_recycled_after_max_tasks(
        self, workers: WorkerPool, app: Any
    ) -> None:
        """``--max-tasks-per-child 2``: no pool child runs more than two tasks."""
        for i in range(8):
            app.whoami.delay(str(i))
        workers.burst("--executor", "pool", "-c", "2", "--max-tasks-per-child", "2", timeout=60)
        pids = [line.split()[1] for line in lines(workers.trace_dir / "pids")]
        assert len(pids) == 8
        assert max(pids.count(pid) for pid in set(pids)) <= 2
        assert len(set(pids)) >= 4
        assert str(workers.procs[0].pid) not in pids  # never in the worker itself

    def test_pool_children_are_recycled_past_max_memory(
        self, workers: WorkerPool, app: Any
    ) -> None:
        """``--max-memory-per-child`` below any child's RSS: every task gets a
        fresh child."""
        for i in range(4):
            app.whoami.delay(str(i))
        workers.burst("--executor", "pool", "--max-memory-per-child", "1", timeout=60)
        pids = [line.split()[1] for line in lines(workers.trace_dir / "pids")]
        assert len(pids) == 4
        assert len(set(pids)) == 4
        assert "replacing pool child" in workers.log(0)


# -- batch queues ------------------------------------------------------------------------


def calls(workers: WorkerPool) -> list[tuple[str, str, list[str]]]:
    """``(function, runner, [ids])`` of every call of ``batch_app``, in order."""
    found = []
    for line in lines(workers.trace_dir / "calls"):
        name, runner, ids = line.split()
        found.append((name, runner, ids.split(",")))
    return found


class BatchScenarios(_OnBroker):
    """Batch queues whose pops mix functions and runner classes (Decisions 12
    and 13), every executor, one group at a time and N at once (``batch_app``):
    every popped task runs exactly once, in groups that never mix functions or
    runner classes; a plain task that kills its child process fails only itself
    (fork, pool); no task is left ``active``."""

    app_module = "batch_app"

    @each_mode
    def test_mixed_pops_run_every_task_exactly_once(
        self, workers: WorkerPool, app: Any, mode: Mode
    ) -> None:
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
        self, workers: WorkerPool, app: Any, executor: str
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
        self, workers: WorkerPool, app: Any, executor: str, mode: str, shown: str
    ) -> None:
        """Decision 12: plain tasks of one function popped together run in one
        child, each with its own outcome. When the second one ends the child
        (os._exit) or hangs until the worker kills it, the first keeps its
        success (it is not run again), only the second goes to error, and the
        third, which had not started, goes back to the queue and runs once.
        (Only fork and pool: in the other executors the tasks run in the worker's
        own process, whose crash is the worker's: the kill -9 tests of
        :class:`ProcessScenarios`.)"""
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


# -- the fork executor's child forked ahead ------------------------------------------------


def _session(sid: int) -> set[int]:
    """The living (not zombie) processes of session ``sid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        state, session = fields[0], int(fields[3])
        if session == sid and state != "Z":
            found.add(int(entry.name))
    return found


def _ran(workers: WorkerPool) -> list[tuple[str, int, int]]:
    rows = [line.split() for line in lines(workers.trace_dir / "pids")]
    return [(label, int(pid), int(ppid)) for label, pid, ppid in rows]


def _idle_with_standby(workers: WorkerPool, app: Any) -> tuple[Any, int]:
    """A new worker that ran one task and waits idle; the child it forked ahead."""
    proc = workers.start("--executor", "fork")
    workers.wait_ready(len(workers.procs) - 1)
    app.tq.delay(app.whoami, args=["first"])
    ((_, first_child, _),) = wait_for(
        lambda: [row for row in _ran(workers) if row[2] == proc.pid], what="the first task"
    )
    standby = wait_for(
        lambda: _session(proc.pid) - {proc.pid, first_child}, what="a child forked ahead"
    )
    assert len(standby) == 1
    return proc, standby.pop()


class ForkAheadScenarios(_OnBroker):
    """The ``fork`` executor forks the child of the next task ahead of time
    (``FORK_AHEAD``): still one child per task group, no process left behind
    however the worker ends, and a child that died while waiting costs
    nothing (``fork_ahead_app``)."""

    app_module = "fork_ahead_app"

    @pytest.mark.parametrize("app_name", ["fork_ahead_app:tq", "fork_ahead_app:tq_at_task"])
    @pytest.mark.parametrize("concurrency", ["1", "3"])
    def test_every_task_group_runs_in_a_child_of_its_own(
        self, workers: WorkerPool, app: Any, app_name: str, concurrency: str
    ) -> None:
        """Forked ahead or not, each task runs in a fresh child of the worker, and
        once the burst worker exits no process of its session is left."""
        for i in range(6):
            app.tq.delay(app.whoami, args=[f"t{i}"])
        proc = workers.start("--burst", "--executor", "fork", "-c", concurrency, app=app_name)
        assert proc.wait(timeout=60) == 0, workers.log()
        ran = _ran(workers)
        assert sorted(label for label, _, _ in ran) == [f"t{i}" for i in range(6)]
        assert len({pid for _, pid, _ in ran}) == 6
        assert {ppid for _, _, ppid in ran} == {proc.pid}
        assert _session(proc.pid) == set()
        assert app.tq.get_queue_stats() == {}

    def test_a_child_waiting_for_its_task_ends_with_the_worker(
        self, workers: WorkerPool, app: Any
    ) -> None:
        """SIGTERM to an idle worker: it exits 0 and its waiting child with it;
        kill -9 of the worker: the waiting child sees its pipe close and exits."""
        proc, standby = _idle_with_standby(workers, app)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, workers.log()
        wait_for(lambda: not _session(proc.pid), what="no process left after SIGTERM")

        proc, standby = _idle_with_standby(workers, app)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        wait_for(lambda: standby not in _session(proc.pid), what="the waiting child to exit")

    def test_a_child_that_died_waiting_costs_no_task(self, workers: WorkerPool, app: Any) -> None:
        """The child forked ahead is killed before a task comes: the next task runs
        in a child forked then, and the worker goes on. (A child killed in the
        instant the worker hands it a task costs that task one execution, like a
        child killed while running it.)"""
        proc, standby = _idle_with_standby(workers, app)
        os.kill(standby, signal.SIGKILL)
        # gone (a zombie until the worker reaps it): its end of the pipe is closed
        wait_for(lambda: standby not in _session(proc.pid), what="the waiting child to die")
        app.tq.delay(app.whoami, args=["second"])
        try:
            wait_for(lambda: len(_ran(workers)) == 2, what="the second task")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{workers.log()}") from None
        label, pid, ppid = _ran(workers)[1]
        assert (label, ppid) == ("second", proc.pid)
        assert pid != standby
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, workers.log()
        assert app.tq.get_queue_stats() == {}
