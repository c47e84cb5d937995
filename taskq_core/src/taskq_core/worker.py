"""The worker: finds queued work, runs it, records the outcome.

One worker process runs one task group at a time; run several processes for
concurrency. See ``docs/workers.md``.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from taskq_core._internal import from_timestamp
from taskq_core.broker import Execution, FinishRequest, StoredTask
from taskq_core.config import DEFAULT_EXECUTOR, _DefaultExecutor
from taskq_core.exceptions import (
    BrokerConnectionError,
    JobTimeoutException,
    PolicyError,
    SerializationError,
    TaskNotFound,
)
from taskq_core.execution import RunResult, exception_name, make_execution
from taskq_core.outcome import PERMANENT_FAILURE, Decision, decide_retry, finish_outcome, next_run
from taskq_core.plugins import call_hook_safely
from taskq_core.queues import dotted_parts, queue_matches
from taskq_core.states import State
from taskq_core.task import Task

if TYPE_CHECKING:
    from taskq_core.executors import Executor
    from taskq_core.types import App as TaskQ

__all__ = ["DEFAULT_EXECUTOR", "Decision", "Worker", "decide_retry"]


_BACKOFF_MAX = 30.0


class Worker:
    """Processes tasks of the queues it is given.

    Create it with ``tq.run_worker(...)`` or ``taskq worker``.
    """

    def __init__(
        self,
        tq: TaskQ,
        queues: Sequence[str] | None = None,
        exclude_queues: Sequence[str] | None = None,
        max_workers_per_queue: int | None = None,
        store_tracebacks: bool | None = None,
        executor: str | type[Executor] = DEFAULT_EXECUTOR,
        single_worker_queues: Sequence[str] | None = None,
    ) -> None:
        for name, value in (("queues", queues), ("exclude_queues", exclude_queues)):
            if isinstance(value, str):
                raise TypeError(f"{name} must be a list of queue names, not a string")
        self.tq = tq
        self.id = str(uuid.uuid4())
        self.log: Any = tq.log.bind(worker_id=self.id, pid=os.getpid())
        self.only_queues = set(queues or tq.config["ONLY_QUEUES"])
        self.exclude_queues = set(exclude_queues or tq.config["EXCLUDE_QUEUES"])
        self.single_worker_queues = set(single_worker_queues or tq.config["SINGLE_WORKER_QUEUES"])
        if max_workers_per_queue is not None and max_workers_per_queue < 1:
            raise ValueError("max_workers_per_queue must be at least 1")
        self.max_workers_per_queue = max_workers_per_queue
        self.store_tracebacks = (
            tq.config["STORE_TRACEBACKS"] if store_tracebacks is None else store_tracebacks
        )
        self.executor = self._make_executor(executor)
        self.stop_requested = False
        self._deadline: float | None = None
        self.force_stop = False
        self.wakeup_fd: int | None = None
        self._wakeup_write: int | None = None
        self._queue_set: set[str] = set()
        #: tasks popped together with the previous group's outcomes (one round
        #: trip), run first in the next pass; returned to the queue at exit
        self._prefetched: dict[str, list[StoredTask]] = {}
        self._last_resync = 0.0
        self._last_maintenance = 0.0
        self._stats_started = time.time()
        self._stats_busy = 0.0
        self._stats_last = time.time()
        self.processed = 0

    # -- setup -------------------------------------------------------------------
    def _make_executor(self, executor: str | type[Executor]) -> Executor:
        """An executor by registered name (``fork``, ``sync``, ``pool`` or a
        plugin's), or a class."""
        from taskq_core.exceptions import ConfigError
        from taskq_core.plugins import get_executor_factory

        broker = self.tq.broker
        if isinstance(executor, str):
            if isinstance(executor, _DefaultExecutor) and not broker.supports_fork:
                executor = "sync"
            try:
                factory: Any = get_executor_factory(str(executor))
            except ConfigError as exc:
                raise ValueError(str(exc)) from exc
        else:
            factory = executor
        if getattr(factory, "forks", False) and not broker.supports_fork:
            raise ValueError(
                f"the {broker.name or type(broker).__name__} broker keeps tasks inside "
                f"this process, so a forked child could not report back; use "
                "executor='sync' (or a broker such as redis:// to fork)"
            )
        made: Executor = factory(self)
        return made

    def processes(self, queue: str) -> bool:
        """Whether this worker takes tasks from ``queue``."""
        return queue_matches(queue, self.only_queues, self.exclude_queues)

    def batch_size(self, queue: str) -> int:
        size = 1
        for part in dotted_parts(queue):
            size = self.tq.config["BATCH_QUEUES"].get(part, size)
        return int(size)

    def queue_slot_limit(self, queue: str) -> int | None:
        if any(part in self.single_worker_queues for part in dotted_parts(queue)):
            return 1
        return self.max_workers_per_queue

    # -- signals -------------------------------------------------------------------
    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        self.wakeup_fd, self._wakeup_write = read_fd, write_fd
        previous_fd = signal.set_wakeup_fd(write_fd)

        def on_signal(signum: int, frame: Any) -> None:
            if self.stop_requested:
                self.force_stop = True
            self.stop_requested = True

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            signal.set_wakeup_fd(previous_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(read_fd)
            os.close(write_fd)
            self.wakeup_fd = self._wakeup_write = None

        return restore

    def drain_wakeup(self) -> None:
        if self.wakeup_fd is None:
            return
        try:
            while os.read(self.wakeup_fd, 512):
                pass
        except BlockingIOError:
            pass
        if self.stop_requested:
            self.log.info(
                "stop requested, waiting for task to finish"
                if not self.force_stop
                else "second stop request, returning task"
            )

    # -- main loop -------------------------------------------------------------------
    def run(self, burst: bool = False, exit_after: float | None = None) -> None:
        """Process tasks until stopped; ``burst``: until none of our queues has a
        queued task; ``exit_after``: minutes."""
        restore = self._install_signals()
        deadline = time.time() + exit_after * 60 if exit_after else None
        self._deadline = deadline
        try:
            self.log.info(
                "ready",
                queues=sorted(self.only_queues),
                exclude_queues=sorted(self.exclude_queues),
                single_worker_queues=sorted(self.single_worker_queues),
                max_workers_per_queue=self.max_workers_per_queue,
                executor=type(self.executor).__name__,
                burst=burst,
                exit_after=exit_after,
            )
            self._with_backoff(self._startup)
            call_hook_safely("taskq_worker_started", tq=self.tq, worker=self)
            idle_rounds = 0
            while not self.stop_requested:
                did_work = self._with_backoff(lambda: self._iteration(burst))
                if did_work is None:  # broker unavailable: retried with back-off
                    continue
                idle_rounds = 0 if did_work else idle_rounds + 1
                if burst and not did_work:
                    if self._with_backoff(self._nothing_queued):
                        break
                    if idle_rounds > 1:
                        # still queued work this worker cannot take (queue slots
                        # taken, a queue system lock): wait instead of spinning
                        self._sleep(float(self.tq.config["SELECT_TIMEOUT"]))
                if deadline is not None and time.time() >= deadline:
                    self.log.info("exit-after elapsed")
                    break
                self._maybe_log_stats()
        finally:
            self._return_prefetched(self._prefetched)
            self._log_dropped()
            self.executor.close()
            call_hook_safely("taskq_worker_stopping", tq=self.tq, worker=self)
            restore()
            self.log.info("done", processed=self.processed)

    def _retrying(
        self, func: Callable[[], Any], give_up: Callable[[], bool]
    ) -> tuple[bool, Any, bool]:
        """Call ``func``; while the broker is unreachable, log it once and retry
        with exponential back-off (0.5 s doubling to 30 s) until ``give_up()``.
        Returns (succeeded, result, there was an outage)."""
        delay = 0.5
        failed = False
        while True:
            try:
                result = func()
            except (BrokerConnectionError, ConnectionError) as exc:
                if not failed:
                    self.log.error("broker unavailable", error=str(exc))
                failed = True
                if give_up():
                    return False, None, True
                self._pause(delay, give_up)
                delay = min(delay * 2, _BACKOFF_MAX)
                continue
            if failed:
                self.log.info("broker available again")
            return True, result, failed

    def _with_backoff(self, func: Callable[[], Any]) -> Any:
        """Run a step of the loop through an outage (until stopped); returns
        ``None`` after an outage, so the loop starts its pass again."""
        _, result, outage = self._retrying(func, lambda: self.stop_requested)
        if outage:
            self._last_resync = 0.0
            return None
        return result

    def _store(self, func: Callable[[], Any]) -> Any:
        """Store an outcome through an outage, even when a stop was requested (a
        finished task's outcome is worth waiting for). Gives up only on an
        insistent stop: the task is then recovered as lost after
        ``ACTIVE_TASK_UPDATE_TIMEOUT``."""
        stored, result, _ = self._retrying(func, lambda: self.force_stop)
        if not stored:
            self.log.error("outcome not stored; the task will be recovered as lost")
        return result

    def _pause(self, seconds: float, give_up: Callable[[], bool]) -> None:
        end = time.time() + seconds
        while not give_up() and (remaining := end - time.time()) > 0:
            time.sleep(min(0.1, remaining))

    def _sleep(self, seconds: float) -> None:
        self._pause(seconds, lambda: self.stop_requested)

    def _startup(self) -> None:
        for warning in self.tq.broker.check():
            self.log.warning("broker setup", warning=warning)
        self._queue_periodic_tasks()
        self._resync(force=True)
        self._maintenance(force=True)

    def _iteration(self, burst: bool) -> bool:
        self._resync()
        self._maintenance()
        queues = list(self._queue_set)
        random.shuffle(queues)
        queues.sort(key=lambda q: q not in self._prefetched)  # prefetched first
        did_work = False
        for queue in queues:
            if self.stop_requested:
                break
            popped, slot_refused = self._process_from_queue(queue)
            did_work = did_work or popped
            if not popped and not slot_refused:
                self._queue_set.discard(queue)
        self._log_dropped()
        if not did_work and not self.stop_requested and not burst:
            timeout = float(self.tq.config["SELECT_TIMEOUT"])
            if self._deadline is not None:  # --exit-after: do not idle past it
                timeout = max(0.0, min(timeout, self._deadline - time.time()))
            for name in self.tq.broker.wait_for_activity(timeout):
                if self.processes(name) and name not in self._queue_set:
                    self.log.debug("new queue", queue=name)
                    self._queue_set.add(name)
        return did_work

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

    # -- crash recovery -------------------------------------------------------------
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

    # -- periodic tasks -----------------------------------------------------------------
    def _queue_periodic_tasks(self) -> None:
        from taskq_core.app import PERIODIC_TASKS

        funcs = dict(PERIODIC_TASKS)
        funcs.update(self.tq.periodic_task_funcs)
        for name, func in funcs.items():
            try:
                task = Task(self.tq, func)
                if self.processes(task.queue):
                    self._queue_next_period(task)
            except (BrokerConnectionError, ConnectionError):
                raise
            except Exception as exc:  # one bad declaration must not stop the others
                self.log.error("could not queue periodic task", func=name, error=str(exc))

    def _queue_next_period(self, task: Task) -> None:
        """Queue the next run of a periodic task; :class:`PolicyError` if its
        schedule misbehaves (Decision 17)."""
        schedule = task.options.get("schedule")
        if schedule is None:
            return
        when = next_run(schedule, from_timestamp(time.time()))
        if when is None:
            return
        fresh = Task(self.tq, task.func)
        fresh.delay(when=when)
        self.log.debug("queued periodic task", func=fresh.serialized_func, when=str(when))

    # -- processing ---------------------------------------------------------------------
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

    def _return_prefetched(self, prefetched: dict[str, list[StoredTask]]) -> None:
        """Give tasks popped ahead back to their queue (they never ran)."""
        for queue, items in list(prefetched.items()):
            if not items:
                continue
            requests = [FinishRequest(item.id, "requeue") for item in items]
            try:
                self.tq.broker.finish_many(queue, self.id, requests)
            except (BrokerConnectionError, ConnectionError):
                self.log.error(
                    "could not return prefetched tasks; they will be recovered",
                    queue=queue,
                    count=len(items),
                )
        prefetched.clear()

    def _release_locks(self, held: dict[str, bool]) -> None:
        for lock_id, ok in held.items():
            if ok:
                self.tq.broker.release_lock(lock_id, self.id)

    def _prepare_periodic(self, task: Task) -> Execution | None:
        """Queue the next run of a periodic task before it runs. Returns the
        failure record of a task whose schedule misbehaved: that task fails
        permanently without running (Decision 17)."""
        try:
            if task.options.get("schedule") is not None:
                self._queue_next_period(task)
        except PolicyError as exc:
            message = f"{exc}; {PERMANENT_FAILURE} (it did not run)"
            record = make_execution(
                time.time(), exc, store_tracebacks=self.store_tracebacks, worker_id=self.id
            )
            record["exception"] = record["policy_error"] = message
            return record
        except Exception:
            self.log.exception("could not queue next period", task_id=task.id)
        return None

    def _finish_group(
        self,
        queue: str,
        tasks: list[Task],
        results: dict[str, RunResult],
        counts: dict[str, int],
        *,
        prefetch: bool = False,
    ) -> None:
        """Store the outcome of every task of a group in one broker call, then
        log each and fire its hooks. With ``prefetch`` (the last group of a pop)
        the next pop of a worker serving only this queue rides along."""
        requests: list[FinishRequest] = []
        reports: list[tuple[Task, RunResult, Decision | None]] = []
        for task in tasks:
            result = results.get(task.id) or RunResult(
                task.id,
                False,
                0.0,
                make_execution(
                    time.time(),
                    None,
                    store_tracebacks=False,
                    name=exception_name(JobTimeoutException),
                    message="no result reported",
                ),
            )
            if result.extra.get("requeue"):
                requests.append(FinishRequest(task.id, "requeue"))
                reports.append((task, result, None))
                continue
            if result.success:
                requests.append(FinishRequest(task.id, "done"))
                reports.append((task, result, None))
                continue
            record = result.execution or make_execution(
                time.time(), None, store_tracebacks=False, message="unknown failure"
            )
            result.execution = record
            if result.extra.get("permanent"):  # no retry policy applies
                decision = Decision("error")
            else:
                number = counts.get(task.id, 0) + 1
                decision = decide_retry(self.tq, task, record, number, time.time())
            requests.append(
                FinishRequest(
                    task.id,
                    finish_outcome(decision),
                    when=decision.when,
                    execution=record,
                    max_stored_executions=task.max_stored_executions,
                )
            )
            reports.append((task, result, decision))
        broker = self.tq.broker
        if prefetch and self._queue_set == {queue} and self.queue_slot_limit(queue) is None:
            # the next pass pops this queue again: do it in the same round trip
            stored = self._store(
                lambda: broker.finish_many_then_pop(
                    queue,
                    self.id,
                    requests,
                    0 if self.stop_requested else self.batch_size(queue),
                    float(self.tq.config["LOCK_RETRY"]),
                )
            )
            if stored is not None and (self.stop_requested or not stored[1]):
                self._return_prefetched({queue: stored[1]})
            elif stored is not None:  # added to (never replacing) what is there
                self._prefetched.setdefault(queue, []).extend(stored[1])
        else:
            self._store(lambda: broker.finish_many(queue, self.id, requests))
        for reported in reports:
            self._log_outcome(queue, *reported)

    def _log_outcome(
        self, queue: str, task: Task, result: RunResult, decision: Decision | None
    ) -> None:
        log = self.log.bind(queue=queue, task_id=task.id, func=task.serialized_func)
        if result.extra.get("requeue"):
            reason = result.extra["requeue"]
            log.info("task returned to queue", reason=reason if isinstance(reason, str) else None)
            return
        self.processed += 1
        if decision is None:
            log.info("done", processing_duration=round(result.duration, 6))
            call_hook_safely(
                "taskq_task_succeeded", tq=self.tq, task=task, duration=result.duration
            )
            return
        record = result.execution or {}
        level = "error" if decision.outcome == "error" and decision.log_error else "warning"
        getattr(log, level)(
            "task error",
            exception_name=record.get("exception_name"),
            traceback=record.get("traceback"),
            retry=decision.outcome == "retry",
            params={"args": task.args, "kwargs": task.kwargs},
        )
        self._report(task, record, decision)

    def _report(self, task: Task, record: Execution, decision: Decision) -> None:
        call_hook_safely(
            "taskq_task_failed",
            tq=self.tq,
            task=task,
            execution=record,
            will_retry=decision.outcome == "retry",
        )
        if decision.outcome == "retry":
            return
        call_hook_safely("taskq_task_permanently_failed", tq=self.tq, task=task, execution=record)
        if task.serialized_runner_class:
            try:
                task.get_runner().on_permanent_error(task, record)
            except Exception:
                self.log.exception("runner on_permanent_error failed", task_id=task.id)

    def _maybe_log_stats(self) -> None:
        interval = float(self.tq.config["STATS_INTERVAL"])
        now = time.time()
        if not interval or now - self._stats_last < interval:
            return
        total = now - self._stats_last
        self.log.info(
            "stats",
            time_total=round(total, 3),
            time_busy=round(self._stats_busy, 3),
            utilization=round(100 * self._stats_busy / total, 2) if total else 0.0,
            processed=self.processed,
        )
        self._stats_last = now
        self._stats_busy = 0.0
