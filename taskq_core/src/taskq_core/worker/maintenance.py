"""Maintenance between runs: queue names resynced (Decision 8), due scheduled
tasks moved, expired active tasks recovered (Decision 2), dropped entries
logged (Decision 19)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from taskq_core.exceptions import (
    JobTimeoutException,
    SerializationError,
    TaskNotFound,
)
from taskq_core.execution import exception_name, make_execution
from taskq_core.outcome import Decision, decide_retry, finish_outcome
from taskq_core.states import State
from taskq_core.task import Task

if TYPE_CHECKING:
    pass

from taskq_core.worker.finishing import Finishing

__all__ = ["Maintenance"]


class Maintenance(Finishing):
    """Resync, scheduled moves, crash recovery."""

    def _log_dropped(self) -> None:
        """One warning per entry the broker dropped or moved to error because
        its stored data was missing or unreadable (Decision 19)."""
        for entry in self.tq.broker.take_dropped():
            self.log.warning(
                "unreadable task moved to error" if entry.moved_to_error else "dropped task",
                queue=entry.queue,
                task_id=entry.task_id,
                state=entry.state.value,
                reason=entry.reason,
            )

    def _nothing_queued(self) -> bool:
        self._maintenance(force=True)  # due scheduled tasks count as queued work
        self._resync(force=True)
        for queue in list(self._queue_set):
            if self.tq.broker.queue_sizes(queue).get(State.QUEUED, 0):
                return False
        return True

    def _resync(self, force: bool = False) -> None:
        """Re-read queue names from the broker, so that a missed notification
        never strands a queue."""
        now = time.time()
        if not force and now - self._last_resync < float(self.tq.config["QUEUE_RESYNC_INTERVAL"]):
            return
        self._last_resync = now
        for queue in self.tq.broker.queues(State.QUEUED):
            if self.processes(queue):
                self._queue_set.add(queue)

    def _maintenance(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._last_maintenance < float(self.tq.config["SELECT_TIMEOUT"]):
            return
        if self.stop_requested:
            return
        self._last_maintenance = now
        broker = self.tq.broker
        move_interval = float(self.tq.config["QUEUE_SCHEDULED_TASKS_TIME"])
        if force or not move_interval or broker.try_rate_limit("move_due", move_interval):
            batch = int(self.tq.config["SCHEDULED_TASK_BATCH_SIZE"])
            for queue in broker.queues(State.SCHEDULED):
                if self.processes(queue):
                    moved = broker.move_due(queue, batch)
                    if moved:
                        self.log.debug("scheduled tasks", queue=queue, count=moved)
                        self._queue_set.add(queue)
        interval = float(self.tq.config["REQUEUE_EXPIRED_TASKS_INTERVAL"])
        if broker.try_rate_limit("expired", interval):
            self._handle_expired()

    def _handle_expired(self) -> None:
        broker = self.tq.broker
        older_than = broker.time() - float(self.tq.config["ACTIVE_TASK_UPDATE_TIMEOUT"])
        batch = int(self.tq.config["REQUEUE_EXPIRED_TASKS_BATCH_SIZE"])
        while True:
            expired = broker.expired_tasks(older_than, batch)
            dropped = self._recover_expired(expired, older_than)
            # ids whose data was lost leave active: look again, so that a
            # batch of them never holds up the other expired tasks
            if not dropped or len(expired) < batch:
                return

    def _recover_expired(self, expired: list[tuple[str, str]], older_than: float) -> int:
        """Recover these expired tasks; returns how many ids without data it
        removed from ``active``."""
        broker = self.tq.broker
        dropped = 0
        for queue, task_id in expired:
            try:
                stored = broker.get_task(queue, State.ACTIVE, task_id)
            except TaskNotFound:
                if broker.drop_expired_missing(queue, task_id, older_than):
                    dropped += 1
                    self.log.warning(
                        "removed expired task whose data is missing",
                        queue=queue,
                        task_id=task_id,
                    )
                continue
            task = Task._from_stored(self.tq, stored)
            if task.unreadable is not None:  # nothing to retry it with: fail it
                self._fail_expired_unreadable(queue, task, stored.ts, older_than)
                continue
            record = make_execution(
                stored.ts,
                None,
                store_tracebacks=self.store_tracebacks,
                name=exception_name(JobTimeoutException),
                message="worker lost: the task's heartbeat expired (its worker died or hung)",
                worker_id=self.id,
            )
            decision = decide_retry(self.tq, task, record, stored.executions_count + 1, time.time())
            moved = broker.recover_expired(
                queue,
                task_id,
                older_than,
                finish_outcome(decision),
                when=decision.when,
                execution=record,
                max_stored_executions=task.max_stored_executions,
            )
            if moved:
                self.log.warning(
                    "queueing expired task"
                    if decision.outcome == "retry"
                    else "failing expired task",
                    queue=queue,
                    task_id=task_id,
                )
                self._report(task, record, decision)
        return dropped

    def _fail_expired_unreadable(
        self, queue: str, task: Task, started: float, older_than: float
    ) -> None:
        """A lost task whose stored data cannot be read: to error with a record
        saying so (its retry options cannot be trusted)."""
        record = make_execution(
            started,
            SerializationError(f"worker lost, and {task.unreadable}"),
            store_tracebacks=self.store_tracebacks,
            worker_id=self.id,
        )
        if self.tq.broker.recover_expired(queue, task.id, older_than, "error", execution=record):
            self.log.error(
                "failing expired task", queue=queue, task_id=task.id, error=task.unreadable
            )
            self._report(task, record, Decision("error"))
