"""Real `taskq worker` processes on the private PostgreSQL server's test
database, emptied for each test: the worker suite of
``tests/worker_scenarios.py`` (kill -9 with tasks running, hard timeouts,
SIGTERM, locks, unique and periodic tasks, with every executor), and the
PostgreSQL counterpart of a Redis outage mid-task: every connection of the
worker (its LISTEN one too) is cut by the server while a task runs."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from worker_procs import WorkerPool, lines, release, wait_for
from worker_scenarios import ProcessScenarios

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def cut_connections(url: str) -> int:
    """Terminate every other connection to the database (as an administrator
    or a restarting proxy would); how many there were."""
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(found)


class TestWorkerProcessOnPostgres(ProcessScenarios):
    @pytest.fixture
    def broker_url(self, clean_url: str) -> str:
        return clean_url

    @pytest.mark.parametrize("executor", ["fork", "sync"])
    def test_outcome_stored_after_the_server_cuts_every_connection_mid_task(
        self, workers: WorkerPool, app: Any, tmp_path: Path, executor: str
    ) -> None:
        """The server terminates every connection of the worker while a task
        runs: the worker's next calls fail, it says the broker is unavailable,
        connects again, and stores the finished task's outcome (the task ran
        once and is done, not left active); it listens again, so a task
        queued afterwards runs too. (With sync the task runs on the worker's
        own loop and a thread keeps its heartbeat.)"""
        app.tq.delay(app.slow, args=["outage", 1.5])
        proc = workers.start("--executor", executor)
        wait_for(lambda: "started" in lines(tmp_path / "outage"), what="task started")
        release(app.tq)  # this process's connections are not the worker's
        assert cut_connections(workers.url) >= 2  # its pool's and its LISTEN one
        wait_for(lambda: "finished" in lines(tmp_path / "outage"), what="task finished")
        wait_for(lambda: app.tq.get_queue_stats() == {}, timeout=40, what="outcome stored")
        assert lines(tmp_path / "outage") == ["started", "finished"]
        wait_for(lambda: "broker available again" in workers.log(), what="the outage logged")
        assert "broker unavailable" in workers.log()
        app.tq.delay(app.record, args=["after"])
        wait_for(lambda: lines(tmp_path / "after") == ["ran"], what="a task queued afterwards")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, workers.log()
