"""Running a group of tasks in the executing process, and execution records."""

from __future__ import annotations

import asyncio
import socket
import time
import traceback
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from taskq_core.broker import Execution
from taskq_core.context import running
from taskq_core.exceptions import JobTimeoutException, RetryException
from taskq_core.plugins import call_hook_safely, get_plugin_manager
from taskq_core.retry import serialize_retry_method

if TYPE_CHECKING:
    from taskq_core.task import Task
    from taskq_core.types import App

__all__ = [
    "RunResult",
    "effective_hard_timeout",
    "exception_name",
    "make_execution",
    "run_coroutine_group",
    "run_group",
]

_HOST = socket.gethostname()


def exception_name(exc_type: type[BaseException]) -> str:
    """``"module:Class"`` of an exception class."""
    return f"{exc_type.__module__}:{exc_type.__qualname__}"


def make_execution(
    time_started: float,
    exc: BaseException | None,
    *,
    store_tracebacks: bool,
    name: str | None = None,
    message: str | None = None,
    worker_id: str | None = None,
) -> Execution:
    """An execution record for a failed run (``exc`` raised, or ``name`` +
    ``message`` for failures seen from outside, e.g. a killed child)."""
    record: Execution = {
        "time_started": time_started,
        "time_failed": time.time(),
        "exception_name": name or (exception_name(type(exc)) if exc else "builtins:Exception"),
        "success": False,
        "host": _HOST,
    }
    if worker_id:
        record["worker_id"] = worker_id
    tb_text: str | None = None
    if exc is not None:
        exc_info: tuple[type[BaseException], BaseException, TracebackType | None] = (
            type(exc),
            exc,
            exc.__traceback__,
        )
        if isinstance(exc, RetryException):
            record["retry"] = True
            record["log_error"] = exc.log_error
            if exc.method is not None:
                record["retry_method"] = serialize_retry_method(exc.method)
            if exc.exc_info is not None:
                exc_info = exc.exc_info
        tb_text = "".join(traceback.format_exception(*exc_info))
        record["exception"] = _safe_str(exc_info[1])
    elif message is not None:
        tb_text = message
        record["exception"] = message
    if store_tracebacks and tb_text is not None:
        record["traceback"] = tb_text
    return record


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)[:2000]
    except Exception:  # a broken __str__ must not lose the record
        return repr(type(exc))


@dataclass
class RunResult:
    """The outcome of one task's run."""

    task_id: str
    success: bool
    duration: float = 0.0
    execution: Execution | None = None
    #: set when the run hit a hard timeout (the sync executor then exits).
    timed_out: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.task_id,
            "ok": self.success,
            "d": self.duration,
            "x": self.execution,
            "t": self.timed_out,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> RunResult:
        return cls(
            task_id=data["id"],
            success=data["ok"],
            duration=data["d"],
            execution=data["x"],
            timed_out=data["t"],
        )


def effective_hard_timeout(tq: App, tasks: Sequence[Task]) -> float:
    """The hard timeout of a run: the task's own, else its function's, else the
    default; for a batch the largest of its tasks'."""
    values = []
    for task in tasks:
        value = task.hard_timeout
        if value is None:
            try:
                value = task.options.get("hard_timeout")
            except Exception:  # an unimportable function fails later, with a record
                value = None
        values.append(float(value) if value else float(tq.config["DEFAULT_HARD_TIMEOUT"]))
    return max(values) if values else float(tq.config["DEFAULT_HARD_TIMEOUT"])


def _context_managers(tq: App) -> list[AbstractContextManager[Any]]:
    return list(tq.config["CHILD_CONTEXT_MANAGERS"])


