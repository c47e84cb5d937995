"""Importable task functions for the core tests.

A worker finds a task function again by its dotted path, so the functions the
tests enqueue live here, at module level. They record what happened in
:data:`calls` (cleared by the tests' fixtures).

``tq`` is the app the decorated functions below are declared on. Tests
usually enqueue with their own fresh app (``app.delay(func, ...)``); the
decorator's options travel with the function, whichever app enqueues it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from taskq_core import RetryException, StopRetry, TaskQ, fixed
from taskq_core.brokers.memory import MemoryBroker
from taskq_core.logging import taskq_processor
from taskq_core.runners import BaseRunner
from taskq_core.task import Task

#: the app the decorators of this module are bound to.
tq = TaskQ(broker=MemoryBroker())

#: what the task functions did, in order.
calls: list[Any] = []


class CustomError(Exception):
    """A module-level exception class, for ``retry_on`` and exception names."""


# -- plain (undecorated) functions --------------------------------------------


def record(*args: Any, **kwargs: Any) -> Any:
    """Record the call; return the arguments."""
    calls.append((args, kwargs))
    return args, kwargs


def add(a: int, b: int) -> int:
    """Return ``a + b`` (and record it)."""
    calls.append(("add", a, b))
    return a + b


def noop() -> None:
    """Do nothing."""


def fail_value_error(*args: Any, **kwargs: Any) -> None:
    """Always fail with ``ValueError``."""
    calls.append(("fail", args, kwargs))
    raise ValueError("value error in a task")


def fail_key_error() -> None:
    """Always fail with ``KeyError``."""
    calls.append("fail_key_error")
    raise KeyError("missing")


def fail_custom() -> None:
    """Always fail with :class:`CustomError`."""
    calls.append("fail_custom")
    raise CustomError("custom failure")


def retry_with_method() -> None:
    """Ask for a retry with an explicit policy (no delay, one retry)."""
    calls.append("retry_with_method")
    raise RetryException(method=fixed(0, 1))


def retry_quietly() -> None:
    """Ask for retries that, once used up, drop the task without an error."""
    calls.append("retry_quietly")
    raise RetryException(method=fixed(0, 1), log_error=False)


def retry_keeping_traceback() -> None:
    """Ask for a retry while handling a ``KeyError``, keeping its traceback."""
    calls.append("retry_keeping_traceback")
    try:
        empty: dict[str, int] = {}
        _ = empty["inner_key"]
    except KeyError:
        raise RetryException(method=fixed(0, 0), original_traceback=True) from None


def flaky(key: str, failures: int) -> str:
    """Fail the first ``failures`` calls for ``key``, then succeed."""
    done = sum(1 for call in calls if call == ("flaky", key))
    calls.append(("flaky", key))
    if done < failures:
        raise ValueError(f"flaky failure {done + 1}")
    return key


def retry_plain() -> None:
    """Ask for a retry with no policy of its own (the task's, else the default)."""
    calls.append("retry_plain")
    raise RetryException


def sleep_for(seconds: float) -> None:
    """Sleep (for hard-timeout tests)."""
    import time

    calls.append(("sleep_for", seconds))
    time.sleep(seconds)


def exit_task(code: int | None = None) -> None:
    """Raise ``SystemExit`` like ``sys.exit(code)``."""
    calls.append(("exit", code))
    sys.exit(code)


def stop_after_first(retry_number: int) -> float:
    """A retry function that never retries."""
    calls.append(("stop_after_first", retry_number))
    raise StopRetry("no retries for this task")


def no_delay_twice(retry_number: int) -> float:
    """A retry function: no delay, two retries."""
    if retry_number > 2:
        raise StopRetry
    return 0.0


def current_task_id() -> str:
    """Record and return the id of ``tq.current_task``."""
    task_id = tq.current_task.id
    calls.append(("current", task_id))
    return task_id


def current_task_error() -> str:
    """Record the message of the ``RuntimeError`` that ``tq.current_tasks`` raises."""
    try:
        tq.current_tasks  # noqa: B018 - the property access is the test
    except RuntimeError as exc:
        calls.append(("current_tasks error", str(exc)))
        return str(exc)
    calls.append(("current_tasks error", None))
    return ""


def processor_fields() -> dict[str, Any]:
    """Record what :func:`taskq_processor` adds to an empty event inside a task."""
    fields = dict(taskq_processor(None, "info", {}))
    calls.append(("fields", fields))
    return fields


def log_inside() -> None:
    """Log one event through the app's logger name."""
    import structlog

    structlog.get_logger("taskq").info("inside the task", answer=42)


def check_lock_held(a: int) -> bool:
    """Record whether this task's lock is taken (by its worker) while it runs."""
    task = tq.current_task
    taken = not task.tq.broker.acquire_lock(task.lock_id, "someone-else", 10)
    calls.append(("lock held", a, taken))
    return taken


def periodic_job() -> None:
    """A function the periodic-task test declares with ``schedule=``."""
    calls.append("periodic_job")


# -- decorated functions ------------------------------------------------------


@tq.task
def bare_task(x: int = 1) -> int:
    """Declared with the bare decorator."""
    calls.append(("bare_task", x))
    return x * 2


@tq.task(queue="decorated", hard_timeout=30, unique=True, max_stored_executions=4, priority=5)
def decorated_task(x: int, y: int = 0) -> int:
    """Declared with options."""
    calls.append(("decorated_task", x, y))
    return x + y


@tq.task(max_queue_size=2)
def limited_task(n: int) -> None:
    """At most two pending tasks in its queue."""
    calls.append(("limited_task", n))


@tq.task(unique_key="a")
def unique_key_task(a: int, b: int = 0) -> None:
    """Unique on the keyword argument ``a`` only."""
    calls.append(("unique_key_task", a, b))


@tq.task(lock_key="a")
def lock_key_task(a: int, b: int = 0) -> None:
    """Locked on the keyword argument ``a`` only."""
    calls.append(("lock_key_task", a, b))


@tq.task(batch=True)
def batch_task(params: list[dict[str, Any]]) -> list[Any]:
    """A batch function: records the params list and the current tasks' ids."""
    ids = [t.id for t in tq.current_tasks]
    calls.append(("batch", params, ids))
    return [p["args"] for p in params]


@tq.task(batch=True)
def batch_processor_fields(params: list[dict[str, Any]]) -> None:
    """A batch function: records what :func:`taskq_processor` adds (nothing)."""
    calls.append(("batch fields", dict(taskq_processor(None, "info", {}))))


@tq.task(batch=True)
def batch_current_task_error(params: list[dict[str, Any]]) -> None:
    """A batch function: records the message of ``tq.current_task``'s error."""
    try:
        tq.current_task  # noqa: B018 - the property access is the test
    except RuntimeError as exc:
        calls.append(("current_task error", str(exc)))


@tq.task(batch=True)
def batch_fail(params: list[dict[str, Any]]) -> None:
    """A batch function that always fails."""
    calls.append(("batch_fail", params))
    raise ValueError("batch failed")


class Holder:
    """A module-level class whose static method is a task."""

    @staticmethod
    @tq.task(queue="static")
    def static_task(x: int) -> int:
        """A task declared as a static method."""
        calls.append(("static_task", x))
        return x


# -- runners and context managers ----------------------------------------------


class ConstantRunner(BaseRunner):
    """A runner whose eager result is always 123 (and that records its calls)."""

    def run_single_task(self, task: Task, hard_timeout: float | None) -> Any:
        calls.append(("runner single", task.id))
        return task.func(*task.args, **task.kwargs)

    def run_batch_tasks(self, tasks: Sequence[Task], hard_timeout: float | None) -> Any:
        calls.append(("runner batch", [t.id for t in tasks]))
        return tasks[0].func([{"args": t.args, "kwargs": t.kwargs} for t in tasks])

    def run_eager_task(self, task: Task) -> Any:
        calls.append(("runner eager", task.id))
        task.func(*task.args, **task.kwargs)
        return 123


class CountingContext:
    """A context manager instance that counts how often it is entered and exited."""

    def __init__(self) -> None:
        self.entered = 0
        self.exited = 0
        self.exited_with: list[type[BaseException] | None] = []

    def __enter__(self) -> CountingContext:
        self.entered += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.exited += 1
        self.exited_with.append(exc_type)
