"""``taskq worker`` processes on a SQLite file: the example tasks end to end
with the fork and threads executors at ``-c 4``, several workers draining one
file, a worker killed with SIGKILL, a file whose schema is too new, and a
file another program keeps locked."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import sqlite_worker_app
import structlog

from taskq_core import Task, TaskQ
from taskq_core.brokers.sqlite import SCHEMA_VERSION, SQLiteBroker
from taskq_core.states import STATES
from worker_procs import WorkerPool, lines, wait_for

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.slow

TASKQ_WORKER = (sys.executable, "-m", "taskq_core.cli", "worker", "--log-format", "json")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a subprocess: the repository and this folder
    importable, a home of its own, no TASKQ_URL (the URL is on the command
    line)."""
    env = {k: v for k, v in os.environ.items() if k != "TASKQ_URL"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE), env.get("PYTHONPATH", "")])
    env["HOME"] = str(tmp_path / "home")
    env["TASKQ_TEST_DIR"] = str(tmp_path)
    return {**env, **extra}


def _events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


ENQUEUE_EXAMPLES = """
from examples import tasks

for user_id in range(1, 21):
    tasks.send_welcome_email.delay(user_id)
tasks.build_report.delay("weekly", rows=1000)
tasks.flaky_payment.delay(42)
tasks.reindex.delay(1)
tasks.reindex.delay(1)  # unique: still one task
tasks.always_fails.delay()
print(tasks.tq.get_queue_stats())
"""


