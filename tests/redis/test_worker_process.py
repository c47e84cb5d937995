"""Workers as real processes against a real Redis: the worker suite of
``tests/worker_scenarios.py`` (kill -9 with tasks running, hard timeouts,
SIGTERM, locks, unique and periodic tasks, with every executor), and what
only Redis has: the server restarted under an idle worker, going away while
a task runs and coming back, the eviction warning, and a missed pub/sub
notification. Those happen where the worker talks to the broker, and the
executor plays no part: they run with the default executor (an outage
mid-task with sync too, whose task holds the worker's loop).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

import worker_app
from redis_server import launch_redis_server
from taskq_core import TaskQ
from taskq_redis import RedisBroker
from worker_procs import WorkerPool, lines, wait_for
from worker_scenarios import ProcessScenarios, worker_app_pool

pytestmark = [pytest.mark.redis, pytest.mark.slow]


class TestWorkerProcessOnRedis(ProcessScenarios):
    """The worker suite on the session's Redis server, emptied for each test."""

    @pytest.fixture
    def broker_url(self, redis_url: str, redis_client: Any) -> str:
        return redis_url

    def test_worker_survives_redis_restart(self, workers: WorkerPool, tmp_path: Path) -> None:
        """Redis stopped and started again under an idle worker: the worker logs the
        outage, backs off, and processes a task queued after the restart (decision 10)."""
        server = launch_redis_server()
        port = server.port
        try:
            pool = worker_app_pool(server.url, tmp_path)
            workers.procs = pool.procs  # cleaned up by the fixture
            proc = pool.start(app=None)
            pool.wait_ready()
            server.stop()
            wait_for(lambda: "broker unavailable" in pool.log(), what="outage logged")
            time.sleep(1.0)
            server = launch_redis_server(extra_args=("--port", str(port)))
            tq = TaskQ(f"redis://127.0.0.1:{port}/0")
            tq.delay(worker_app.record, args=["after-restart"], kwargs={"value": "ok"})
            wait_for(
                lambda: lines(tmp_path / "after-restart") == ["ok"],
                timeout=40,
                what="task after restart",
            )
            tq.broker.close()
            assert proc.poll() is None
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            server.stop()

    @pytest.mark.parametrize("executor", ["fork", "sync"])
    def test_outcome_stored_after_redis_comes_back_mid_task(
        self, workers: WorkerPool, tmp_path: Path, executor: str
    ) -> None:
        """Redis goes away while a task runs and comes back (with its data) later: the
        worker keeps the finished task's outcome, retries storing it with back-off, and
        stores it once Redis is back — the task is done, not left active. (With sync
        the task runs on the worker's own loop and a thread keeps its heartbeat; the
        other executors leave the loop free, as fork does.)"""
        server = launch_redis_server(extra_args=("--appendonly", "yes"))
        port, directory = server.port, server.directory
        try:
            tq = TaskQ(f"redis://127.0.0.1:{port}/0")
            tq.delay(worker_app.slow, args=["outage", 2.0])
            pool = worker_app_pool(server.url, tmp_path)
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
            tq.broker.close()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0, pool.log()
        finally:
            server.stop()

    def test_worker_warns_at_start_when_redis_may_evict_keys(
        self, workers: WorkerPool, tmp_path: Path
    ) -> None:
        """At start the worker logs a warning when Redis' maxmemory-policy can evict keys
        (tasks would vanish under memory pressure); with noeviction it does not."""
        for policy, warned in (("allkeys-lru", True), ("noeviction", False)):
            server = launch_redis_server(extra_args=("--maxmemory-policy", policy))
            try:
                (tmp_path / policy).mkdir()
                pool = worker_app_pool(server.url, tmp_path / policy)
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
        self, workers: WorkerPool, app: Any, redis_url: str
    ) -> None:
        """Decision 8: a task queued without the worker hearing about it (its
        notification went to a channel nobody listens to, as when the worker's
        pub/sub connection is down) is found by the periodic resync of queue names."""
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
