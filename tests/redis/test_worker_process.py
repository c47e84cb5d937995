"""Workers as real processes against a real Redis: crashes, hung children,
signals, outages, parallel workers and periodic tasks under the CLI."""

from __future__ import annotations

import itertools
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

pytestmark = pytest.mark.slow

from worker_procs import WorkerPool, lines, rebind, running, wait_for  # noqa: E402


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
    import worker_app

    # the module's app connects lazily; make sure it talks to this session's server
    rebind(worker_app.tq, workers.url)
    return worker_app


def test_burst_worker_runs_tasks_and_exits_zero(workers: Workers, app: Any) -> None:
    """`taskq worker --burst` runs every queued task in forked children and exits 0."""
    for i in range(5):
        app.record.delay("burst", value=str(i))
    proc = workers.start("--burst")
    assert proc.wait(timeout=30) == 0, workers.log()
    assert sorted(lines(workers.trace_dir / "burst")) == ["0", "1", "2", "3", "4"]
    assert app.tq.get_queue_stats() == {}


def test_kill_9_of_a_busy_worker_recovers_its_task(workers: Workers, app: Any) -> None:
    """A worker killed with SIGKILL mid-task: after ACTIVE_TASK_UPDATE_TIMEOUT another
    worker records a JobTimeoutException ("worker lost") execution and, the task
    having retry=True, runs it again (decision 2)."""
    app.slow_then_quick.delay("crash", 60)
    first = workers.start()
    trace = workers.trace_dir / "crash"
    wait_for(lambda: "run 0" in lines(trace), what="first run started")
    os.killpg(first.pid, signal.SIGKILL)  # the worker and its child: a lost host
    first.wait(timeout=10)
    assert app.tq.get_queue_sizes("default")["active"] == 1
    workers.start()
    wait_for(lambda: "finished 1" in lines(trace), timeout=30, what="second run")
    assert "finished 0" not in lines(trace)
    wait_for(lambda: app.tq.get_queue_stats() == {}, what="task removed after success")
    assert "queueing expired task" in workers.log(1)


def test_kill_9_without_retry_moves_the_task_to_error(workers: Workers, app: Any) -> None:
    """Without retry options a lost task goes to error with a worker-lost record."""
    from taskq_core import Task

    app.slow.delay("lost", 60)
    first = workers.start()
    wait_for(lambda: "started" in lines(workers.trace_dir / "lost"), what="task started")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    workers.start()
    wait_for(
        lambda: app.tq.get_queue_stats().get("default", {}).get("error"),
        timeout=30,
        what="task in error",
    )
    _, tasks = Task.tasks_from_queue(app.tq, "default", "error", load_executions=5)
    (task,) = tasks
    assert task.n_executions() == 1
    assert task.executions[-1]["exception_name"] == "taskq_core.exceptions:JobTimeoutException"
    assert "worker lost" in task.executions[-1]["traceback"]


def test_hung_child_is_killed_by_the_parent(workers: Workers, app: Any) -> None:
    """A child that ignores SIGALRM is SIGKILLed by the parent after its hard timeout
    (+ ACTIVE_TASK_UPDATE_TIMEOUT); the failure is recorded and the worker goes on."""
    from taskq_core import Task

    app.hang_ignoring_alarm.delay("hang")
    app.record.delay("after", value="next task ran")
    proc = workers.start("--burst")
    assert proc.wait(timeout=30) == 0, workers.log()
    assert lines(workers.trace_dir / "after") == ["next task ran"]
    _, tasks = Task.tasks_from_queue(app.tq, "default", "error", load_executions=1)
    (task,) = tasks
    assert task.executions[-1]["exception_name"] == "taskq_core.exceptions:JobTimeoutException"
    assert "hard timeout elapsed in parent process" in workers.log()