@pytest.mark.parametrize("executor", ["fork", "threads"])
def test_the_example_tasks_run_end_to_end(tmp_path: Path, executor: str) -> None:
    """Tasks enqueued by one program (``TASKQ_URL=sqlite:///queue.db``) are run
    by ``taskq worker --url sqlite:///queue.db -m examples.tasks --burst`` with
    ``-c 4``: every task once, the flaky one after its retries, the unique one
    once, the failing one in error, the periodic one scheduled for its next
    run, and no ``database is locked``."""
    url = "sqlite:///queue.db"  # relative to the working directory of each program
    enqueue = subprocess.run(
        [sys.executable, "-c", ENQUEUE_EXAMPLES],
        check=False,
        cwd=tmp_path,
        env=_env(tmp_path, TASKQ_URL=url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert enqueue.returncode == 0, enqueue.stderr
    worker = subprocess.run(
        [
            *TASKQ_WORKER,
            *("--url", url, "-m", "examples.tasks", "--burst", "--executor", executor, "-c", "4"),
        ],
        check=False,
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 0, worker.stdout + worker.stderr
    output = worker.stdout + worker.stderr
    assert "database is locked" not in output
    events = Counter(e["event"] for e in _events(output))
    sent = sorted(e["user_id"] for e in _events(output) if e["event"] == "welcome email sent")
    assert sent == list(range(1, 21))
    assert events["report built"] == 1
    assert events["payment captured"] == 1
    assert events["reindexed"] == 1
    tq = TaskQ(f"sqlite:///{tmp_path / 'queue.db'}")
    assert tq.get_queue_sizes("default") == {"queued": 0, "scheduled": 1, "active": 0}
    _total, (periodic,) = Task.tasks_from_queue(tq, "default", "scheduled")
    assert periodic.serialized_func == "examples.tasks:cleanup"  # its next run
    assert tq.get_queue_sizes("reports") == {"queued": 0, "scheduled": 0, "active": 0}
    _total, (failed,) = Task.tasks_from_queue(tq, "default", "error")
    assert failed.serialized_func == "examples.tasks:always_fails"
    tq.broker.close()
    assert not (tmp_path / "home").exists()  # the default file was never touched


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[WorkerPool]:
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    pool = WorkerPool(url, tmp_path, app="sqlite_worker_app:tq", pythonpath=[HERE])
    try:
        yield pool
    finally:
        pool.cleanup()


@pytest.fixture
def app(workers: WorkerPool) -> Iterator[TaskQ]:
    """An app in this process on the workers' file."""
    tq = TaskQ(workers.url)
    yield tq
    tq.broker.close()


def _labels(trace_dir: Path, name: str) -> list[tuple[str, int, int]]:
    found = []
    for line in lines(trace_dir / name):
        label, pid, ppid = line.split()
        found.append((label, int(pid), int(ppid)))
    return found


def test_four_workers_drain_one_file_each_task_once(
    workers: WorkerPool, app: TaskQ, tmp_path: Path
) -> None:
    """Four workers, each with another executor (fork, threads, pool,
    asyncio) and ``-c 4``, drain one file: every task runs exactly once and no
    worker logs ``database is locked``."""
    total = 800
    app.delay_many([Task(app, sqlite_worker_app.trace, args=[f"t{i}"]) for i in range(total)])
    procs = [
        workers.start("--burst", "--executor", executor, "-c", "4")
        for executor in ("fork", "threads", "pool", "asyncio")
    ]
    for index, proc in enumerate(procs):
        assert proc.wait(timeout=180) == 0, workers.log(index)
        assert "database is locked" not in workers.log(index)
    done = Counter(label for label, _pid, _ppid in _labels(tmp_path, "done"))
    assert set(done) == {f"t{i}" for i in range(total)}
    assert set(done.values()) == {1}
    assert app.broker.queue_sizes("default") == dict.fromkeys(STATES, 0)


def test_a_killed_worker_loses_only_its_running_tasks(
    workers: WorkerPool, app: TaskQ, tmp_path: Path
) -> None:
    """Two workers with ``-c 4`` threads; one is killed with SIGKILL midway.
    Every task is done; only tasks the killed worker had started run again
    (recovered once its heartbeats stop), and nothing is left behind."""
    total = 160
    app.delay_many(
        [
            Task(app, sqlite_worker_app.trace, args=[f"t{i}"], kwargs={"hold": 0.02})
            for i in range(total)
        ]
    )
    victim = workers.start("--executor", "threads", "-c", "4")
    survivor = workers.start("--executor", "threads", "-c", "4")
    wait_for(lambda: len(lines(tmp_path / "done")) >= 30, what="30 tasks done")
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    wait_for(
        lambda: (
            {label for label, _p, _pp in _labels(tmp_path, "done")}
            >= {f"t{i}" for i in range(total)}
        ),
        timeout=60,
        what="every task done",
    )
    starts = _labels(tmp_path, "start")
    by_victim = {label for label, pid, ppid in starts if victim.pid in (pid, ppid)}
    twice = {label for label, count in Counter(s[0] for s in starts).items() if count > 1}
    assert twice <= by_victim
    assert len(twice) <= 4  # at most what its four slots were running
    wait_for(
        lambda: app.broker.queue_sizes("default") == dict.fromkeys(STATES, 0),
        what="an empty queue",
    )
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(timeout=30) == 0, workers.log(1)
    assert "database is locked" not in workers.log(1)


def test_a_worker_refuses_a_file_with_a_newer_schema(tmp_path: Path) -> None:
    """``taskq worker`` on a file whose schema is newer than it knows exits 1
    with the error (file, versions, what to do), not a traceback."""
    path = tmp_path / "queue.db"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE taskq_schema (version INTEGER NOT NULL)")
        db.execute("INSERT INTO taskq_schema VALUES (?)", (SCHEMA_VERSION + 1,))
    worker = subprocess.run(
        [*TASKQ_WORKER, "--url", f"sqlite:///{path}", "--burst"],
        check=False,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 1, worker.stdout + worker.stderr
    assert f"schema version {SCHEMA_VERSION + 1}" in worker.stderr
    assert "upgrade taskq-core" in worker.stderr
    assert "Traceback" not in worker.stderr
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT version FROM taskq_schema").fetchall() == [(SCHEMA_VERSION + 1,)]


def test_a_worker_waits_out_a_file_locked_by_another_program(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decision 10 on SQLite: while another program holds the write lock past
    the busy timeout, the worker logs that the broker is unavailable, backs
    off, and goes on once the lock is released; the task runs once."""
    monkeypatch.setenv("TASKQ_TEST_DIR", str(tmp_path))
    broker = SQLiteBroker(tmp_path / "queue.db", timeout=0.05)
    tq = TaskQ(broker, config={"SELECT_TIMEOUT": 0.1, "STATS_INTERVAL": 0})
    tq.delay(sqlite_worker_app.trace, args=["t1"])
    other = sqlite3.connect(broker.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    released = threading.Event()

    def release_later() -> None:
        released.wait(1.0)  # the worker meets the lock meanwhile
        other.execute("ROLLBACK")
        other.close()

    holder = threading.Thread(target=release_later)
    holder.start()
    try:
        with structlog.testing.capture_logs() as logs:
            tq.run_worker(burst=True, executor="sync")
    finally:
        released.set()
        holder.join(10)
    events = [e["event"] for e in logs]
    assert "broker unavailable" in events
    assert "broker available again" in events
    unavailable = next(e for e in logs if e["event"] == "broker unavailable")
    assert "locked" in unavailable["error"]
    assert [label for label, _pid, _ppid in _labels(tmp_path, "done")] == ["t1"]
    broker.close()
