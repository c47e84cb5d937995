"""Processing: pop a queue, group what came (Decisions 12 and 13), take locks
and run each group with the executor."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from taskq_core.broker import FinishRequest, StoredTask
from taskq_core.exceptions import (
    BrokerConnectionError,
    SerializationError,
)
from taskq_core.execution import RunResult, make_execution
from taskq_core.outcome import Decision
from taskq_core.task import Task

if TYPE_CHECKING:
    pass

from taskq_core.worker.finishing import Finishing
from taskq_core.worker.periodic import Periodic

__all__ = ["Processing"]


class Processing(Periodic, Finishing):
    """Pops, groups and runs tasks."""

    def _process_from_queue(self, queue: str) -> tuple[bool, bool]:
        """Pop and run one batch; returns (popped anything, slot refused)."""
        broker = self.tq.broker
        limit = self.queue_slot_limit(queue)
        ttl = float(self.tq.config["ACTIVE_TASK_UPDATE_TIMEOUT"])
        if limit is not None and not broker.acquire_queue_slot(queue, self.id, limit, ttl):
            return False, True
        try:
            prefetched = self._prefetched.pop(queue, None)
            if prefetched is not None:
                stored = prefetched
            else:
                stored = broker.pop(
                    queue, self.batch_size(queue), self.id, float(self.tq.config["LOCK_RETRY"])
                )
            if not stored:
                return False, False
            started = time.time()
            self._run_popped(queue, stored, slot_limit=limit)
            self._stats_busy += time.time() - started
            return True, False
        finally:
            if limit is not None:
                broker.release_queue_slot(queue, self.id)

    def _run_popped(self, queue: str, stored: list[StoredTask], slot_limit: int | None) -> None:
        """Run what one pop returned: every task exactly once, group by group
        (Decisions 12 and 13; see :meth:`_groups`). Groups that have not
        started when the worker stops (or leaves because a group made it
        exit) go back to the queue, so nothing is left ``active``."""
        tasks: list[Task] = []
        counts: dict[str, int] = {}
        for item in stored:
            counts[item.id] = item.executions_count
            task = Task._from_stored(self.tq, item)
            if task.unreadable is not None:  # never run it: fail it, keep going
                self._fail_unreadable(queue, task, SerializationError(task.unreadable))
            else:
                tasks.append(task)
        groups = self._groups(tasks)
        started = 0
        try:
            for index, group in enumerate(groups):
                if self.stop_requested:
                    break
                started = index + 1
                waiting = [t.id for later in groups[started:] for t in later]
                last = started == len(groups)
                self._execute_group(queue, group, counts, slot_limit, waiting, prefetch=last)
        finally:
            self._requeue_unstarted(queue, [t for group in groups[started:] for t in group])

    @staticmethod
    def _groups(tasks: list[Task]) -> list[list[Task]]:
        """The tasks of one pop grouped by function and runner class, in order
        of first appearance (Decision 13). A group of a batch function is one
        call; the tasks of a plain function's group run one after the other
        in one child, each with its own outcome (Decision 12)."""
        groups: dict[tuple[str, str | None], list[Task]] = {}
        for task in tasks:
            runner = task.data.get("runner_class")
            if runner is not None and not isinstance(runner, str):  # unreadable: its own group
                runner = repr(runner)
            groups.setdefault((task.serialized_func, runner), []).append(task)
        return list(groups.values())

    def _requeue_unstarted(self, queue: str, tasks: list[Task]) -> None:
        """Give popped tasks that never started back to their queue."""
        if not tasks:
            return
        requests = [FinishRequest(task.id, "requeue") for task in tasks]
        try:
            self.tq.broker.finish_many(queue, self.id, requests)
        except (BrokerConnectionError, ConnectionError):
            self.log.error(
                "could not return popped tasks; they will be recovered",
                queue=queue,
                count=len(tasks),
            )
            return
        self.log.info("popped tasks returned to queue", queue=queue, count=len(tasks))

    def _fail_unreadable(self, queue: str, task: Task, exc: Exception) -> None:
        """A task nobody can run: to error with a record, reported like any
        permanent failure (so error trackers see it)."""
        record = make_execution(
            time.time(), exc, store_tracebacks=self.store_tracebacks, worker_id=self.id
        )
        self._store(
            lambda: self.tq.broker.finish(queue, task.id, self.id, "error", execution=record)
        )
        self.log.error(
            "task error", queue=queue, task_id=task.id, error=f"{type(exc).__name__}: {exc}"
        )
        self._report(task, record, Decision("error"))

    def _execute_group(
        self,
        queue: str,
        group: list[Task],
        counts: dict[str, int],
        slot_limit: int | None,
        waiting: Sequence[str] = (),
        *,
        prefetch: bool = False,
    ) -> None:
        """Run one group of a pop and store its outcomes; ``waiting``: ids of
        the pop's later groups (kept alive by the heartbeat meanwhile);
        ``prefetch``: the last group, whose outcomes may carry the next pop."""
        broker = self.tq.broker
        ttl = float(self.tq.config["ACTIVE_TASK_UPDATE_TIMEOUT"])
        lock_retry = float(self.tq.config["LOCK_RETRY"])
        held: dict[str, bool] = {}
        runnable: list[Task] = []
        for task in group:
            if task.lock:
                lock_id = task.lock_id
                if lock_id not in held:
                    held[lock_id] = broker.acquire_lock(lock_id, self.id, ttl)
                if not held[lock_id]:
                    self.log.info("could not acquire lock", task_id=task.id, queue=queue)
                    broker.finish(queue, task.id, self.id, "requeue", when=time.time() + lock_retry)
                    continue
            runnable.append(task)
        if not runnable:
            self._release_locks(held)
            return
        failed: dict[str, RunResult] = {}
        for task in runnable:
            record = self._prepare_periodic(task)
            if record is not None:
                failed[task.id] = RunResult(task.id, False, 0.0, record, extra={"permanent": True})
        to_run = [t for t in runnable if t.id not in failed]
        ids = [t.id for t in runnable] + list(waiting)

        def heartbeat() -> None:
            broker.heartbeat(queue, ids, self.id)
            for lock_id, ok in held.items():
                if ok and not broker.renew_lock(lock_id, self.id, ttl):
                    self.log.warning("could not reacquire lock", lock_id=lock_id)
            if slot_limit is not None:
                broker.acquire_queue_slot(queue, self.id, slot_limit, ttl)

        try:
            results = self.executor.execute(to_run, heartbeat) if to_run else []
        finally:
            self._release_locks(held)
        by_id = {r.task_id: r for r in results}
        by_id.update(failed)
        timed_out = any(r.timed_out for r in results)
        self._finish_group(queue, runnable, by_id, counts, prefetch=prefetch)
        if timed_out and self.executor.exit_worker_on_job_timeout:
            self.log.error("exiting worker due to job timeout error")
            raise SystemExit("exiting worker due to job timeout error")

    def _release_locks(self, held: dict[str, bool]) -> None:
        for lock_id, ok in held.items():
            if ok:
                self.tq.broker.release_lock(lock_id, self.id)
