"""The :class:`Task`: one call of a task function, in a queue."""

from __future__ import annotations

import datetime as dt
import inspect
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from taskq_core import serialization
from taskq_core._internal import (
    from_timestamp,
    import_attribute,
    serialize_func,
    to_timestamp,
)
from taskq_core.broker import EnqueueRequest, Execution, StoredTask
from taskq_core.context import running
from taskq_core.exceptions import (
    QueueFullException,
    SerializationError,
    TaskImportError,
    TaskRefused,
)
from taskq_core.options import CALL_SITE, OPTIONS_ATTR, given, merged
from taskq_core.plugins import call_hook_safely, get_plugin_manager, get_registry, get_runner_class
from taskq_core.retry import policy_rule, serialize_retry_method
from taskq_core.runners import runner_rule
from taskq_core.states import State
from taskq_core.task_modules import split_path, task_rule

if TYPE_CHECKING:
    from taskq_core.runners import BaseRunner
    from taskq_core.types import App

__all__ = ["OPTIONS_ATTR", "PRIORITY_RANGE", "UNREADABLE", "Task", "normalize_keys", "to_when"]

PRIORITY_RANGE = (-1000, 1000)
#: ``serialized_func`` of a task whose stored payload cannot be decoded.
UNREADABLE = "<unreadable payload>"


def normalize_keys(keys: str | Sequence[str] | None, name: str) -> list[str] | None:
    """``unique_key``/``lock_key``: one string means that one key."""
    if keys is None:
        return None
    if isinstance(keys, str):
        return [keys]
    result = list(keys)
    if not all(isinstance(k, str) for k in result):
        raise TypeError(f"{name} must be a keyword-argument name or a list of them, got {keys!r}")
    return result


def to_when(when: dt.datetime | dt.timedelta | float | int | None) -> float | None:
    """A due time as epoch seconds (naive datetimes are UTC, timedeltas from now)."""
    if when is None:
        return None
    if isinstance(when, dt.timedelta):
        return time.time() + when.total_seconds()
    if isinstance(when, dt.datetime):
        return to_timestamp(when)
    if isinstance(when, int | float) and not isinstance(when, bool):
        return float(when)
    raise TypeError(f"when must be a datetime, a timedelta or None, got {type(when).__name__}")


def _serialize_exceptions(retry_on: Sequence[type[BaseException] | str]) -> list[str]:
    names = []
    for item in retry_on:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, type) and issubclass(item, BaseException):
            names.append(serialize_func(item, what="exception class"))
        else:
            raise TypeError(f"retry_on must list exception classes, got {item!r}")
    return names


def _serialize_runner(runner_class: type | str | None) -> str | None:
    if runner_class is None or isinstance(runner_class, str):
        return runner_class
    return serialize_func(runner_class, what="runner class")


