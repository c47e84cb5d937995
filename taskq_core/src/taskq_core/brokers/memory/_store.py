"""The memory broker's store: task data, the per-state indexes and the pop
heaps, and the helpers every section of the broker builds on.

A task copy is an entry ``(score, sequence)`` in the index of its state and
queue; its payload, priority, times and records are one :class:`TaskData`
beside the entries. Queued entries are also in a heap per queue, for
``pop``. Everything is guarded by one re-entrant lock, held by each public
method for its whole run, which is what makes each operation atomic.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from taskq_core.broker import Execution, StoredTask
from taskq_core.states import STATES, State

__all__ = ["Entry", "Key", "MemoryStore", "TaskData"]

Key = tuple[str, str]
#: an index entry: (score, insertion sequence); the sequence breaks score ties
#: so that order is stable (first stored, first out).
Entry = tuple[float, int]
#: a queued-heap entry: (-priority, score, sequence, task id).
_HeapItem = tuple[int, float, int, str]


@dataclass
class TaskData:
    """What the broker keeps about a task beside its state entries."""

    payload: bytes
    priority: int
    scheduled_at: float
    time_last_queued: float
    executions: list[Execution] = field(default_factory=list)
    executions_count: int = 0


class MemoryStore:
    """The state shared by the sections of
    :class:`~taskq_core.brokers.memory.MemoryBroker`, and its helpers.

    Each section that keeps state of its own extends :meth:`_reset`.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._activity_cond = threading.Condition(self._lock)
        self._seq = itertools.count()
        self._reset()

    def _reset(self) -> None:
        self._data: dict[Key, TaskData] = {}
        self._index: dict[State, dict[str, dict[str, Entry]]] = {state: {} for state in STATES}
        self._owners: dict[Key, str] = {}
        self._heaps: dict[str, list[_HeapItem]] = {}
        self._activity: set[str] = set()

    # -- internal index helpers ---------------------------------------------------
    def _entry(self, state: State, queue: str, task_id: str) -> Entry | None:
        return self._index[state].get(queue, {}).get(task_id)

    def _add(self, state: State, queue: str, task_id: str, score: float) -> None:
        entry = (score, next(self._seq))
        self._index[state].setdefault(queue, {})[task_id] = entry
        if state is State.QUEUED:
            self._push(queue, task_id, entry)

    def _push(self, queue: str, task_id: str, entry: Entry) -> None:
        """Add a queued entry to the queue's pop heap. Items whose entry has
        changed since stay in the heap and are skipped when they come up; the
        heap is rebuilt when they pile up."""
        data = self._data.get((queue, task_id))
        priority = data.priority if data is not None else 0
        heap = self._heaps.setdefault(queue, [])
        heapq.heappush(heap, (-priority, entry[0], entry[1], task_id))
        live = self._index[State.QUEUED][queue]
        if len(heap) > 2 * len(live) + 64:
            heap[:] = [item for item in heap if live.get(item[3]) == (item[1], item[2])]
            heapq.heapify(heap)

    def _set_score(self, state: State, queue: str, task_id: str, score: float) -> None:
        """Change the score of an existing entry, keeping its tie-break rank."""
        entries = self._index[state][queue]
        old_score, seq = entries[task_id]
        if old_score == score:
            return
        entries[task_id] = (score, seq)
        if state is State.QUEUED:
            self._push(queue, task_id, (score, seq))

    def _remove(self, state: State, queue: str, task_id: str) -> bool:
        entries = self._index[state].get(queue)
        if entries is None or task_id not in entries:
            return False
        del entries[task_id]
        if not entries:
            del self._index[state][queue]
            if state is State.QUEUED:
                self._heaps.pop(queue, None)
        if state is State.ACTIVE:
            self._owners.pop((queue, task_id), None)
        return True

    def _pending(self, queue: str, task_id: str) -> State | None:
        for state in (State.QUEUED, State.SCHEDULED):
            if self._entry(state, queue, task_id) is not None:
                return state
        return None

    def _forget_if_unused(self, queue: str, task_id: str) -> None:
        """Delete the data of a task that no state refers to any more."""
        if all(self._entry(state, queue, task_id) is None for state in STATES):
            self._data.pop((queue, task_id), None)

    def _announce(self, queue: str) -> None:
        self._activity.add(queue)
        self._activity_cond.notify_all()

    def _stored(
        self, queue: str, task_id: str, state: State, entry: Entry, load_executions: int = 0
    ) -> StoredTask:
        data = self._data.get((queue, task_id))
        if data is None:
            return StoredTask(task_id, queue, state, b"", entry[0], missing=True)
        if load_executions < 0:
            executions = data.executions
        elif load_executions > 0:
            executions = data.executions[-load_executions:]
        else:
            executions = []
        return StoredTask(
            id=task_id,
            queue=queue,
            state=state,
            payload=data.payload,
            ts=entry[0],
            priority=data.priority,
            scheduled_at=data.scheduled_at,
            time_last_queued=data.time_last_queued,
            executions_count=data.executions_count,
            executions=[{**execution} for execution in executions],
        )
