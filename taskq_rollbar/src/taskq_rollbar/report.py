"""What a report of a failed task contains, and how reports are grouped.

Pure functions of the task and its execution record: no Rollbar calls here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from taskq_core.queues import queue_root

if TYPE_CHECKING:
    from taskq_core.broker import Execution
    from taskq_core.task import Task

__all__ = ["Report", "build_report", "exception_class", "fingerprint", "queue_root", "title"]


def exception_class(exception_name: str) -> str:
    """``"JobTimeoutException"`` for ``"taskq_core.exceptions:JobTimeoutException"``."""
    return exception_name.rpartition(":")[2] or exception_name


def fingerprint(root: str, func: str, exception_name: str) -> str:
    """The Rollbar fingerprint of a failure: the SHA-1 (40 hex digits, the
    length Rollbar keeps as it is) of the queue root, the function and the
    exception's ``module:Class``."""
    text = "\x1f".join(("taskq", root, func, exception_name))
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def title(root: str, func: str, exception_name: str) -> str:
    """``"taskq: app.tasks:send failed in email: SMTPError"``."""
    return f"taskq: {func} failed in {root}: {exception_class(exception_name)}"


@dataclass(frozen=True)
class Report:
    """One Rollbar item, ready for ``rollbar.report_message``."""

    message: str
    level: str
    title: str
    fingerprint: str
    extra: dict[str, Any]

    @property
    def payload_data(self) -> dict[str, Any]:
        """What overrides Rollbar's defaults at the top of the item."""
        return {"fingerprint": self.fingerprint, "title": self.title, "context": self.extra["func"]}


def build_report(
    task: Task,
    execution: Execution,
    *,
    level: str,
    executions: int | None,
    will_retry: bool,
    include_args: bool,
    worker_id: str | None = None,
) -> Report:
    """The report of one failed run of ``task``.

    The message is the traceback (or, without one, ``Class: message``); the
    extra data (Rollbar's ``custom``) holds the task id, queue, queue root,
    function, exception, number of failed executions, host, worker id, times
    and, only when ``include_args``, the arguments.
    """
    func = _safe(lambda: task.serialized_func, "<unknown function>")
    queue = _safe(lambda: task.queue, "<unknown queue>")
    root = queue_root(queue)
    exception_name = str(execution.get("exception_name") or "builtins:Exception")
    exception_message = execution.get("exception")
    traceback_text = execution.get("traceback")
    head = exception_class(exception_name)
    if exception_message:
        head = f"{head}: {exception_message}"
    extra: dict[str, Any] = {
        "task_id": task.id,
        "queue": queue,
        "queue_root": root,
        "func": func,
        "exception_name": exception_name,
        "exception": exception_message,
        "executions": executions,
        "will_retry": will_retry,
        "host": execution.get("host"),
        "worker_id": execution.get("worker_id") or worker_id,
        "time_started": execution.get("time_started"),
        "time_failed": execution.get("time_failed"),
    }
    if include_args:
        no_args: list[Any] = []
        no_kwargs: dict[str, Any] = {}
        extra["args"] = _safe(lambda: list(task.args), no_args)
        extra["kwargs"] = _safe(lambda: dict(task.kwargs), no_kwargs)
    return Report(
        message=str(traceback_text or head),
        level=level,
        title=title(root, func, exception_name),
        fingerprint=fingerprint(root, func, exception_name),
        extra=extra,
    )


_T = TypeVar("_T")


def _safe(get: Callable[[], _T], default: _T) -> _T:
    try:
        return get()
    except Exception:  # a task whose payload is unreadable is still reported
        return default
