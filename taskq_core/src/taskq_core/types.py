"""What the lower layers need from the layers above them, as Protocols.

The task model, the hooks and the executors are typed against these, not
against :class:`~taskq_core.TaskQ` or the worker, so that imports point one
way (see ``docs/architecture.md``). This module imports nothing else of
taskq at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from taskq_core.broker import Broker

__all__ = ["App", "TaskView", "WorkerView"]


class App(Protocol):
    """What a task, an execution and the worker use of the application
    (:class:`taskq_core.TaskQ` is the implementation)."""

    #: validated configuration keys (``docs/configuration.md``).
    config: dict[str, Any]
    #: a structlog logger.
    log: Any
    #: periodic task functions declared on this application, by serialized name.
    periodic_task_funcs: dict[str, Callable[..., Any]]

    @property
    def broker(self) -> Broker:
        """The broker (connected on first use)."""
        ...

    @property
    def default_queue(self) -> str:
        """``DEFAULT_QUEUE``."""
        ...

    @property
    def uses_default_broker(self) -> bool:
        """Whether the broker is the default one (no other was named)."""
        ...

    def get_total_queue_size(self, queue: str) -> int:
        """Tasks of ``queue`` that are queued, scheduled or active."""
        ...


class TaskView(Protocol):
    """What hooks and runners read of a task (:class:`taskq_core.Task`)."""

    @property
    def id(self) -> str: ...

    @property
    def queue(self) -> str: ...

    @property
    def serialized_func(self) -> str:
        """``"module:function"``."""
        ...

    @property
    def args(self) -> list[Any]: ...

    @property
    def kwargs(self) -> dict[str, Any]: ...

    @property
    def data(self) -> dict[str, Any]:
        """The task's stored data (function path, arguments, options)."""
        ...


class WorkerView(Protocol):
    """What hooks see of a running worker (:class:`taskq_core.worker.Worker`)."""

    #: the worker's id (a UUID string).
    id: str
    #: the application it works for.
    tq: App
    #: how many task runs it has finished so far.
    processed: int

    def processes(self, queue: str) -> bool:
        """Whether this worker takes tasks from ``queue``."""
        ...


#: options as ``@tq.task`` stores them on a function.
TaskOptions = Mapping[str, Any]
