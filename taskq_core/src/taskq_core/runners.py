"""Runner classes: how a task function is invoked.

A runner is chosen per task with ``runner_class=`` (a class, a dotted path, or
a name registered by a plugin through ``register.runner``). Runners run in the
executing process, except :meth:`BaseRunner.on_permanent_error`, which runs in
the worker process once a task has failed for good.
"""

from __future__ import annotations

import asyncio
import inspect
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from taskq_core.exceptions import JobTimeoutException
from taskq_core.task_modules import ModuleRule

if TYPE_CHECKING:
    from taskq_core.broker import Execution
    from taskq_core.task import Task
    from taskq_core.types import App

__all__ = [
    "RUNNER_MODULES",
    "BaseRunner",
    "DefaultRunner",
    "hard_timeout",
    "run_to_end",
    "runner_rule",
]


@contextmanager
def hard_timeout(seconds: float | None) -> Iterator[None]:
    """Raise :class:`JobTimeoutException` in the block after ``seconds``.

    Uses ``SIGALRM``, so it only arms on the main thread; elsewhere (and for
    ``None``/0) the block runs without a limit and the worker's parent-side
    deadline is the only guard.
    """
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _alarm(signum: int, frame: Any) -> None:
        raise JobTimeoutException(f"task exceeded its hard timeout of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class BaseRunner:
    """Override these to change how tasks are called (an advanced feature)."""

    def __init__(self, tq: App) -> None:
        self.tq = tq

    def run_single_task(self, task: Task, hard_timeout: float | None) -> Any:
        """Run one task; raise to fail it."""
        raise NotImplementedError

    def run_batch_tasks(self, tasks: Sequence[Task], hard_timeout: float | None) -> Any:
        """Run a batch function once for ``tasks``; raise to fail them all."""
        raise NotImplementedError

    def run_eager_task(self, task: Task) -> Any:
        """Run a task inline (``ALWAYS_EAGER``) and return its result."""
        raise NotImplementedError

    def on_permanent_error(self, task: Task, execution: Execution) -> None:
        """Called in the worker process when ``task`` went to ``error``."""


def run_to_end(value: Any, timeout: float | None = None) -> Any:
    """``value``, or, for an awaitable (what an ``async def`` task function
    returns), what it returns once run to the end on an event loop of its own
    (in a thread of its own when this thread already runs a loop).

    With ``timeout`` the awaitable is cancelled after that many seconds and
    :class:`JobTimeoutException` raised: the loop enforces the hard timeout
    wherever it runs (``SIGALRM`` only reaches the main thread, and an
    interrupt not a thread waiting for its loop's next event)."""
    if not inspect.isawaitable(value):
        return value

    async def await_it() -> Any:
        if not timeout:
            return await value
        try:
            async with asyncio.timeout(timeout) as scope:
                return await value
        except TimeoutError:
            if scope.expired():
                raise JobTimeoutException(
                    f"task exceeded its hard timeout of {timeout:g} s"
                ) from None
            raise

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(await_it())
    box: list[Any] = []
    errors: list[BaseException] = []

    def in_thread() -> None:
        try:
            box.append(asyncio.run(await_it()))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=in_thread, name="taskq-await")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return box[0]


class DefaultRunner(BaseRunner):
    """Calls the function with its arguments under a ``SIGALRM`` hard timeout;
    an ``async def`` function is run on an event loop of its own, which
    cancels it at its hard timeout."""

    def run_single_task(self, task: Task, hard_timeout_s: float | None) -> Any:
        with hard_timeout(hard_timeout_s):
            return run_to_end(task.func(*task.args, **task.kwargs), hard_timeout_s)

    def run_batch_tasks(self, tasks: Sequence[Task], hard_timeout_s: float | None) -> Any:
        params = [{"args": t.args, "kwargs": t.kwargs} for t in tasks]
        with hard_timeout(hard_timeout_s):
            return run_to_end(tasks[0].func(params), hard_timeout_s)

    def run_eager_task(self, task: Task) -> Any:
        if task.is_batch_func:
            return run_to_end(task.func([{"args": task.args, "kwargs": task.kwargs}]))
        return run_to_end(task.func(*task.args, **task.kwargs))


#: where taskq's own runner classes live (allowed as runners whatever the setting)
RUNNER_MODULES = ("taskq_core.runners",)


def _is_runner_class(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseRunner)


def runner_rule(allowed: Sequence[str] | None) -> ModuleRule:
    """The rule for runner classes named by path (Decision 18): taskq's own
    runner classes are allowed whatever ``allowed`` says."""
    return ModuleRule(None if allowed is None else tuple(allowed), RUNNER_MODULES, _is_runner_class)
