"""The :class:`MemoryBroker` class: the sections of the memory broker,
composed, with its options, clock and testing conveniences."""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from typing import Any, ClassVar

from taskq_core.broker import Broker, StoredTask
from taskq_core.brokers.memory._coordination import MemoryCoordination
from taskq_core.brokers.memory._inspection import MemoryInspection
from taskq_core.brokers.memory._moves import MemoryMoves
from taskq_core.states import STATES

__all__ = ["MemoryBroker"]


class MemoryBroker(MemoryMoves, MemoryInspection, MemoryCoordination, Broker):
    """A broker that keeps everything in this process's memory.

    :param clock: returns the broker's "now" in epoch seconds (default
        :func:`time.time`). Tests pass a controllable clock.
    :param options: ``url`` (a ``memory://`` URL, accepted and ignored).
        Any other option is a :class:`TypeError` that names it.

    Thread-safe: every method runs under one re-entrant lock.
    """

    name: ClassVar[str] = "memory"
    supports_fork: ClassVar[bool] = False

    def __init__(self, clock: Callable[[], float] | None = None, **options: Any) -> None:
        url = options.pop("url", None)
        if options:
            names = ", ".join(sorted(options))
            raise TypeError(f"MemoryBroker got unknown option(s): {names}")
        if url is not None and not str(url).startswith("memory:"):
            raise ValueError(f"MemoryBroker needs a memory:// URL, not {url!r}")
        super().__init__(clock if clock is not None else _time.time)

    def __repr__(self) -> str:
        return f"<MemoryBroker tasks={len(self._data)}>"

    # -- testing conveniences -------------------------------------------------
    def clear(self) -> None:
        """Forget every task, lock, slot and notification."""
        with self._lock:
            self._reset()

    def all_tasks(self) -> list[StoredTask]:
        """A snapshot of every stored task copy, with all its executions,
        ordered by queue, state and score. A unique task with a pending twin
        appears once per state it is in."""
        with self._lock:
            out: list[StoredTask] = []
            for state in STATES:
                for queue in sorted(self._index[state]):
                    entries = self._index[state][queue]
                    for task_id, entry in sorted(entries.items(), key=lambda item: item[1]):
                        out.append(self._stored(queue, task_id, state, entry, load_executions=-1))
            out.sort(key=lambda task: (task.queue, STATES.index(task.state)))
            return out

    def _drop_data(self, queue: str, task_id: str) -> None:
        """Delete a task's data but leave its state entries (tests use this to
        simulate data lost by an outside writer)."""
        with self._lock:
            self._data.pop((queue, task_id), None)

    # -- clock ------------------------------------------------------------------
    def time(self) -> float:
        """The broker's clock (the ``clock`` given to the constructor)."""
        return self._clock()
