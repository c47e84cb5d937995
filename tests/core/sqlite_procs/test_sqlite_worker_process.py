"""Workers as real processes on a SQLite file: the worker suite of
``tests/worker_scenarios.py`` (kill -9 with tasks running, hard timeouts,
SIGTERM, locks, unique and periodic tasks, with every executor), and what
only SQLite has, the counterparts of the Redis outages: another program
holds the file's write lock longer than the worker's busy timeout while a
scheduled task comes due or while a task runs (the worker backs off and goes
on once the lock is released), and a wake-up that reaches no one (the worker
finds the task by its poll). Those happen where the worker talks to the
broker and run with the default executor (the lock mid-task with sync too,
whose task holds the worker's loop).
"""

from __future__ import annotations

import datetime as dt
import signal
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest

from taskq_core.brokers.sqlite._wakeups import wake_directory
from worker_procs import WorkerPool, lines, wait_for
from worker_scenarios import HERE as TESTS
from worker_scenarios import ProcessScenarios

HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.slow


@contextmanager
def write_lock(path: Path) -> Iterator[None]:
    """Another program's write transaction on the file, open until the block ends."""
    with closing(sqlite3.connect(path, isolation_level=None, timeout=30)) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            db.execute("ROLLBACK")


class TestWorkerProcessOnSQLite(ProcessScenarios):
    """The worker suite on a file of its own in each test's directory."""

    @pytest.fixture
    def db_path(self, tmp_path: Path) -> Path:
        return tmp_path / "queue.db"

    @pytest.fixture
    def broker_url(self, db_path: Path) -> str:
        return f"sqlite:///{db_path}"

    @pytest.fixture
    def short_wait(self, workers: WorkerPool) -> WorkerPool:
        """Workers of ``short_wait_app`` (a busy timeout of 0.2 s), cleaned up
        with the others."""
        pool = WorkerPool(
            workers.url, workers.trace_dir, app="short_wait_app:tq", pythonpath=[TESTS, HERE]
        )
        pool.procs = workers.procs
        return pool

    def test_a_task_due_while_another_program_holds_the_write_lock_runs_after_it(
        self, short_wait: WorkerPool, app: Any, db_path: Path, tmp_path: Path
    ) -> None:
        """An idle worker whose scheduled task comes due while another program
        holds the file's write lock past the worker's busy timeout: the worker
        logs that the broker is unavailable, backs off, says it is available
        again once the lock is released, and runs the task once (decision 10,
        as a Redis restart under an idle worker)."""
        proc = short_wait.start()
        short_wait.wait_ready()
        app.tq.delay(app.record, args=["after-lock"], when=dt.timedelta(seconds=0.3))
        with write_lock(db_path):
            wait_for(lambda: "broker unavailable" in short_wait.log(), what="the lock noticed")
            time.sleep(1.0)  # the worker backs off and tries again meanwhile
        wait_for(lambda: lines(tmp_path / "after-lock") == ["ran"], timeout=30, what="the task")
        wait_for(lambda: app.tq.get_queue_stats() == {}, what="its outcome stored")
        wait_for(lambda: "broker available again" in short_wait.log(), what="the end logged")
        assert "database is locked" in short_wait.log()
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, short_wait.log()

    @pytest.mark.parametrize("executor", ["fork", "sync"])
    def test_outcome_stored_after_another_program_releases_the_write_lock_mid_task(
        self, short_wait: WorkerPool, app: Any, db_path: Path, tmp_path: Path, executor: str
    ) -> None:
        """Another program takes the file's write lock while a task runs and
        keeps it past the task's end: the worker keeps the task's outcome,
        retries storing it with back-off, and stores it once the lock is
        released; the task ran once and is done, not left active. (With sync
        the task runs on the worker's own loop and a thread keeps its
        heartbeat.)"""
        app.tq.delay(app.slow, args=["outage", 2.0])
        proc = short_wait.start("--executor", executor)
        wait_for(lambda: "started" in lines(tmp_path / "outage"), what="task started")
        with write_lock(db_path):
            wait_for(lambda: "finished" in lines(tmp_path / "outage"), what="task finished")
            wait_for(lambda: "broker unavailable" in short_wait.log(), what="the lock noticed")
            time.sleep(1.0)  # the worker backs off and tries again meanwhile
        wait_for(lambda: app.tq.get_queue_stats() == {}, timeout=40, what="outcome stored")
        assert lines(tmp_path / "outage") == ["started", "finished"]
        wait_for(lambda: "broker available again" in short_wait.log(), what="the end logged")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, short_wait.log()

    def test_a_task_whose_wake_up_reached_no_one_is_still_picked_up(
        self, workers: WorkerPool, app: Any, db_path: Path
    ) -> None:
        """A task queued without waking the worker (its socket was removed from
        the file's wake-up directory, so the enqueue's byte goes nowhere, as
        when a pub/sub notification is missed on Redis) is found by the
        worker's poll of the file."""
        proc = workers.start()
        workers.wait_ready()
        directory = wake_directory(db_path)
        sockets = wait_for(lambda: list(directory.glob("*.sock")), what="the worker's socket")
        for socket_path in sockets:
            socket_path.unlink()
        app.tq.delay(app.record, args=["missed"], queue="quiet")
        wait_for(lambda: lines(workers.trace_dir / "missed") == ["ran"], timeout=10)
        assert not list(directory.glob("*.sock"))  # no wake-up could have reached it
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, workers.log()
