"""taskq's hook specifications.

Every hook is prefixed ``taskq_``. Implement them in a module or class with
:data:`taskq_core.hookimpl` and ship the module under the ``taskq`` entry-point
group; taskq's own brokers and runners register through these same hooks.

A hook implementation that raises is logged with the plugin's name and never
takes the worker down (except :func:`taskq_execute_task`, whose errors are the
task's errors). ``docs/hooks.md`` documents every hook with an example; a test
fails when one is missing there.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from taskq_core._registry import Registry
    from taskq_core.broker import Execution
    from taskq_core.types import App as TaskQ
    from taskq_core.types import TaskView as Task
    from taskq_core.types import WorkerView as Worker

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME = "taskq"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def taskq_register(register: Registry) -> None:
    """Register brokers, runners and CLI commands.

    Called once, when plugins are loaded. Call ``register.broker(...)``,
    ``register.runner(...)`` and ``register.command(...)``; see
    :class:`taskq_core.plugins.Registry`.

    :param register: the registry to add to.
    """


@hookspec
def taskq_app_created(tq: TaskQ) -> None:
    """A :class:`~taskq_core.TaskQ` was created (in any process).

    :param tq: the new application object.
    """


@hookspec
def taskq_task_enqueued(tq: TaskQ, task: Task) -> None:
    """A task was stored as ``queued`` or ``scheduled`` (in the enqueuing
    process). Not called for eager tasks or for a unique task that was
    already pending.

    :param tq: the application.
    :param task: the task that was enqueued.
    """


@hookspec
def taskq_task_started(tq: TaskQ, task: Task) -> None:
    """A task is about to run, in the process that runs it (the forked child
    with the ``fork`` executor), inside :func:`taskq_execute_task`'s wrappers.

    :param tq: the application.
    :param task: the task about to run.
    """


@hookspec
def taskq_task_succeeded(tq: TaskQ, task: Task, duration: float) -> None:
    """A task ran to completion (called in the worker process, once the
    outcome is stored).

    :param tq: the application.
    :param task: the task that succeeded.
    :param duration: seconds the run took.
    """


@hookspec
def taskq_task_failed(tq: TaskQ, task: Task, execution: Execution, will_retry: bool) -> None:
    """A run failed (called in the worker process, once the outcome is
    stored). Also called for hard timeouts, dead children and lost workers.

    :param tq: the application.
    :param task: the task whose run failed.
    :param execution: the execution record (``exception_name``, ``traceback``…).
    :param will_retry: whether the task was scheduled for another run.
    """


@hookspec
def taskq_task_permanently_failed(tq: TaskQ, task: Task, execution: Execution) -> None:
    """A task failed and will not be retried: it is now in ``error`` (or was
    dropped by ``RetryException(log_error=False)``). Called exactly once per
    such failure, in the worker process, after :func:`taskq_task_failed`.

    :param tq: the application.
    :param task: the task.
    :param execution: the last execution record.
    """


@hookspec(firstresult=True)
def taskq_execute_task(tq: TaskQ, tasks: Sequence[Task]) -> Generator[None, Any, Any] | Any:
    """Run a task (or a batch group) in the executing process.

    Implement it as a wrapper (``@hookimpl(wrapper=True)`` with one
    ``yield``) to run code around every execution, e.g. an application
    context. The innermost implementation (taskq's own) runs the tasks. In a
    worker it records each task's exception in that task's result (so one
    failing task of a group does not hide the others' outcomes) and returns
    the results, which the wrapper's ``yield`` receives; for an eager task
    (``ALWAYS_EAGER`` / ``Task.execute``) the task's exception propagates
    through the wrappers to the caller.

    :param tq: the application.
    :param tasks: the tasks run together (one, or a batch group).
    Stops at the first non-``None`` result.
    """


@hookspec
def taskq_worker_started(tq: TaskQ, worker: Worker) -> None:
    """A worker is ready and about to process tasks.

    :param tq: the application.
    :param worker: the worker.
    """


@hookspec
def taskq_worker_stopping(tq: TaskQ, worker: Worker) -> None:
    """A worker is about to exit (normally or after a stop signal).

    :param tq: the application.
    :param worker: the worker.
    """
