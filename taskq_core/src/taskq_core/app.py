"""The application object, :class:`TaskQ`."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec, Protocol, TypeVar, cast, overload

import structlog

from taskq_core._internal import serialize_func, to_timestamp
from taskq_core.broker import Broker, EnqueueRequest
from taskq_core.config import DEFAULT_EXECUTOR, validate_config
from taskq_core.context import current
from taskq_core.exceptions import ConfigError
from taskq_core.logging import setup_structlog as _setup_structlog
from taskq_core.options import CALL_SITE, DECORATOR, OPTIONS_ATTR, given
from taskq_core.plugins import DEFAULT_BROKER_URL, call_hook_safely, get_registry, make_broker
from taskq_core.queues import queue_matches
from taskq_core.retry import serialize_retry_method
from taskq_core.schedule import serialize_schedule
from taskq_core.states import STATES, State
from taskq_core.task import Task, normalize_keys, to_when

__all__ = ["PERIODIC_TASKS", "TaskQ", "periodic_tasks"]

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class TaskFunction(Protocol[P, R_co]):
    """What ``@tq.task`` returns, for type checkers: the function itself,
    still callable as before, with a typed ``delay``."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> Task:
        """Enqueue a call of the function with these arguments."""
        ...


#: Periodic task functions by serialized name, whichever ``TaskQ`` declared them
#: (a worker started with ``-m module`` runs the module's periodic tasks).
PERIODIC_TASKS: dict[str, Callable[..., Any]] = {}


def periodic_tasks() -> dict[str, Callable[..., Any]]:
    """Every periodic task function declared in this process, by serialized
    name (a copy of :data:`PERIODIC_TASKS`)."""
    return dict(PERIODIC_TASKS)


