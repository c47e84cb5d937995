"""Periodic tasks: queued at start and re-queued before each run (Decision 7);
a schedule that misbehaves fails its run (Decision 17)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from taskq_core._internal import from_timestamp
from taskq_core.app import periodic_tasks
from taskq_core.broker import Execution
from taskq_core.exceptions import (
    BrokerConnectionError,
    PolicyError,
)
from taskq_core.execution import make_execution
from taskq_core.outcome import PERMANENT_FAILURE, next_run
from taskq_core.task import Task

if TYPE_CHECKING:
    pass

from taskq_core.worker._state import WorkerState

__all__ = ["Periodic"]


class Periodic(WorkerState):
    """Queues the next run of periodic tasks."""

    def _queue_periodic_tasks(self) -> None:
        funcs = periodic_tasks()
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
