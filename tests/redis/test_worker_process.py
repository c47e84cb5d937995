"""Workers as real processes against a real Redis.

The worker suite runs with every executor, one task at a time and N at once
(``MODES`` of ``tests/worker_procs.py``; at ``-c N`` sync and ``async def``
tasks run side by side): kill -9 with tasks running, hard timeouts, SIGTERM
(idle, busy, twice), locks across workers and slots, unique tasks, and
periodic tasks of a CLI module. Redis outages, a missed notification and the
eviction warning happen where the worker talks to the broker, and the
executor plays no part: they run with the default executor (an outage
mid-task with sync too, whose task holds the worker's loop).
"""

from __future__ import annotations

import inspect
import itertools
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from taskq_core import Task

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

pytestmark = [pytest.mark.redis, pytest.mark.slow]

from worker_procs import (  # noqa: E402
    EACH_EXECUTOR,
    MODES,
    Mode,
    WorkerPool,
    bound_app,
    lines,
    running,
    wait_for,
)

TIMEOUT = "taskq_core.exceptions:JobTimeoutException"

each_mode = pytest.mark.parametrize("mode", MODES, ids=str)


class Workers(WorkerPool):
    """Workers running ``worker_app`` from this folder unless told otherwise."""

    def __init__(self, url: str, trace_dir: Path) -> None:
        super().__init__(url, trace_dir, app="worker_app:tq", pythonpath=[HERE])


@pytest.fixture
def workers(
    redis_url: str, redis_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workers]:
    with running(Workers(redis_url, tmp_path), monkeypatch) as pool:
        yield pool


@pytest.fixture
def app(workers: Workers) -> Any:
    return bound_app("worker_app", workers.url)


def enqueue_together(app: Any, mode: Mode, hold: float) -> list[Task]:
    """As many tasks as the mode runs at once, sync and async alternating; on
    their first run they wait for each other, then hold ``hold`` seconds."""
    n = mode.concurrency
    return [app.tq.delay(mode.task(app, "together", i), args=[f"t{i}", n, hold]) for i in range(n)]


def wait_running(workers: Workers, n: int) -> None:
    wait_for(lambda: len(lines(workers.trace_dir / "starts")) == n, what=f"{n} tasks running")


def finished(workers: Workers) -> list[str]:
    """``label run`` of every task that finished, sorted."""
    return sorted(lines(workers.trace_dir / "finished"))


@each_mode
def test_kill_9_with_n_running_recovers_every_task(workers: Workers, app: Any, mode: Mode) -> None:
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
    workers: Workers, app: Any, executor: str, stuck: list[Any], tasks: list[Task]
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