def test_sigterm_while_idle_exits_cleanly(workers: Workers, app: Any) -> None:
    """SIGTERM to an idle worker: exit status 0 with the final "done" log line."""
    proc = workers.start()
    workers.wait_ready()
    time.sleep(0.3)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0, workers.log()
    assert time.monotonic() - started < 5
    assert '"done"' in workers.log()


def test_sigterm_while_busy_finishes_the_task(workers: Workers, app: Any) -> None:
    """SIGTERM (to the whole process group, as supervisors do) while a task runs:
    the task finishes, its outcome is stored, other tasks stay queued, exit 0."""
    app.slow.delay("busy", 1.5)
    proc = workers.start()
    trace = workers.trace_dir / "busy"
    wait_for(lambda: "started" in lines(trace), what="task started")
    app.record.delay("untouched")
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, workers.log()
    assert lines(trace) == ["started", "finished"]
    assert app.tq.get_queue_stats() == {"default": {"queued": 1}}


def test_second_sigterm_returns_the_task_to_the_queue(workers: Workers, app: Any) -> None:
    """A second SIGTERM insists: the running child is stopped and its task goes back
    to queued without a failed execution; the worker exits 0."""
    from taskq_core import Task

    app.slow.delay("insist", 30)
    proc = workers.start()
    wait_for(lambda: "started" in lines(workers.trace_dir / "insist"), what="task started")
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, workers.log()
    _, tasks = Task.tasks_from_queue(app.tq, "default", "queued")
    (task,) = tasks
    assert task.n_executions() == 0


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


def test_parallel_workers_never_overlap_a_lock(workers: Workers, app: Any) -> None:
    """Three workers, twelve tasks sharing one lock key: no two runs overlap."""
    for _ in range(12):
        app.exclusive.delay("lock", resource="printer", seconds=0.05)
    # not --burst: a task that meets the lock waits LOCK_RETRY in scheduled
    procs = [workers.start() for _ in range(3)]
    wait_for(lambda: app.tq.get_queue_stats() == {}, timeout=60, what="all done")
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        assert proc.wait(timeout=20) == 0
    events = [line.split() for line in lines(workers.trace_dir / "lock")]
    spans = []
    for kind, stamp, pid in events:
        if kind == "start":
            spans.append([float(stamp), None, pid])
        else:
            open_span = next(s for s in spans if s[2] == pid and s[1] is None)
            open_span[1] = float(stamp)
    assert len(spans) == 12
    spans.sort()
    for before, after in itertools.pairwise(spans):
        assert before[1] <= after[0], f"overlap: {before} {after}"


def test_unique_task_is_pending_once_across_workers(workers: Workers, app: Any) -> None:
    """A unique task enqueued 20 times while two workers run is never run twice at once
    and is pending at most once."""
    for _ in range(20):
        app.unique_job.delay("unique")
    assert app.tq.get_queue_sizes("default")["queued"] == 1
    procs = [workers.start("--burst") for _ in range(2)]
    for proc in procs:
        assert proc.wait(timeout=30) == 0
    assert lines(workers.trace_dir / "unique") == ["ran"]


def test_cli_module_periodic_tasks_run(workers: Workers) -> None:
    """`taskq worker -m module` runs the periodic tasks the module declared on its own
    TaskQ object (decision 7), once per period."""
    proc = workers.start("-m", "periodic_module", app=None)
    tick = workers.trace_dir / "tick"
    wait_for(lambda: len(lines(tick)) >= 3, timeout=20, what="three ticks")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    stamps = [float(x) for x in lines(tick)]
    assert all(b - a > 0.5 for a, b in itertools.pairwise(stamps)), stamps


def test_outcome_stored_after_redis_comes_back_mid_task(workers: Workers, tmp_path: Path) -> None:
    """Redis goes away while a task runs and comes back (with its data) later: the
    worker keeps the finished task's outcome, retries storing it with back-off, and
    stores it once Redis is back — the task is done, not left active."""
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
        proc = pool.start(app=None)
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