class Task:
    """A call of a task function with its arguments and options.

    Create tasks with ``tq.delay(...)`` / ``f.delay(...)``, or build one with
    ``Task(tq, func, ...)`` and call :meth:`delay`. Tasks loaded from the broker
    (:meth:`from_id`, :meth:`tasks_from_queue`) carry their state.
    """

    def __init__(
        self,
        tq: App,
        func: Callable[..., Any] | None = None,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        queue: str | None = None,
        hard_timeout: float | None = None,
        unique: bool | None = None,
        unique_key: str | Sequence[str] | None = None,
        lock: bool | None = None,
        lock_key: str | Sequence[str] | None = None,
        retry: bool | None = None,
        retry_on: Sequence[type[BaseException] | str] | None = None,
        retry_method: Any = None,
        max_queue_size: int | None = None,
        max_stored_executions: int | None = None,
        runner_class: type | str | None = None,
        priority: int | None = None,
        *,
        _stored: StoredTask | None = None,
        _data: dict[str, Any] | None = None,
    ) -> None:
        self.tq = tq
        self._func: Callable[..., Any] | None = func
        self._stored = _stored
        self._state: State | None = _stored.state if _stored else None
        self._executions: list[Execution] = list(_stored.executions) if _stored else []
        if _data is not None:
            self._data = _data
            self._queue = _stored.queue if _stored else (queue or tq.config["DEFAULT_QUEUE"])
            return
        if func is None:
            raise TypeError("Task() needs a function")
        options: dict[str, Any] = dict(getattr(func, OPTIONS_ATTR, {}))
        chosen = merged(given(locals(), CALL_SITE), options)
        serialized_func = serialize_func(func)
        task_rule(tq.config["ALLOWED_TASK_MODULES"]).check_object(
            func, "task function", serialized_func
        )
        queue = chosen["queue"] or tq.config["DEFAULT_QUEUE"]
        if not isinstance(queue, str) or not queue:
            raise ValueError(f"queue must be a non-empty string, got {queue!r}")
        args = list(args or ())
        kwargs = dict(kwargs or {})
        serialization.check_arguments(args, kwargs, serialized_func)
        unique_key = normalize_keys(chosen["unique_key"], "unique_key")
        lock_key = normalize_keys(chosen["lock_key"], "lock_key")
        unique = bool(chosen["unique"] or unique_key or options.get("schedule"))
        lock = bool(chosen["lock"] or lock_key)
        retry_on = chosen["retry_on"]
        retry_method = chosen["retry_method"]
        retry = chosen["retry"]
        priority = chosen["priority"] or 0
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise TypeError(f"priority must be an int, got {priority!r}")
        if not PRIORITY_RANGE[0] <= priority <= PRIORITY_RANGE[1]:
            raise ValueError(
                f"priority must be between {PRIORITY_RANGE[0]} and {PRIORITY_RANGE[1]}"
            )
        data: dict[str, Any] = {"func": serialized_func}
        if unique:
            data["unique"] = True
            task_id = serialization.gen_unique_id(queue, serialized_func, args, kwargs, unique_key)
        else:
            task_id = serialization.gen_id()
        if unique_key:
            data["unique_key"] = unique_key
        if lock:
            data["lock"] = True
        if lock_key:
            data["lock_key"] = lock_key
        if args:
            data["args"] = args
        if kwargs:
            data["kwargs"] = kwargs
        if hard_timeout:
            data["hard_timeout"] = float(hard_timeout)
        if retry or retry_on or retry_method:
            data["retry_method"] = serialize_retry_method(
                retry_method or tq.config["DEFAULT_RETRY_METHOD"]
            )
        if retry_on:
            data["retry_on"] = _serialize_exceptions(retry_on)
        max_queue_size = chosen["max_queue_size"]
        if max_queue_size:
            data["max_queue_size"] = int(max_queue_size)
        max_stored_executions = chosen["max_stored_executions"]
        if max_stored_executions is not None:
            data["max_stored_executions"] = int(max_stored_executions)
        runner = _serialize_runner(chosen["runner_class"])
        if runner:
            data["runner_class"] = runner
        if priority:
            data["priority"] = priority
        try:  # what a worker would refuse to read back is refused here
            serialization.check_task_data(data)
        except SerializationError as exc:
            raise ValueError(f"cannot enqueue {serialized_func}: {exc}") from exc
        data["id"] = task_id
        self._data = data
        self._queue = queue
        self.check_allowed()

    # -- loading -------------------------------------------------------------
    @classmethod
    def _from_stored(cls, tq: App, stored: StoredTask) -> Task:
        """The one place stored data becomes a Task: the payload goes through the
        typed decode, and whatever is unreadable (payload or the broker's meta)
        is kept in :attr:`unreadable` instead of raising (Decision 19)."""
        if stored.missing:
            data: dict[str, Any] = {"id": stored.id}
        else:
            try:
                data = serialization.decode_task_data(stored.payload)
            except SerializationError as exc:  # listed and repairable, not a crash
                data = {"id": stored.id, "func": UNREADABLE, "payload_error": str(exc)}
        data["id"] = stored.id
        return cls(tq, _stored=stored, _data=data)

    @classmethod
    def from_id(
        cls, tq: App, queue: str, state: State | str, task_id: str, load_executions: int = 0
    ) -> Task:
        """Load a task; ``TaskNotFound`` if it is not in that queue and state."""
        stored = tq.broker.get_task(queue, State(state), task_id, load_executions)
        return cls._from_stored(tq, stored)

    @classmethod
    def tasks_from_queue(
        cls,
        tq: App,
        queue: str,
        state: State | str,
        skip: int = 0,
        limit: int = 1000,
        load_executions: int = 0,
    ) -> tuple[int, list[Task]]:
        """``(total, tasks)`` oldest first; ``skip`` counts from the oldest.

        A task whose data is missing appears once, with only its id."""
        total, stored = tq.broker.list_tasks(queue, State(state), skip, limit, load_executions)
        return total, [cls._from_stored(tq, item) for item in stored]

    # -- properties ------------------------------------------------------------
    @property
    def id(self) -> str:
        return str(self._data["id"])

    @property
    def unreadable(self) -> str | None:
        """What of this task's stored data could not be read (its payload, or the
        data the broker keeps beside it), or ``None``. A worker never runs such
        a task: it fails it with an execution record saying this."""
        problems = [str(self._data["payload_error"])] if "payload_error" in self._data else []
        meta_error = self._stored.meta_error if self._stored is not None else None
        if meta_error:
            problems.append(meta_error)
        return "; ".join(problems) or None

    @property
    def data(self) -> dict[str, Any]:
        """The task's stored data (function, arguments, options)."""
        return self._data

    @property
    def queue(self) -> str:
        return self._queue

    @property
    def state(self) -> State | None:
        return self._state

    @property
    def serialized_func(self) -> str:
        return str(self._data["func"])

    @property
    def func(self) -> Callable[..., Any]:
        """The task function (imported on first use; ``TaskImportError`` if it can't be).

        ``TaskRefused``, with nothing imported, if the task names a function,
        runner class or retry method a worker must not import (see
        :meth:`check_allowed`), or if the path leads to a callable defined in
        such a module (``myapp.tasks:os.system``)."""
        if self._func is None:
            self.check_allowed()
            rule = task_rule(self.tq.config["ALLOWED_TASK_MODULES"])
            func = rule.resolve(self.serialized_func, "task function")
            if not callable(func):
                raise TaskImportError(f"{self.serialized_func!r} is not callable")
            unwrapped = getattr(func, "__wrapped_task__", func)
            if unwrapped is not func:
                rule.check_object(unwrapped, "task function", self.serialized_func)
            self._func = unwrapped
        return self._func

    def check_allowed(self) -> None:
        """Raise :class:`~taskq_core.exceptions.TaskRefused` if the task's data
        names a function, runner class or retry method whose module a worker
        must not import: one of the standard library, or, with the config key
        ``ALLOWED_TASK_MODULES``, one outside those modules (API decision 18).

        Only the paths are read; nothing is imported. Where a path leads once
        imported is checked when it is imported.
        """
        allowed = self.tq.config["ALLOWED_TASK_MODULES"]
        task_rule(allowed).check_path(self._data.get("func"), "task function")
        runner = self._data.get("runner_class")
        if isinstance(runner, str) and runner not in get_registry().runners:
            runner_rule(allowed).check_path(runner, "runner class")
        spec = self._data.get("retry_method")
        if isinstance(spec, list | tuple) and spec:
            policy_rule(allowed).check_path(spec[0], "retry method")

    @property
    def options(self) -> dict[str, Any]:
        """The decorator options of the task function (``{}`` if not decorated)."""
        return dict(getattr(self.func, OPTIONS_ATTR, {}))

    @property
    def is_batch_func(self) -> bool:
        return bool(self.options.get("batch"))

    @property
    def is_coroutine_func(self) -> bool:
        """Whether the task function is an ``async def`` run with the default
        runner (the ``asyncio`` executor awaits it on its event loop)."""
        return inspect.iscoroutinefunction(self.func) and not self.serialized_runner_class

    @property
    def args(self) -> list[Any]:
        return list(self._data.get("args", []))

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self._data.get("kwargs", {}))

    @property
    def hard_timeout(self) -> float | None:
        value = self._data.get("hard_timeout")
        return float(value) if value else None

    @property
    def unique(self) -> bool:
        return bool(self._data.get("unique"))

    @property
    def unique_key(self) -> list[str] | None:
        return self._data.get("unique_key")

    @property
    def lock(self) -> bool:
        return bool(self._data.get("lock"))

    @property
    def lock_key(self) -> list[str] | None:
        return self._data.get("lock_key")

    @property
    def retry_method(self) -> list[Any] | None:
        return self._data.get("retry_method")

    @property
    def retry_on(self) -> list[str] | None:
        return self._data.get("retry_on")

    @property
    def max_queue_size(self) -> int | None:
        return self._data.get("max_queue_size")

    @property
    def max_stored_executions(self) -> int | None:
        return self._data.get("max_stored_executions")

    @property
    def serialized_runner_class(self) -> str | None:
        return self._data.get("runner_class")

    @property
    def priority(self) -> int:
        """The priority the task runs with: a loaded task's is the broker's (a
        unique task enqueued again keeps its place, priority included)."""
        if self._stored is not None and self._state is not None and not self._stored.missing:
            return self._stored.priority
        return int(self._data.get("priority", 0))

    @property
    def executions(self) -> list[Execution]:
        """The loaded execution records (see ``load_executions``)."""
        return self._executions

    @property
    def ts(self) -> dt.datetime | None:
        """When the task entered its state (due time for scheduled/queued)."""
        return from_timestamp(self._stored.ts) if self._stored else None

    @property
    def scheduled_at(self) -> dt.datetime | None:
        value = self._stored.scheduled_at if self._stored else None
        return from_timestamp(value) if value is not None else None

    @property
    def time_last_queued(self) -> dt.datetime | None:
        value = self._stored.time_last_queued if self._stored else None
        return from_timestamp(value) if value is not None else None

    @property
    def lock_id(self) -> str:
        """The id of the lock this task takes (``lock=True``)."""
        return serialization.gen_lock_id(
            self.serialized_func, self.args, self.kwargs, self.lock_key
        )

    def __repr__(self) -> str:
        state = self._state.value if self._state else "new"
        return f"<Task {self.serialized_func} {self.queue} {state} {self.id[:12]}>"

    # -- actions -----------------------------------------------------------------
    def payload(self) -> bytes:
        return serialization.encode_payload(self._data)

    def delay(
        self,
        when: dt.datetime | dt.timedelta | None = None,
        max_queue_size: int | None = None,
        *,
        connection: object | None = None,
    ) -> Any:
        """Enqueue the task (or, with ``ALWAYS_EAGER`` and no future ``when``, run it
        now and return its result).

        ``connection``: a database connection of yours (a psycopg connection
        with the PostgreSQL broker) whose open transaction the task is
        written in, uncommitted: it runs once you commit, never if you roll
        back. A broker that cannot do this raises :class:`TypeError` naming
        it, and writes nothing (see
        :meth:`Broker.enqueue_on_connection <taskq_core.broker.Broker.enqueue_on_connection>`).
        """
        due = to_when(when)
        self.check_allowed()
        payload = self.payload()
        limit = max_queue_size if max_queue_size is not None else self.max_queue_size
        if self.tq.config["ALWAYS_EAGER"] and (due is None or due <= time.time()):
            if limit:
                size = self.tq.get_total_queue_size(self.queue)
                if size >= limit:
                    raise QueueFullException(f"Queue size: {size}")
            return self.execute()
        request = EnqueueRequest(
            id=self.id,
            queue=self.queue,
            payload=payload,
            when=due,
            priority=self.priority,
            unique=self.unique,
            max_queue_size=limit or None,
        )
        if connection is None:
            result = self.tq.broker.enqueue(request)
        else:
            result = self.tq.broker.enqueue_on_connection(request, connection)
        assert result.state is not None
        self._state = result.state
        self._stored = StoredTask(
            id=self.id,
            queue=self.queue,
            state=result.state,
            payload=payload,
            ts=result.ts,
            priority=self.priority,
            # the due time: a past `when` is not kept (decision 14), and a
            # unique task already pending keeps its time (decision 15)
            scheduled_at=result.ts,
            time_last_queued=time.time(),
        )
        if result.created:
            call_hook_safely("taskq_task_enqueued", tq=self.tq, task=self)
        return None

    def execute(self) -> Any:
        """Run the task inline with its runner (no timeout, retries or broker writes);
        exceptions propagate."""
        runner = self.get_runner()
        box: list[Any] = []

        def innermost(tq: App, tasks: Sequence[Task]) -> list[Any]:
            box.append(runner.run_eager_task(self))
            return box

        with running(self.tq, [self], self.is_batch_func):
            hook = get_plugin_manager().hook.taskq_execute_task
            hook.call_extra([innermost], {"tq": self.tq, "tasks": [self]})
        return box[0]

    def get_runner(self) -> BaseRunner:
        """An instance of the task's runner class. A runner named by dotted path
        (not registered by a plugin) is checked like the task function:
        ``TaskRefused``, importing nothing, if a worker must not import it."""
        name = self.serialized_runner_class or "default"
        if name in get_registry().runners:
            cls = get_runner_class(name)
        else:
            rule = runner_rule(self.tq.config["ALLOWED_TASK_MODULES"])
            rule.check_path(name, "runner class")
            cls = get_runner_class(name)
            rule.check_object(cls, "runner class", name)
        runner: BaseRunner = cls(self.tq)
        return runner

    def cancel(self) -> None:
        """Remove the task if it is scheduled; ``TaskNotFound`` otherwise."""
        self.tq.broker.cancel(self.queue, self.id)
        self._state = None

    def delete(self) -> None:
        """Remove the task if it is in ``error``; ``TaskNotFound`` otherwise."""
        self.tq.broker.delete(self.queue, self.id)
        self._state = None

    def retry(self) -> None:
        """Move the task from ``error`` to ``queued`` (its records are kept)."""
        self.tq.broker.retry_from_error(self.queue, self.id)
        self._state = State.QUEUED

    def n_executions(self) -> int:
        """Failed executions so far; ``TaskNotFound`` if the task is gone."""
        return self.tq.broker.executions_count(self.queue, self.id)

    def update_scheduled_time(self, when: dt.datetime | dt.timedelta | float) -> None:
        """Change when a scheduled task runs (nothing else changes)."""
        due = to_when(when)
        assert due is not None
        self.tq.broker.update_scheduled_time(self.queue, self.id, due)
        if self._stored is not None:
            self._stored.ts = due
            self._stored.scheduled_at = due

    def should_retry_on(self, exception_class: type[BaseException]) -> bool:
        """Whether ``retry_on`` lists ``exception_class`` or a base class of it.

        Names that cannot be imported never match. A name whose module is not
        imported yet is imported only if a task function could come from there:
        never a standard-library module, nor one outside ``ALLOWED_TASK_MODULES``."""
        for name in self.retry_on or []:
            try:
                cls = self._exception_class(name)
            except (TaskImportError, TaskRefused) as exc:
                self.tq.log.error("could not import exception", exception_name=name, error=str(exc))
                continue
            if isinstance(cls, type) and issubclass(exception_class, cls):
                return True
        return False

    def _exception_class(self, name: str) -> Any:
        module_name, qualname = split_path(name)
        module = sys.modules.get(module_name)
        if module is None:
            rule = task_rule(self.tq.config["ALLOWED_TASK_MODULES"])
            rule.check_path(name, "exception class")
            return import_attribute(name)
        found: Any = module
        try:
            for part in qualname.split("."):
                found = getattr(found, part)
        except AttributeError as exc:
            raise TaskImportError(f"cannot import {name!r}: {exc}") from exc
        return found

    def clone(self) -> Task:
        """A new, unsaved task with the same data."""
        return Task(self.tq, queue=self.queue, _data=dict(self._data), _stored=None)
