"""The ``sync`` executor: tasks run in the worker's own process."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from taskq_core.execution import RunResult, run_group
from taskq_core.executors.base import Executor, ExecutorHost, Heartbeat

if TYPE_CHECKING:
    from taskq_core.task import Task

__all__ = ["SyncExecutor"]


class SyncExecutor(Executor):
    """Runs tasks in the worker process; a heartbeat thread (one per worker,
    started on first use) keeps the running tasks alive meanwhile."""

    exit_worker_on_job_timeout = True

    def __init__(self, worker: ExecutorHost) -> None:
        super().__init__(worker)
        self._lock = threading.Lock()
        self._heartbeat: Heartbeat | None = None
        self._thread: threading.Thread | None = None

    def _beat_forever(self) -> None:
        interval = float(self.tq.config["ACTIVE_TASK_UPDATE_TIMER"])
        while True:
            time.sleep(interval)
            # holding the lock: a heartbeat never runs after its group finished
            with self._lock:
                if self._heartbeat is None:
                    continue
                try:
                    self._heartbeat()
                except Exception:
                    self.worker.log.exception("task heartbeat failed")

    def execute(self, tasks: Sequence[Task], heartbeat: Heartbeat) -> list[RunResult]:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._beat_forever, name="taskq-heartbeat", daemon=True
            )
            self._thread.start()
        with self._lock:
            self._heartbeat = heartbeat
        try:
            return run_group(
                self.tq,
                tasks,
                store_tracebacks=self.worker.store_tracebacks,
                worker_id=self.worker.id,
            )
        finally:
            with self._lock:
                self._heartbeat = None
