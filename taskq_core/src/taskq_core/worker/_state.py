"""What every part of the worker shares: its settings, its executor and its
state (see :class:`taskq_core.worker.Worker`, which is built from the parts
in this package, each importing only the ones below it)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from taskq_core.broker import StoredTask
from taskq_core.config import DEFAULT_EXECUTOR, _DefaultExecutor
from taskq_core.exceptions import (
    ConfigError,
)
from taskq_core.executors import Executor
from taskq_core.plugins import get_executor_factory
from taskq_core.queues import dotted_parts, queue_matches

if TYPE_CHECKING:
    from taskq_core.types import App


__all__ = ["WorkerState"]

_BACKOFF_MAX = 30.0


class WorkerState:
    """The worker's settings and state, and the questions every part asks."""

    def __init__(
        self,
        tq: App,
        queues: Sequence[str] | None = None,
        exclude_queues: Sequence[str] | None = None,
        max_workers_per_queue: int | None = None,
        store_tracebacks: bool | None = None,
        executor: str | type[Executor] = DEFAULT_EXECUTOR,
        single_worker_queues: Sequence[str] | None = None,
        concurrency: int | None = None,
        max_tasks_per_child: int | None = None,
        max_memory_per_child: float | None = None,
    ) -> None:
        for name, value in (("queues", queues), ("exclude_queues", exclude_queues)):
            if isinstance(value, str):
                raise TypeError(f"{name} must be a list of queue names, not a string")
        self.tq = tq
        self.id = str(uuid.uuid4())
        self.log: Any = tq.log.bind(worker_id=self.id, pid=os.getpid())
        self.only_queues = set(queues or tq.config["ONLY_QUEUES"])
        self.exclude_queues = set(exclude_queues or tq.config["EXCLUDE_QUEUES"])
        self.single_worker_queues = set(single_worker_queues or tq.config["SINGLE_WORKER_QUEUES"])
        if max_workers_per_queue is not None and max_workers_per_queue < 1:
            raise ValueError("max_workers_per_queue must be at least 1")
        self.max_workers_per_queue = max_workers_per_queue
        self.store_tracebacks = (
            tq.config["STORE_TRACEBACKS"] if store_tracebacks is None else store_tracebacks
        )
        chosen = tq.config["CONCURRENCY"] if concurrency is None else concurrency
        if isinstance(chosen, bool) or not isinstance(chosen, int) or chosen < 1:
            raise ValueError(f"concurrency must be a whole number >= 1, got {chosen!r}")
        #: task groups run at once (``--concurrency``)
        self.concurrency = chosen
        limits: dict[str, float | None] = {
            "max_tasks_per_child": max_tasks_per_child,
            "max_memory_per_child": max_memory_per_child,
        }
        for limit_name, limit in limits.items():
            if limit is not None and (isinstance(limit, bool) or not limit > 0):
                raise ValueError(f"{limit_name} must be a number > 0, got {limit!r}")
        #: pool executor: tasks per child and MB of RSS before a child is replaced
        self.max_tasks_per_child = max_tasks_per_child
        self.max_memory_per_child = max_memory_per_child
        self.executor = self._make_executor(executor)
        self.stop_requested = False
        self._deadline: float | None = None
        self.force_stop = False
        self.wakeup_fd: int | None = None
        self._wakeup_write: int | None = None
        self._queue_set: set[str] = set()
        #: tasks popped together with the previous group's outcomes (one round
        #: trip), run first in the next pass; returned to the queue at exit
        self._prefetched: dict[str, list[StoredTask]] = {}
        #: groups popped but not started yet (no free slot), oldest first
        self._waiting: list[Any] = []
        #: runs over before they started (every task failed beforehand)
        self._finished_early: list[Any] = []
        self._last_heartbeat = time.time()
        self._last_resync = 0.0
        self._last_maintenance = 0.0
        self._stats_busy = 0.0
        self._stats_last = time.time()
        self.processed = 0

    def _make_executor(self, executor: str | type[Executor]) -> Executor:
        """An executor by registered name (``fork``, ``sync``, ``pool`` or a
        plugin's), or a class."""
        broker = self.tq.broker
        if isinstance(executor, str):
            if isinstance(executor, _DefaultExecutor) and not broker.supports_fork:
                executor = "sync"
            try:
                factory: Any = get_executor_factory(str(executor))
            except ConfigError as exc:
                raise ValueError(str(exc)) from exc
        else:
            factory = executor
        if getattr(factory, "forks", False) and not broker.supports_fork:
            raise ValueError(
                f"the {broker.name or type(broker).__name__} broker keeps tasks inside "
                f"this process, so a forked child could not report back; use "
                "executor='sync' (or a broker such as redis:// to fork)"
            )
        made: Executor = factory(self)
        return made

    def processes(self, queue: str) -> bool:
        """Whether this worker takes tasks from ``queue``."""
        return queue_matches(queue, self.only_queues, self.exclude_queues)

    def batch_size(self, queue: str) -> int:
        size = 1
        for part in dotted_parts(queue):
            size = self.tq.config["BATCH_QUEUES"].get(part, size)
        return int(size)

    def queue_slot_limit(self, queue: str) -> int | None:
        if any(part in self.single_worker_queues for part in dotted_parts(queue)):
            return 1
        return self.max_workers_per_queue

    def pop_size(self, queue: str) -> int:
        """How many tasks the next pop of ``queue`` takes: a batch queue's
        batch (its groups share the free slots), else one per free slot."""
        size = self.batch_size(queue)
        if size > 1:
            return size
        if self.queue_slot_limit(queue) is not None:
            return 1
        return max(1, self.executor.free_slots() - len(self._waiting))
