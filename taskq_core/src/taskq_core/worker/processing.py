"""Processing: pop queues into the executor's free slots, group what came
(Decisions 12 and 13), take locks, start each group, and end the groups the
executor reports finished."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import count

from taskq_core.broker import FinishRequest, StoredTask
from taskq_core.exceptions import BrokerConnectionError, SerializationError
from taskq_core.execution import RunResult, effective_hard_timeout, make_execution
from taskq_core.executors import Finished, Run
from taskq_core.outcome import Decision
from taskq_core.task import Task
from taskq_core.worker.finishing import Finishing
from taskq_core.worker.periodic import Periodic

__all__ = ["Group", "Processing"]

_holders = count(1)


@dataclass(eq=False)
class Group:
    """Tasks of one pop that run together (one executor run), and what the
    worker holds for them."""

    queue: str
    #: every task of the group (those refused a lock are already requeued)
    tasks: list[Task]
    #: executions so far, by task id
    counts: dict[str, int]
    #: the queue slot this group holds (``max_workers_per_queue``), if any
    slot: str | None = None
    #: the token its task locks are held by: its own, so that two groups of
    #: one worker (``--concurrency``) never both take one lock
    lock_token: str = ""
    #: task locks taken: lock id -> whether we hold it
    held: dict[str, bool] = field(default_factory=dict)
    #: results known before the run (a periodic task whose schedule failed)
    failed: dict[str, RunResult] = field(default_factory=dict)


class Processing(Periodic, Finishing):
    """Pops, groups, starts and ends task groups."""

    # -- filling the executor's slots ----------------------------------------------
    def _process_from_queue(self, queue: str) -> tuple[bool, bool]:
        """Pop ``queue`` into the free slots and start what came; returns
        (popped anything, queue slot refused)."""
        broker = self.tq.broker
        free = self.executor.free_slots() - len(self._waiting)
        if free <= 0:
            return False, False
        limit = self.queue_slot_limit(queue)
        slot: str | None = None
        if limit is not None:
            slot = f"{self.id}:{next(_holders)}"
            if not broker.acquire_queue_slot(queue, slot, limit, self._ttl()):
                return False, True
        prefetched = self._prefetched.pop(queue, None)
        if prefetched is not None:
            stored = prefetched
        else:
            stored = broker.pop(
                queue, self.pop_size(queue), self.id, float(self.tq.config["LOCK_RETRY"])
            )
        if not stored:
            if slot is not None:
                broker.release_queue_slot(queue, slot)
            return False, False
        self._run_popped(queue, stored, slot)
        return True, False

    def _run_popped(self, queue: str, stored: list[StoredTask], slot: str | None) -> None:
        """Start what one pop returned: every task exactly once, group by group
        (Decisions 12 and 13; see :meth:`_groups`); groups beyond the free
        slots wait (kept alive by the heartbeat) until a slot frees up."""
        tasks: list[Task] = []
        counts: dict[str, int] = {}
        for item in stored:
            counts[item.id] = item.executions_count
            task = Task._from_stored(self.tq, item)
            if task.unreadable is not None:  # never run it: fail it, keep going
                self._fail_unreadable(queue, task, SerializationError(task.unreadable))
            else:
                tasks.append(task)
        batch = self.batch_size(queue) > 1
        groups = self._groups(tasks) if batch else [[task] for task in tasks]
        for index, tasks_of_group in enumerate(groups):
            # a pop under a queue slot holds it for all its groups: the last one releases it
            holder = slot if index == len(groups) - 1 else None
            self._waiting.append(Group(queue, tasks_of_group, counts, holder))
        if not groups and slot is not None:
            self.tq.broker.release_queue_slot(queue, slot)
        self._start_waiting()

    @staticmethod
    def _groups(tasks: list[Task]) -> list[list[Task]]:
        """The tasks of one pop grouped by function and runner class, in order
        of first appearance (Decision 13). A group of a batch function is one
        call; the tasks of a plain function's group run one after the other
        in one run, each with its own outcome (Decision 12)."""
        groups: dict[tuple[str, str | None], list[Task]] = {}
        for task in tasks:
            runner = task.data.get("runner_class")
            if runner is not None and not isinstance(runner, str):  # unreadable: its own group
                runner = repr(runner)
            groups.setdefault((task.serialized_func, runner), []).append(task)
        return list(groups.values())

    def _start_waiting(self) -> None:
        """Start waiting groups while the executor has free slots."""
        while self._waiting and self.executor.free_slots() > 0 and not self.stop_requested:
            self._start_group(self._waiting.pop(0))

    def _start_group(self, group: Group) -> None:
        """Take the group's locks, queue its periodic tasks' next runs, and
        hand it to the executor."""
        broker = self.tq.broker
        lock_retry = float(self.tq.config["LOCK_RETRY"])
        group.lock_token = f"{self.id}:{next(_holders)}"
        runnable: list[Task] = []
        for task in group.tasks:
            if task.lock:
                lock_id = task.lock_id
                if lock_id not in group.held:
                    group.held[lock_id] = broker.acquire_lock(
                        lock_id, group.lock_token, self._ttl()
                    )
                if not group.held[lock_id]:
                    self.log.info("could not acquire lock", task_id=task.id, queue=group.queue)
                    broker.finish(
                        group.queue, task.id, self.id, "requeue", when=time.time() + lock_retry
                    )
                    continue
            runnable.append(task)
        group.tasks = runnable
        if not runnable:
            self._release(group)
            return
        for task in runnable:
            record = self._prepare_periodic(task)
            if record is not None:
                group.failed[task.id] = RunResult(
                    task.id, False, 0.0, record, extra={"permanent": True}
                )
        to_run = [t for t in runnable if t.id not in group.failed]
        run = Run(to_run, self._group_timeout(to_run), owner=group)
        if to_run:
            self.executor.start(run)
        else:
            self._finished_early.append((run, []))

    def _group_timeout(self, tasks: Sequence[Task]) -> float:
        if not tasks:
            return 0.0
        try:
            batch = tasks[0].is_batch_func
        except Exception:
            batch = False
        if batch:
            return effective_hard_timeout(self.tq, tasks)
        return sum(effective_hard_timeout(self.tq, [t]) for t in tasks)

    # -- while groups run ------------------------------------------------------------
    def heartbeat_running(self) -> None:
        """Refresh, in as few broker calls as the broker allows, the heartbeat
        of every task this worker holds (running, waiting for a slot, popped
        ahead), and renew the locks and queue slots of the running groups."""
        broker = self.tq.broker
        ids: dict[str, list[str]] = {}
        groups = [run.owner for run in self.executor.running() if isinstance(run.owner, Group)]
        for group in [*groups, *self._waiting]:
            ids.setdefault(group.queue, []).extend(t.id for t in group.tasks)
        for queue, items in self._prefetched.items():
            ids.setdefault(queue, []).extend(item.id for item in items)
        if ids:
            broker.heartbeat_many(ids, self.id)
        ttl = self._ttl()
        for group in groups:
            for lock_id, ok in group.held.items():
                if ok and not broker.renew_lock(lock_id, group.lock_token, ttl):
                    self.log.warning("could not reacquire lock", lock_id=lock_id)
            if group.slot is not None:
                limit = self.queue_slot_limit(group.queue)
                broker.acquire_queue_slot(group.queue, group.slot, limit or 1, ttl)
        self._last_heartbeat = time.time()

    def _heartbeat_if_due(self) -> None:
        if time.time() - self._last_heartbeat >= float(self.tq.config["ACTIVE_TASK_UPDATE_TIMER"]):
            try:
                self.heartbeat_running()
            except (BrokerConnectionError, ConnectionError):
                raise
            except Exception:
                self.log.exception("task heartbeat failed")

    def _until_heartbeat(self) -> float:
        interval = float(self.tq.config["ACTIVE_TASK_UPDATE_TIMER"])
        return max(0.0, self._last_heartbeat + interval - time.time())

    def _busy(self) -> bool:
        return bool(self.executor.running() or self._waiting or self._finished_early)

    # -- ending groups -------------------------------------------------------------------
    def _end_finished(self, finished: list[Finished]) -> None:
        """Store the outcomes of the groups that are over, one broker call per
        queue for all of them (the next pop of a worker that serves one queue
        rides along), release what they held, and start waiting groups in the
        slots that freed up."""
        finished = [*self._finished_early, *finished]
        self._finished_early = []
        timed_out = False
        by_queue: dict[str, list[Group]] = {}
        ended: dict[str, list[tuple[list[Task], dict[str, RunResult], dict[str, int]]]] = {}
        for run, results in finished:
            group = run.owner
            assert isinstance(group, Group)
            self._release_locks(group)
            by_id = {r.task_id: r for r in results}
            by_id.update(group.failed)
            timed_out = timed_out or any(r.timed_out for r in results)
            by_queue.setdefault(group.queue, []).append(group)
            ended.setdefault(group.queue, []).append((group.tasks, by_id, group.counts))
            self._stats_busy += time.time() - run.started
        for index, (queue, groups) in enumerate(by_queue.items()):
            self._finish_groups(queue, ended[queue], prefetch=index == len(by_queue) - 1)
            for group in groups:
                if group.slot is not None:
                    self.tq.broker.release_queue_slot(group.queue, group.slot)
        if timed_out and self.executor.exit_worker_on_job_timeout:
            self.log.error("exiting worker due to job timeout error")
            self._requeue_waiting()
            raise SystemExit("exiting worker due to job timeout error")
        self._start_waiting()

    def _release(self, group: Group) -> None:
        self._release_locks(group)
        if group.slot is not None:
            self.tq.broker.release_queue_slot(group.queue, group.slot)

    def _requeue_waiting(self) -> None:
        """Give popped groups that never started back to their queue."""
        waiting, self._waiting = self._waiting, []
        for group in waiting:
            self._release(group)
            self._requeue_unstarted(group.queue, group.tasks)

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

    def _release_locks(self, group: Group) -> None:
        for lock_id, ok in group.held.items():
            if ok:
                self.tq.broker.release_lock(lock_id, group.lock_token)
        group.held.clear()

    def _ttl(self) -> float:
        return float(self.tq.config["ACTIVE_TASK_UPDATE_TIMEOUT"])
