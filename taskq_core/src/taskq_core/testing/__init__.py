"""Helpers for testing code that uses taskq.

* :func:`run_tasks` runs the queued tasks of an app in this process.
* :func:`check_retry_policy` property-tests a retry policy (needs hypothesis).
* :mod:`taskq_core.testing.strategies`: hypothesis strategies for task options.
* :mod:`taskq_core.testing.contract` / :mod:`~taskq_core.testing.stateful`: the
  test suite any broker plugin runs against itself.
"""

from __future__ import annotations

from typing import Any

from taskq_core.app import TaskQ
from taskq_core.states import State
from taskq_core.task import Task
from taskq_core.worker import Worker

__all__ = ["check_retry_policy", "error_tasks", "run_tasks"]


def error_tasks(tq: TaskQ) -> list[Any]:
    """Every task currently in ``error``, with its latest execution loaded."""
    found = []
    for queue in sorted(tq.broker.queues(State.ERROR)):
        _, tasks = Task.tasks_from_queue(tq, queue, State.ERROR, limit=100_000, load_executions=1)
        found.extend(tasks)
    return found


def run_tasks(tq: TaskQ, raise_on_errors: bool = True, **worker_options: Any) -> int:
    """Run the app's queued (and due scheduled) tasks until none is left, in a
    burst worker; return how many runs happened.

    With ``raise_on_errors`` an ``AssertionError`` lists the tracebacks of tasks
    that ended in ``error`` during the run.
    """
    before = {(t.queue, t.id) for t in error_tasks(tq)}
    worker = Worker(tq, **worker_options)
    worker.run(burst=True)
    if raise_on_errors:
        new = [t for t in error_tasks(tq) if (t.queue, t.id) not in before]
        if new:
            lines = [f"{len(new)} task(s) failed:"]
            for task in new:
                record = task.executions[-1] if task.executions else {}
                lines.append(
                    f"- {task.serialized_func} in {task.queue}: {record.get('exception_name')}"
                )
                if record.get("traceback"):
                    lines.append(str(record["traceback"]))
            raise AssertionError("\n".join(lines))
    return worker.processed


def __getattr__(name: str) -> Any:
    if name == "check_retry_policy":
        # hypothesis is an optional dependency: loaded when this is asked for
        from taskq_core.testing.policies import check_retry_policy  # noqa: PLC0415

        return check_retry_policy
    raise AttributeError(name)