def run_group(
    tq: App,
    tasks: Sequence[Task],
    *,
    store_tracebacks: bool,
    worker_id: str | None = None,
    on_result: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Run ``tasks`` (a batch group, or tasks of one function run one after the
    other) through the ``taskq_execute_task`` hook and return one result per task.

    Nothing escapes: every exception, ``SystemExit`` included, becomes a failed
    result with an execution record. ``on_result`` is called with each plain
    task's result as soon as that task is over (a forked child sends it on, so
    that a crash later in the group costs only the task it happens in).
    """

    def innermost(tq: App, tasks: Sequence[Task]) -> list[RunResult]:
        return _run_tasks(
            tq, tasks, store_tracebacks=store_tracebacks, worker_id=worker_id, on_result=on_result
        )

    started = time.time()
    try:
        hook = get_plugin_manager().hook.taskq_execute_task
        if not hook.get_hookimpls():  # nothing wraps the run: no hook call to set up
            return innermost(tq, tasks)
        results: list[RunResult] = hook.call_extra([innermost], {"tq": tq, "tasks": list(tasks)})
    except BaseException as exc:  # a wrapper (app context…) failed: the whole group fails
        record = make_execution(
            started, exc, store_tracebacks=store_tracebacks, worker_id=worker_id
        )
        return [RunResult(t.id, False, time.time() - started, record) for t in tasks]
    return results


def _run_tasks(
    tq: App,
    tasks: Sequence[Task],
    *,
    store_tracebacks: bool,
    worker_id: str | None,
    on_result: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    results: list[RunResult] = []
    stack = ExitStack()
    last_error: BaseException | None = None
    started = time.time()
    try:
        for cm in _context_managers(tq):
            stack.enter_context(cm)
    except BaseException as exc:
        record = make_execution(
            started, exc, store_tracebacks=store_tracebacks, worker_id=worker_id
        )
        stack.close()
        return [RunResult(t.id, False, 0.0, record) for t in tasks]
    try:
        try:
            is_batch = bool(tasks) and tasks[0].is_batch_func
        except BaseException as exc:
            record = make_execution(
                started, exc, store_tracebacks=store_tracebacks, worker_id=worker_id
            )
            last_error = exc
            return [RunResult(t.id, False, 0.0, record) for t in tasks]
        groups: list[list[Task]] = [list(tasks)] if is_batch else [[t] for t in tasks]
        for group in groups:
            t0 = time.time()
            try:
                runner = group[0].get_runner()
                timeout = effective_hard_timeout(tq, group)
                with running(tq, group, is_batch):
                    for task in group:
                        call_hook_safely("taskq_task_started", tq=tq, task=task)
                    if is_batch:
                        runner.run_batch_tasks(group, timeout)
                    else:
                        runner.run_single_task(group[0], timeout)
            except BaseException as exc:
                last_error = exc
                results.extend(_results_of(group, t0, exc, store_tracebacks, worker_id))
            else:
                results.extend(_results_of(group, t0, None, store_tracebacks, worker_id))
            if on_result is not None and not is_batch:
                try:
                    on_result(results[-1])
                except Exception:  # nobody to tell: the group goes on
                    pass
        return results
    finally:
        if last_error is not None:
            stack.__exit__(type(last_error), last_error, last_error.__traceback__)
        else:
            stack.close()


async def run_coroutine_group(
    tq: App,
    tasks: Sequence[Task],
    *,
    store_tracebacks: bool,
    worker_id: str | None = None,
) -> list[RunResult]:
    """Await ``async def`` tasks (one, or a batch group) on the running event
    loop, each in a context of its own, so ``tq.current_task`` is its own.

    Like :func:`run_group`, nothing escapes but cancellation (a hard timeout):
    every exception becomes a failed result with an execution record.
    ``CHILD_CONTEXT_MANAGERS`` are entered around the group; the
    ``taskq_execute_task`` wrappers are not (they are synchronous).
    """
    results: list[RunResult] = []
    is_batch = bool(tasks) and tasks[0].is_batch_func
    groups: list[list[Task]] = [list(tasks)] if is_batch else [[t] for t in tasks]
    with ExitStack() as stack:
        for cm in _context_managers(tq):
            stack.enter_context(cm)
        for group in groups:
            t0 = time.time()
            try:
                with running(tq, group, is_batch):
                    for task in group:
                        call_hook_safely("taskq_task_started", tq=tq, task=task)
                    func = group[0].func
                    if is_batch:
                        await func([{"args": t.args, "kwargs": t.kwargs} for t in group])
                    else:
                        await func(*group[0].args, **group[0].kwargs)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                results.extend(_results_of(group, t0, exc, store_tracebacks, worker_id))
            else:
                results.extend(_results_of(group, t0, None, store_tracebacks, worker_id))
    return results


def _results_of(
    group: Sequence[Task],
    started: float,
    exc: BaseException | None,
    store_tracebacks: bool,
    worker_id: str | None,
) -> list[RunResult]:
    """One result per task of a group that ran from ``started``: a success,
    or the failure ``exc`` with its execution record."""
    elapsed = time.time() - started
    if exc is None:
        return [RunResult(t.id, True, elapsed) for t in group]
    record = make_execution(started, exc, store_tracebacks=store_tracebacks, worker_id=worker_id)
    timed_out = isinstance(exc, JobTimeoutException)
    return [RunResult(t.id, False, elapsed, record, timed_out) for t in group]