class TaskQ:
    """The taskq application: configuration, broker, tasks.

    :param broker: a URL (``sqlite:///path.db``, ``redis://…``,
        ``rediss://…``, ``unix://…``, ``memory://``), a broker name, or a
        :class:`~taskq_core.broker.Broker`. Default: the ``TASKQ_URL``
        environment variable, else ``sqlite://``, the SQLite broker on its
        default file (``$TASKQ_SQLITE_PATH``, else
        ``~/.local/share/taskq/taskq.db``), which needs no server. The broker
        is connected on first use.
    :param config: configuration keys (see ``docs/configuration.md``).
    :param setup_structlog: configure structlog for JSON output.
    """

    def __init__(
        self,
        broker: str | Broker | None = None,
        config: Mapping[str, Any] | None = None,
        setup_structlog: bool = False,
        **broker_options: Any,
    ) -> None:
        self.config: dict[str, Any] = validate_config(config)
        self._broker_spec = broker
        self._broker_options = broker_options
        self._broker: Broker | None = broker if isinstance(broker, Broker) else None
        # the broker was built from DEFAULT_BROKER_URL: nothing named another, or
        # ``sqlite://`` was given (the worker says so when it starts)
        self._broker_is_default = False
        if setup_structlog:
            _setup_structlog()
        # a lazy proxy: it follows structlog's configuration at the time of each call
        self.log: Any = structlog.get_logger(self.config["LOGGER_NAME"])
        self.periodic_task_funcs: dict[str, Callable[..., Any]] = {}
        call_hook_safely("taskq_app_created", tq=self)

    def __repr__(self) -> str:
        spec = self._broker_spec if not isinstance(self._broker_spec, Broker) else self._broker
        return f"<TaskQ broker={spec!r}>"

    def configure(
        self,
        broker: str | Broker | None = None,
        config: Mapping[str, Any] | None = None,
        **broker_options: Any,
    ) -> None:
        """Change the constructor's settings after creation (framework
        integrations create a ``TaskQ`` at import time and configure it later).

        ``config``, when given, replaces the configuration keys (defaults plus
        these), at any time. ``broker`` and ``broker_options``, when given,
        replace the constructor's, and only before the broker is connected:
        afterwards that is a :class:`~taskq_core.exceptions.ConfigError`.
        """
        if broker is not None or broker_options:
            if self._broker is not None:
                raise ConfigError(
                    f"{self!r} is already connected to its broker; change the broker "
                    "settings before the first use of the TaskQ"
                )
            if broker is not None:
                self._broker_spec = broker
                self._broker = broker if isinstance(broker, Broker) else None
            self._broker_options = broker_options
        if config is not None:
            self.config = validate_config(config)
            self.log = structlog.get_logger(self.config["LOGGER_NAME"])

    def _use_broker(self, broker: Broker) -> None:
        """Work on ``broker`` from now on, whatever the app named or already
        uses: broker options on the command line beat the app's (Decision 11)."""
        self._broker_spec = broker
        self._broker_options = {}
        self._broker = broker
        self._broker_is_default = False

    # -- broker ------------------------------------------------------------------
    @property
    def broker(self) -> Broker:
        """The broker (built from the URL on first use)."""
        if self._broker is None:
            spec = self._broker_spec
            assert not isinstance(spec, Broker)
            if spec is None:
                spec = os.environ.get("TASKQ_URL") or DEFAULT_BROKER_URL
            self._broker = make_broker(spec, **self._broker_options)
            self._broker_is_default = spec == DEFAULT_BROKER_URL
        return self._broker

    @property
    def uses_default_broker(self) -> bool:
        """Whether the broker is the default one, ``sqlite://`` (the SQLite
        broker on its default file): no broker was named, or ``sqlite://``
        itself. Builds the broker if needed (it connects on first use)."""
        _ = self.broker  # the flag is set when the broker is built
        return self._broker_is_default

    @property
    def default_queue(self) -> str:
        return str(self.config["DEFAULT_QUEUE"])

    # -- declaring tasks ----------------------------------------------------------
    @overload
    def task(self, _func: Callable[P, R]) -> TaskFunction[P, R]: ...

    @overload
    def task(
        self,
        _func: None = None,
        *,
        queue: str | None = None,
        hard_timeout: float | None = None,
        unique: bool | None = None,
        unique_key: str | Sequence[str] | None = None,
        lock: bool | None = None,
        lock_key: str | Sequence[str] | None = None,
        retry: bool | None = None,
        retry_on: Sequence[type[BaseException]] | None = None,
        retry_method: Any = None,
        max_queue_size: int | None = None,
        max_stored_executions: int | None = None,
        runner_class: type | str | None = None,
        batch: bool = False,
        schedule: Any = None,
        priority: int | None = None,
    ) -> Callable[[Callable[P, R]], TaskFunction[P, R]]: ...

    def task(
        self,
        _func: Callable[P, R] | None = None,
        *,
        queue: str | None = None,
        hard_timeout: float | None = None,
        unique: bool | None = None,
        unique_key: str | Sequence[str] | None = None,
        lock: bool | None = None,
        lock_key: str | Sequence[str] | None = None,
        retry: bool | None = None,
        retry_on: Sequence[type[BaseException]] | None = None,
        retry_method: Any = None,
        max_queue_size: int | None = None,
        max_stored_executions: int | None = None,
        runner_class: type | str | None = None,
        batch: bool = False,
        schedule: Any = None,
        priority: int | None = None,
    ) -> TaskFunction[P, R] | Callable[[Callable[P, R]], TaskFunction[P, R]]:
        """Declare a task function: ``@tq.task`` or ``@tq.task(queue=..., ...)``.

        The function keeps working when called directly and gains
        ``.delay(*args, **kwargs) -> Task``. Options given to ``delay`` override
        these. ``schedule=`` makes it periodic (and unique; it takes no arguments).
        """
        options = given(locals(), DECORATOR)
        for key in ("unique_key", "lock_key"):
            if key in options:
                options[key] = normalize_keys(options[key], key)
        if not batch:
            options.pop("batch", None)
        if retry_method is not None:
            serialize_retry_method(retry_method)  # refuse lambdas now, not at retry time
        if schedule is not None:
            serialize_schedule(schedule)
            options["unique"] = True

        def decorate(func: Callable[P, R]) -> TaskFunction[P, R]:
            setattr(func, OPTIONS_ATTR, options)

            def delay(*args: Any, **kwargs: Any) -> Task:
                return self.delay(func, args=args, kwargs=kwargs)

            func.delay = delay  # type: ignore[attr-defined]
            if schedule is not None:
                name = serialize_func(func)
                self.periodic_task_funcs[name] = func
                PERIODIC_TASKS[name] = func
            return cast("TaskFunction[P, R]", func)

        if _func is not None:
            return decorate(_func)
        return decorate

    def delay(
        self,
        func: Callable[..., Any],
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        queue: str | None = None,
        priority: int | None = None,
        hard_timeout: float | None = None,
        unique: bool | None = None,
        unique_key: str | Sequence[str] | None = None,
        lock: bool | None = None,
        lock_key: str | Sequence[str] | None = None,
        when: dt.datetime | dt.timedelta | None = None,
        retry: bool | None = None,
        retry_on: Sequence[type[BaseException]] | None = None,
        retry_method: Any = None,
        max_queue_size: int | None = None,
        max_stored_executions: int | None = None,
        runner_class: type | str | None = None,
        *,
        connection: object | None = None,
    ) -> Task:
        """Enqueue ``func(*args, **kwargs)`` and return the :class:`Task`.

        ``connection``: write the task in the open transaction of this
        database connection of yours, without committing it (brokers that
        store tasks in your database: PostgreSQL); see :meth:`Task.delay`."""
        task = Task(self, func, args=args, kwargs=kwargs, **given(locals(), CALL_SITE))
        task.delay(when=when, connection=connection)
        return task

    def delay_many(
        self,
        tasks: Sequence[Task],
        when: dt.datetime | dt.timedelta | None = None,
    ) -> list[Task]:
        """Enqueue many prepared tasks (``Task(tq, func, args=...)``) in one broker
        round trip where the broker supports it (Redis pipelines them).

        Each task is enqueued atomically on its own, with the same rules as
        :meth:`Task.delay`; ``when`` applies to all of them. Tasks that
        ``max_queue_size`` refused are left out of the returned list; nothing
        raises for them. With ``ALWAYS_EAGER`` (and no future ``when``) the tasks
        run inline, one after the other. A task naming a callable a worker must
        not run raises :class:`~taskq_core.exceptions.TaskRefused` before any
        task is enqueued.
        """
        due = to_when(when)
        for task in tasks:  # nothing is written if one of them is refused
            task.check_allowed()
        if self.config["ALWAYS_EAGER"] and (due is None or due <= time.time()):
            for task in tasks:
                task.execute()
            return list(tasks)
        requests = [
            EnqueueRequest(
                id=t.id,
                queue=t.queue,
                payload=t.payload(),
                when=due,
                priority=t.priority,
                unique=t.unique,
                max_queue_size=t.max_queue_size,
            )
            for t in tasks
        ]
        results = self.broker.enqueue_many(requests)
        accepted = []
        for task, result in zip(tasks, results, strict=True):
            if result.refused:
                continue
            task._state = result.state
            accepted.append(task)
            if result.created:
                call_hook_safely("taskq_task_enqueued", tq=self, task=task)
        return accepted

    # -- the running task ---------------------------------------------------------
    @property
    def current_task(self) -> Task:
        """The task being run (``RuntimeError`` outside a task or in a batch)."""
        if not current.active:
            raise RuntimeError("Must be accessed from within a task.")
        if current.is_batch:
            raise RuntimeError("Must use current_tasks in a batch task.")
        task: Task = current.tasks[0]
        return task

    @property
    def current_tasks(self) -> list[Task]:
        """The tasks of the running batch (``RuntimeError`` outside a batch)."""
        if not current.active:
            raise RuntimeError("Must be accessed from within a task.")
        if not current.is_batch:
            raise RuntimeError("Must use current_task in a non-batch task.")
        return list(current.tasks)

    @property
    def current_task_is_batch(self) -> bool:
        if not current.active:
            raise RuntimeError("Must be accessed from within a task.")
        return current.is_batch

    # -- inspection --------------------------------------------------------------
    def get_queue_sizes(self, queue: str) -> dict[str, int]:
        """``{"queued": n, "scheduled": n, "active": n}``."""
        sizes = self.broker.queue_sizes(queue)
        return {s.value: sizes.get(s, 0) for s in (State.QUEUED, State.SCHEDULED, State.ACTIVE)}

    def get_total_queue_size(self, queue: str) -> int:
        return sum(self.get_queue_sizes(queue).values())

    def get_queue_stats(self) -> dict[str, dict[str, int]]:
        """``{queue: {state: n}}`` for every non-empty queue and state."""
        stats: dict[str, dict[str, int]] = {}
        for queue in sorted(self.broker.iter_queues(STATES)):
            sizes = self.broker.queue_sizes(queue)
            counts = {s.value: n for s, n in sizes.items() if n}
            if counts:
                stats[queue] = counts
        return stats

    def purge_errored_tasks(
        self,
        queues: Sequence[str] | None = None,
        exclude_queues: Sequence[str] | None = None,
        last_execution_before: dt.datetime | None = None,
        limit: int | None = None,
    ) -> int:
        """Delete tasks in ``error`` (all matching ones when ``limit`` is None),
        oldest failure first. ``last_execution_before`` keeps the tasks that
        failed at or after it: the bound is exclusive."""
        if limit is not None and limit <= 0:
            raise ValueError("limit must be positive or None")
        only = queues or self.config["ONLY_QUEUES"]
        exclude = exclude_queues or self.config["EXCLUDE_QUEUES"]
        older_than = to_timestamp(last_execution_before) if last_execution_before else None
        deleted = 0
        for queue in sorted(self.broker.queues(State.ERROR)):
            if not queue_matches(queue, only, exclude):
                continue
            remaining = None if limit is None else limit - deleted
            deleted += self.broker.purge_errors(queue, older_than, remaining)
            if limit is not None and deleted >= limit:
                break
        return deleted

    def set_queue_system_lock(self, queue: str, timeout: float) -> None:
        """Keep workers with ``max_workers_per_queue`` off ``queue`` for ``timeout`` s."""
        self.broker.set_queue_system_lock(queue, timeout)

    def get_queue_system_lock(self, queue: str) -> float | None:
        """Expiry timestamp of the queue's system lock, or None."""
        return self.broker.get_queue_system_lock(queue)

    def would_process_configured_queue(self, queue: str) -> bool:
        return queue_matches(queue, self.config["ONLY_QUEUES"], self.config["EXCLUDE_QUEUES"])

    # -- workers -----------------------------------------------------------------
    def run_worker(
        self,
        queues: Sequence[str] | None = None,
        exclude_queues: Sequence[str] | None = None,
        max_workers_per_queue: int | None = None,
        store_tracebacks: bool | None = None,
        executor: str = DEFAULT_EXECUTOR,
        burst: bool = False,
        exit_after: float | None = None,
        concurrency: int | None = None,
        max_tasks_per_child: int | None = None,
        max_memory_per_child: float | None = None,
    ) -> None:
        """Run a worker in this process until stopped (or, with ``burst``, until idle).

        ``exit_after`` is in minutes, like the CLI's ``--exit-after``;
        ``concurrency`` task groups run at once (default: config
        ``CONCURRENCY``, 1); ``max_tasks_per_child`` and
        ``max_memory_per_child`` (megabytes) bound a ``pool`` child's life. The
        worker is the one the plugins registered (taskq's own, from the core
        plugin)."""
        get_registry().worker_entry.run(
            self,
            queues=queues,
            exclude_queues=exclude_queues,
            max_workers_per_queue=max_workers_per_queue,
            store_tracebacks=store_tracebacks,
            executor=executor,
            burst=burst,
            exit_after=exit_after,
            concurrency=concurrency,
            max_tasks_per_child=max_tasks_per_child,
            max_memory_per_child=max_memory_per_child,
        )

    def run_worker_with_args(self, argv: Sequence[str]) -> None:
        """Run ``taskq worker`` with command-line arguments, using this app."""
        get_registry().worker_entry.run_with_args(self, list(argv))
