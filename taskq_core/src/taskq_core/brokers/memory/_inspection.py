"""The memory broker's inspection and repair (see
:mod:`taskq_core.broker.inspection`)."""

from __future__ import annotations

import math

from taskq_core.broker import StoredTask
from taskq_core.brokers.memory._store import MemoryStore
from taskq_core.exceptions import TaskNotFound
from taskq_core.states import STATES, State

__all__ = ["MemoryInspection"]


class MemoryInspection(MemoryStore):
    """The inspection and repair methods of
    :class:`~taskq_core.brokers.memory.MemoryBroker`."""

    # -- inspection -------------------------------------------------------------------
    def queues(self, state: State) -> set[str]:
        """Queues with at least one task in ``state``."""
        with self._lock:
            return set(self._index[state])

    def queue_sizes(self, queue: str) -> dict[State, int]:
        """Number of tasks of ``queue`` in each of the four states."""
        with self._lock:
            return {state: len(self._index[state].get(queue, ())) for state in STATES}

    def get_task(
        self, queue: str, state: State, task_id: str, load_executions: int = 0
    ) -> StoredTask:
        """The task in ``state``; ``TaskNotFound`` if absent or its data is missing."""
        with self._lock:
            entry = self._entry(state, queue, task_id)
            if entry is None:
                raise TaskNotFound(f"task {task_id} is not {state} in queue {queue!r}")
            if (queue, task_id) not in self._data:
                raise TaskNotFound(f"the data of task {task_id} in queue {queue!r} is missing")
            return self._stored(queue, task_id, state, entry, max(load_executions, 0))

    def list_tasks(
        self,
        queue: str,
        state: State,
        skip: int = 0,
        limit: int = 1000,
        load_executions: int = 0,
    ) -> tuple[int, list[StoredTask]]:
        """``(total, tasks)`` in ascending score order, ``skip`` from the oldest."""
        with self._lock:
            entries = self._index[state].get(queue, {})
            ordered = sorted(entries.items(), key=lambda item: item[1])
            window = ordered[max(skip, 0) : max(skip, 0) + max(limit, 0)]
            tasks = [
                self._stored(queue, task_id, state, entry, max(load_executions, 0))
                for task_id, entry in window
            ]
            return len(ordered), tasks

    def executions_count(self, queue: str, task_id: str) -> int:
        """Failed executions of a task; ``TaskNotFound`` if its data is missing."""
        with self._lock:
            data = self._data.get((queue, task_id))
            if data is None:
                raise TaskNotFound(f"the data of task {task_id} in queue {queue!r} is missing")
            return data.executions_count

    # -- repair -------------------------------------------------------------------------
    def cancel(self, queue: str, task_id: str) -> None:
        """Remove a scheduled task; ``TaskNotFound`` if it is not scheduled."""
        with self._lock:
            if not self._remove(State.SCHEDULED, queue, task_id):
                raise TaskNotFound(f"task {task_id} is not scheduled in queue {queue!r}")
            self._forget_if_unused(queue, task_id)

    def delete(self, queue: str, task_id: str) -> None:
        """Remove a task in error; ``TaskNotFound`` if it is not in error."""
        with self._lock:
            if not self._remove(State.ERROR, queue, task_id):
                raise TaskNotFound(f"task {task_id} is not in error in queue {queue!r}")
            self._forget_if_unused(queue, task_id)

    def retry_from_error(self, queue: str, task_id: str) -> None:
        """Move a task from error to queued now, keeping its records."""
        with self._lock:
            if self._entry(State.ERROR, queue, task_id) is None:
                raise TaskNotFound(f"task {task_id} is not in error in queue {queue!r}")
            if (queue, task_id) not in self._data:
                raise TaskNotFound(f"the data of task {task_id} in queue {queue!r} is missing")
            self._remove(State.ERROR, queue, task_id)
            if self._pending(queue, task_id) is not None:
                return  # the pending copy will run; it already has the data
            self._add(State.QUEUED, queue, task_id, self._clock())
            self._announce(queue)

    def update_scheduled_time(self, queue: str, task_id: str, when: float) -> None:
        """Change a scheduled task's due time and ``scheduled_at``, nothing else."""
        if not math.isfinite(when):
            raise ValueError(f"when must be a finite number, got {when!r}")
        with self._lock:
            data = self._data.get((queue, task_id))
            if self._entry(State.SCHEDULED, queue, task_id) is None or data is None:
                raise TaskNotFound(f"task {task_id} is not scheduled in queue {queue!r}")
            self._set_score(State.SCHEDULED, queue, task_id, when)
            data.scheduled_at = when

    def purge_errors(self, queue: str, older_than: float | None, limit: int | None) -> int:
        """Delete tasks in error that failed before ``older_than`` (exclusive)."""
        if limit is not None and limit <= 0:
            raise ValueError(f"limit must be positive or None, not {limit!r}")
        with self._lock:
            entries = self._index[State.ERROR].get(queue, {})
            victims = sorted(
                (entry, task_id)
                for task_id, entry in entries.items()
                if older_than is None or entry[0] < older_than
            )
            if limit is not None:
                victims = victims[:limit]
            for _entry, task_id in victims:
                self._remove(State.ERROR, queue, task_id)
                self._forget_if_unused(queue, task_id)
            return len(victims)
