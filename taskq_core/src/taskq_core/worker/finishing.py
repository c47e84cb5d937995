"""Finishing runs: the outcome of every task of a group stored in one broker
call (with the next pop when it can ride along), then logs and hooks."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from taskq_core.broker import Execution, FinishRequest, StoredTask
from taskq_core.exceptions import (
    BrokerConnectionError,
    JobTimeoutException,
)
from taskq_core.execution import RunResult, exception_name, make_execution
from taskq_core.outcome import Decision, decide_retry, finish_outcome
from taskq_core.plugins import call_hook_safely
from taskq_core.task import Task

if TYPE_CHECKING:
    pass

from taskq_core.worker.outages import Outages

__all__ = ["Finishing"]


class Finishing(Outages):
    """Stores outcomes, logs them and fires the outcome hooks."""

    def _finish_groups(
        self,
        queue: str,
        ended: list[tuple[list[Task], dict[str, RunResult], dict[str, int]]],
        *,
        prefetch: bool = False,
    ) -> None:
        """Store the outcome of every task of the groups of ``queue`` that
        ended (each a group's tasks, results by id and execution counts) in
        one broker call, then log each and fire its hooks. With ``prefetch``
        the next pop of a worker serving only this queue rides along."""
        requests: list[FinishRequest] = []
        reports: list[tuple[Task, RunResult, Decision | None]] = []
        for tasks, results, counts in ended:
            for task in tasks:
                request, report = self._outcome(task, results.get(task.id), counts)
                requests.append(request)
                reports.append(report)
        broker = self.tq.broker
        ahead = (
            0
            if self.stop_requested
            else self.pop_size(queue) - len(self._prefetched.get(queue, ()))
        )
        if (
            prefetch
            and ahead > 0
            and self._queue_set == {queue}
            and self.queue_slot_limit(queue) is None
        ):
            # the next pass pops this queue again: do it in the same round trip
            stored = self._store(
                lambda: broker.finish_many_then_pop(
                    queue, self.id, requests, ahead, float(self.tq.config["LOCK_RETRY"])
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

    def _outcome(
        self, task: Task, result: RunResult | None, counts: dict[str, int]
    ) -> tuple[FinishRequest, tuple[Task, RunResult, Decision | None]]:
        """What to store for one task's run (the retry decision taken for a
        failure), and what to report once it is stored."""
        if result is None:
            result = RunResult(
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
            return FinishRequest(task.id, "requeue"), (task, result, None)
        if result.success:
            return FinishRequest(task.id, "done"), (task, result, None)
        record = result.execution or make_execution(
            time.time(), None, store_tracebacks=False, message="unknown failure"
        )
        result.execution = record
        if result.extra.get("permanent"):  # no retry policy applies
            decision = Decision("error")
        else:
            number = counts.get(task.id, 0) + 1
            decision = decide_retry(self.tq, task, record, number, time.time())
        request = FinishRequest(
            task.id,
            finish_outcome(decision),
            when=decision.when,
            execution=record,
            max_stored_executions=task.max_stored_executions,
        )
        return request, (task, result, decision)

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
