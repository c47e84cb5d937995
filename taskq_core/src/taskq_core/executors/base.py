"""What every executor is: it runs a task group for its worker and returns
one :class:`~taskq_core.execution.RunResult` per task."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from taskq_core.execution import RunResult
    from taskq_core.task import Task
    from taskq_core.types import App

__all__ = ["Executor", "ExecutorHost", "Heartbeat"]

Heartbeat = Callable[[], None]


class ExecutorHost(Protocol):
    """What an executor uses of the worker that owns it
    (:class:`taskq_core.worker.Worker`)."""

    tq: App
    id: str
    log: Any
    store_tracebacks: bool
    #: read end of the worker's signal wake-up pipe (``None`` off the main thread).
    wakeup_fd: int | None
    #: a second stop signal arrived: return running tasks to their queue.
    force_stop: bool

    def drain_wakeup(self) -> None:
        """Empty the wake-up pipe (and log a stop request)."""
        ...


class Executor:
    """Runs a task group and returns one :class:`RunResult` per task."""

    #: the worker exits after a hard timeout (process state is suspect).
    exit_worker_on_job_timeout = False
    #: runs tasks in forked processes (impossible with an in-process broker).
    forks = False

    def __init__(self, worker: ExecutorHost) -> None:
        self.worker = worker
        self.tq = worker.tq

    def execute(self, tasks: Sequence[Task], heartbeat: Heartbeat) -> list[RunResult]:
        raise NotImplementedError

    def close(self) -> None:
        """Called once when the worker stops."""