@pytest.mark.parametrize("mode", [m for m in MODES if m.executor != "sync"], ids=str)
def test_a_task_past_its_hard_timeout_is_stopped_while_the_others_go_on(
    workers: Workers, app: Any, mode: Mode
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


def test_sync_worker_exits_after_a_hard_timeout(workers: Workers, app: Any) -> None:
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
def test_sigterm_while_idle_exits_cleanly(workers: Workers, app: Any, mode: Mode) -> None:
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
    workers: Workers, app: Any, mode: Mode
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


@pytest.mark.parametrize("mode", [m for m in MODES if m.executor != "sync"], ids=str)
def test_second_sigterm_returns_every_running_task(workers: Workers, app: Any, mode: Mode) -> None:
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


def test_second_sigterm_lets_a_sync_task_finish(workers: Workers, app: Any) -> None:
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


def test_worker_survives_redis_restart(workers: Workers, tmp_path: Path) -> None:
    """Redis stopped and started again under an idle worker: the worker logs the
    outage, backs off, and processes a task queued after the restart (decision 10)."""
    from redis_server import launch_redis_server
    from taskq_core import TaskQ

    server = launch_redis_server()
    port = server.port
    try:
        url = server.url
        pool = Workers(url, tmp_path)
        workers.procs = pool.procs  # cleaned up by the fixture
        proc = pool.start(app=None)
        pool.wait_ready()
        server.stop()
        wait_for(lambda: "broker unavailable" in pool.log(), what="outage logged")
        time.sleep(1.0)
        server = launch_redis_server(extra_args=("--port", str(port)))
        assert server.port == port or server.url
        tq = TaskQ(f"redis://127.0.0.1:{port}/0")
        import worker_app

        tq.delay(worker_app.record, args=["after-restart"], kwargs={"value": "ok"})
        wait_for(
            lambda: lines(tmp_path / "after-restart") == ["ok"],
            timeout=40,
            what="task after restart",
        )
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        server.stop()


@each_mode
def test_runs_holding_one_lock_never_overlap(workers: Workers, app: Any, mode: Mode) -> None:
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
def test_unique_tasks_are_pending_once_and_run_once(workers: Workers, app: Any, mode: Mode) -> None:
    """Three unique calls (sync and async), each enqueued seven times while
    nothing runs, are pending once each; two --burst workers with N slots
    each run every one of them exactly once."""
    labels = ["a", "b", "c"]
    for _ in range(7):
        for i, label in enumerate(labels):
            mode.task(app, "unique_job", i).delay("unique", label)
    assert app.tq.get_queue_sizes("default")["queued"] == len(labels)
    procs = [workers.start("--burst", *mode.args) for _ in range(2)]
    for proc in procs:
        assert proc.wait(timeout=30) == 0
    assert sorted(lines(workers.trace_dir / "unique")) == [f"ran {label}" for label in labels]
    assert app.tq.get_queue_stats() == {}


@pytest.mark.parametrize("mode", EACH_EXECUTOR, ids=str)
def test_cli_module_periodic_tasks_run(workers: Workers, mode: Mode) -> None:
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


@pytest.mark.parametrize("executor", ["fork", "sync"])
def test_outcome_stored_after_redis_comes_back_mid_task(
    workers: Workers, tmp_path: Path, executor: str
) -> None:
    """Redis goes away while a task runs and comes back (with its data) later: the
    worker keeps the finished task's outcome, retries storing it with back-off, and
    stores it once Redis is back — the task is done, not left active. (With sync
    the task runs on the worker's own loop and a thread keeps its heartbeat; the
    other executors leave the loop free, as fork does.)"""
    from redis_server import launch_redis_server
    from taskq_core import TaskQ

    server = launch_redis_server(extra_args=("--appendonly", "yes"))
    port, directory = server.port, server.directory
    try:
        tq = TaskQ(f"redis://127.0.0.1:{port}/0")
        import worker_app

        tq.delay(worker_app.slow, args=["outage", 2.0])
        pool = Workers(server.url, tmp_path)
        workers.procs = pool.procs
        proc = pool.start("--executor", executor, app=None)
        wait_for(lambda: "started" in lines(tmp_path / "outage"), what="task started")
        server.process.terminate()  # keeps its append-only file for the restart
        server.process.wait(timeout=10)
        if server.process.stderr:
            server.process.stderr.close()
        wait_for(lambda: "finished" in lines(tmp_path / "outage"), what="task finished")
        wait_for(lambda: "broker unavailable" in pool.log(), what="outage noticed")
        time.sleep(1.0)
        server = launch_redis_server(
            extra_args=("--port", str(port), "--dir", directory, "--appendonly", "yes")
        )
        wait_for(lambda: tq.get_queue_stats() == {}, timeout=40, what="outcome stored")
        assert lines(tmp_path / "outage") == ["started", "finished"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, pool.log()
    finally:
        server.stop()


def test_worker_warns_at_start_when_redis_may_evict_keys(workers: Workers, tmp_path: Path) -> None:
    """At start the worker logs a warning when Redis' maxmemory-policy can evict keys
    (tasks would vanish under memory pressure); with noeviction it does not."""
    from redis_server import launch_redis_server

    for policy, warned in (("allkeys-lru", True), ("noeviction", False)):
        server = launch_redis_server(extra_args=("--maxmemory-policy", policy))
        try:
            (tmp_path / policy).mkdir()
            pool = Workers(server.url, tmp_path / policy)
            proc = pool.start("--burst", app=None)
            workers.procs.append(proc)  # cleaned up by the fixture
            assert proc.wait(timeout=30) == 0, pool.log()
            log = pool.log()
            assert ("maxmemory-policy" in log) is warned, log
            if warned:
                assert '"level": "warning"' in log
                assert policy in log
        finally:
            server.stop()


def test_task_whose_notification_was_missed_is_still_picked_up(
    workers: Workers, app: Any, redis_url: str
) -> None:
    """Decision 8: a task queued without the worker hearing about it (its
    notification went to a channel nobody listens to, as when the worker's
    pub/sub connection is down) is found by the periodic resync of queue names."""
    from taskq_core import TaskQ
    from taskq_redis import RedisBroker

    proc = workers.start()
    workers.wait_ready()
    silent = RedisBroker(url=redis_url)
    silent.layout.channel = "taskq:nobody-listens"  # the announcement is lost
    try:
        quiet = TaskQ(broker=silent)
        quiet.delay(app.record, args=["missed"], queue="quiet")
        # picked up within QUEUE_RESYNC_INTERVAL (0.5 s in worker_app) + SELECT_TIMEOUT
        wait_for(lambda: lines(workers.trace_dir / "missed") == ["ran"], timeout=10)
    finally:
        silent.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
