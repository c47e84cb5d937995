"""The in-process broker (``memory://``).

:class:`MemoryBroker` implements the whole :class:`~taskq_core.broker.Broker`
contract with dictionaries guarded by one lock, so every operation is atomic
for all threads of the process. It cannot be shared with other processes (a
worker on it runs tasks in-process, never in a forked child).

Its clock can be replaced, which lets tests move time forward without
sleeping::

    now = [1000.0]
    broker = MemoryBroker(clock=lambda: now[0])
    broker.enqueue(EnqueueRequest("t1", "default", b"...", when=1060.0))
    now[0] += 60
    assert broker.move_due("default", 100) == 1
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time as _time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from taskq_core.broker import (
    Broker,
    DroppedTask,
    EnqueueRequest,
    EnqueueResult,
    Execution,
    FinishOutcome,
    StoredTask,
)
from taskq_core.exceptions import QueueFullException, TaskNotFound
from taskq_core.states import OUTCOMES, STATES, State

__all__ = ["MemoryBroker"]

_Key = tuple[str, str]
#: an index entry: (score, insertion sequence); the sequence breaks score ties
#: so that order is stable (first stored, first out).
_Entry = tuple[float, int]
#: a queued-heap entry: (-priority, score, sequence, task id).
_HeapItem = tuple[int, float, int, str]
#: dropped entries kept for take_dropped()
_DROPPED_KEPT = 10_000


@dataclass
class _TaskData:
    """What the broker keeps about a task beside its state entries."""

    payload: bytes
    priority: int
    scheduled_at: float
    time_last_queued: float
    executions: list[Execution] = field(default_factory=list)
    executions_count: int = 0


class MemoryBroker(Broker):
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
        self._clock: Callable[[], float] = clock if clock is not None else _time.time
        self._lock = threading.RLock()
        self._activity_cond = threading.Condition(self._lock)
        self._seq = itertools.count()
        self._reset()

    def _reset(self) -> None:
        self._data: dict[_Key, _TaskData] = {}
        self._index: dict[State, dict[str, dict[str, _Entry]]] = {state: {} for state in STATES}
        self._owners: dict[_Key, str] = {}
        self._heaps: dict[str, list[_HeapItem]] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._slots: dict[str, dict[str, float]] = {}
        self._system_locks: dict[str, float] = {}
        self._rate_limits: dict[str, float] = {}
        self._activity: set[str] = set()
        #: what pop dropped, until take_dropped() (the newest, if nobody asks)
        self._dropped: deque[DroppedTask] = deque(maxlen=_DROPPED_KEPT)

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

    # -- internal index helpers ---------------------------------------------------
    def _entry(self, state: State, queue: str, task_id: str) -> _Entry | None:
        return self._index[state].get(queue, {}).get(task_id)

    def _add(self, state: State, queue: str, task_id: str, score: float) -> None:
        entry = (score, next(self._seq))
        self._index[state].setdefault(queue, {})[task_id] = entry
        if state is State.QUEUED:
            self._push(queue, task_id, entry)

    def _push(self, queue: str, task_id: str, entry: _Entry) -> None:
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
        self, queue: str, task_id: str, state: State, entry: _Entry, load_executions: int = 0
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

    # -- clock ------------------------------------------------------------------
    def time(self) -> float:
        """The broker's clock (the ``clock`` given to the constructor)."""
        return self._clock()

    # -- enqueue ----------------------------------------------------------------
    def enqueue(self, request: EnqueueRequest) -> EnqueueResult:
        """Store a task; see :meth:`Broker.enqueue`."""
        with self._lock:
            return self._enqueue(request, self._clock())

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[EnqueueResult]:
        """Enqueue many tasks under one lock; refused ones get ``refused=True``."""
        results: list[EnqueueResult] = []
        with self._lock:
            now = self._clock()
            for request in requests:
                try:
                    results.append(self._enqueue(request, now))
                except QueueFullException:
                    results.append(
                        EnqueueResult(request.id, None, created=False, ts=0.0, refused=True)
                    )
        return results

    def _size(self, queue: str, states: Sequence[State]) -> int:
        return sum(len(self._index[state].get(queue, ())) for state in states)

    def _enqueue(self, request: EnqueueRequest, now: float) -> EnqueueResult:
        queue, task_id = request.queue, request.id
        if request.max_queue_size is not None:
            size = self._size(queue, (State.QUEUED, State.SCHEDULED, State.ACTIVE))
            if size >= request.max_queue_size:
                raise QueueFullException(f"Queue size: {size}")
        pending = self._pending(queue, task_id)
        if pending is not None:
            entry = self._entry(pending, queue, task_id)
            assert entry is not None
            if request.unique:
                # keep the pending copy's place; store the latest payload
                self._replace_payload(queue, task_id, request, entry[0], now)
            return EnqueueResult(task_id, pending, created=False, ts=entry[0])
        when = request.when
        if when is None or when <= now:
            state, score = State.QUEUED, now
        else:
            state, score = State.SCHEDULED, when
        old = self._data.get((queue, task_id))
        self._data[(queue, task_id)] = _TaskData(
            payload=bytes(request.payload),
            priority=request.priority,
            scheduled_at=score,
            time_last_queued=now,
            executions=old.executions if old is not None else [],
            executions_count=old.executions_count if old is not None else 0,
        )
        self._add(state, queue, task_id, score)
        if state is State.QUEUED:
            self._announce(queue)
        return EnqueueResult(task_id, state, created=True, ts=score)

    def _replace_payload(
        self, queue: str, task_id: str, request: EnqueueRequest, score: float, now: float
    ) -> None:
        data = self._data.get((queue, task_id))
        if data is not None:
            data.payload = bytes(request.payload)
            return
        # the pending id had lost its data: it gets data again
        self._data[(queue, task_id)] = _TaskData(
            payload=bytes(request.payload),
            priority=request.priority,
            scheduled_at=score,
            time_last_queued=now,
        )

    # -- worker side ------------------------------------------------------------
    def pop(self, queue: str, limit: int, worker_id: str, defer_seconds: float) -> list[StoredTask]:
        """Move due ``queued`` tasks to ``active``; see :meth:`Broker.pop`."""
        out: list[StoredTask] = []
        with self._lock:
            now = self._clock()
            while len(out) < limit:
                heap = self._heaps.get(queue)
                if not heap:
                    break
                _neg_priority, score, seq, task_id = heapq.heappop(heap)
                if self._entry(State.QUEUED, queue, task_id) != (score, seq):
                    continue  # a stale heap item: the entry moved or changed
                self._remove(State.QUEUED, queue, task_id)
                key = (queue, task_id)
                if key not in self._data:  # the data is gone: drop the id
                    self._dropped.append(
                        DroppedTask(queue, task_id, State.QUEUED, "its data is missing")
                    )
                    continue
                if self._entry(State.ACTIVE, queue, task_id) is not None:
                    # the unique twin is running: try again later (a queued
                    # copy is never also scheduled, so there is no earlier time)
                    self._add(State.SCHEDULED, queue, task_id, now + defer_seconds)
                    continue
                # an error copy of the id stays in error (API decision 16)
                self._add(State.ACTIVE, queue, task_id, now)
                self._owners[key] = worker_id
                entry = self._entry(State.ACTIVE, queue, task_id)
                assert entry is not None
                out.append(self._stored(queue, task_id, State.ACTIVE, entry))
        return out

    def take_dropped(self) -> list[DroppedTask]:
        """The ids :meth:`pop` dropped since the last call (their data was gone)."""
        with self._lock:
            dropped = list(self._dropped)
            self._dropped.clear()
        return dropped

    def heartbeat(self, queue: str, task_ids: Sequence[str], worker_id: str) -> list[str]:
        """Refresh the active score of tasks ``worker_id`` owns."""
        refreshed: list[str] = []
        with self._lock:
            now = self._clock()
            for task_id in task_ids:
                if self._owners.get((queue, task_id)) != worker_id:
                    continue
                if self._entry(State.ACTIVE, queue, task_id) is None:
                    continue
                self._set_score(State.ACTIVE, queue, task_id, now)
                refreshed.append(task_id)
        return refreshed

    def finish(
        self,
        queue: str,
        task_id: str,
        worker_id: str,
        outcome: FinishOutcome,
        *,
        when: float | None = None,
        execution: Execution | None = None,
        max_stored_executions: int | None = None,
    ) -> bool:
        """End a run of a task this worker owns; see :meth:`Broker.finish`."""
        with self._lock:
            if self._entry(State.ACTIVE, queue, task_id) is None:
                return False
            if self._owners.get((queue, task_id)) != worker_id:
                return False
            self._end_run(
                queue,
                task_id,
                outcome,
                when=when,
                execution=execution,
                max_stored_executions=max_stored_executions,
            )
            return True

    def _end_run(
        self,
        queue: str,
        task_id: str,
        outcome: FinishOutcome,
        *,
        when: float | None,
        execution: Execution | None,
        max_stored_executions: int | None,
    ) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        now = self._clock()
        key = (queue, task_id)
        self._remove(State.ACTIVE, queue, task_id)
        data = self._data.get(key)
        if execution is not None and data is not None:
            data.executions.append({**execution})
            data.executions_count += 1
            if max_stored_executions:
                del data.executions[:-max_stored_executions]
        pending = self._pending(queue, task_id)
        in_error = self._entry(State.ERROR, queue, task_id) is not None
        if outcome == "done":
            if pending is None and not in_error:
                self._data.pop(key, None)
            elif not in_error and data is not None:
                # a successful run clears the records of earlier failures
                data.executions = []
                data.executions_count = 0
            return
        if outcome == "error":
            if in_error:
                self._set_score(State.ERROR, queue, task_id, now)
            else:
                self._add(State.ERROR, queue, task_id, now)
            return
        if outcome == "retry":
            target, due = State.SCHEDULED, (now if when is None else when)
        elif when is None or when <= now:
            target, due = State.QUEUED, now
        else:
            target, due = State.SCHEDULED, when
        if pending is not None:
            # the pending twin absorbs this copy: one pending copy, earliest time
            entry = self._entry(pending, queue, task_id)
            assert entry is not None
            if due < entry[0]:
                self._set_score(pending, queue, task_id, due)
            return
        self._add(target, queue, task_id, due)
        if target is State.QUEUED:
            self._announce(queue)

    def expired_tasks(self, older_than: float, limit: int) -> list[tuple[str, str]]:
        """Active tasks whose last heartbeat is before ``older_than``."""
        with self._lock:
            found = [
                (entry, queue, task_id)
                for queue, entries in self._index[State.ACTIVE].items()
                for task_id, entry in entries.items()
                if entry[0] < older_than
            ]
        found.sort()
        return [(queue, task_id) for _entry, queue, task_id in found[: max(limit, 0)]]

    def recover_expired(
        self,
        queue: str,
        task_id: str,
        older_than: float,
        outcome: FinishOutcome,
        *,
        when: float | None = None,
        execution: Execution | None = None,
        max_stored_executions: int | None = None,
    ) -> bool:
        """End the run of a task whose heartbeat is still before ``older_than``."""
        with self._lock:
            entry = self._entry(State.ACTIVE, queue, task_id)
            if entry is None or entry[0] >= older_than:
                return False
            self._end_run(
                queue,
                task_id,
                outcome,
                when=when,
                execution=execution,
                max_stored_executions=max_stored_executions,
            )
            return True

    def drop_expired_missing(self, queue: str, task_id: str, older_than: float) -> bool:
        """Remove an expired active id whose data is missing; see
        :meth:`Broker.drop_expired_missing`."""
        with self._lock:
            entry = self._entry(State.ACTIVE, queue, task_id)
            if entry is None or entry[0] >= older_than or (queue, task_id) in self._data:
                return False
            self._remove(State.ACTIVE, queue, task_id)
            return True

    def move_due(self, queue: str, limit: int) -> int:
        """Move scheduled tasks due by now to ``queued``, keeping due-time order."""
        with self._lock:
            now = self._clock()
            entries = self._index[State.SCHEDULED].get(queue)
            if not entries or limit <= 0:
                return 0
            due = sorted((entry, task_id) for task_id, entry in entries.items() if entry[0] <= now)
            moved = 0
            for (score, _seq), task_id in due[:limit]:
                self._remove(State.SCHEDULED, queue, task_id)
                if self._entry(State.QUEUED, queue, task_id) is not None:
                    continue
                self._add(State.QUEUED, queue, task_id, score)
                moved += 1
            if moved:
                self._announce(queue)
            return moved

    # -- locks and semaphores -----------------------------------------------------
    def acquire_lock(self, lock_id: str, token: str, ttl: float) -> bool:
        """Take the lock if it is free, expired or already ours."""
        with self._lock:
            now = self._clock()
            current = self._locks.get(lock_id)
            if current is not None and current[1] > now and current[0] != token:
                return False
            self._locks[lock_id] = (token, now + ttl)
            return True

    def renew_lock(self, lock_id: str, token: str, ttl: float) -> bool:
        """Extend our lock; ``False`` if it expired or belongs to another token."""
        with self._lock:
            now = self._clock()
            current = self._locks.get(lock_id)
            if current is None or current[0] != token or current[1] <= now:
                return False
            self._locks[lock_id] = (token, now + ttl)
            return True

    def release_lock(self, lock_id: str, token: str) -> bool:
        """Release our lock; ``False`` if it expired or belongs to another token."""
        with self._lock:
            now = self._clock()
            current = self._locks.get(lock_id)
            if current is None:
                return False
            if current[1] <= now:
                del self._locks[lock_id]
                return False
            if current[0] != token:
                return False
            del self._locks[lock_id]
            return True

    def acquire_queue_slot(self, queue: str, worker_id: str, limit: int, ttl: float) -> bool:
        """Take or renew one of ``limit`` slots of ``queue``."""
        with self._lock:
            now = self._clock()
            system = self._system_locks.get(queue)
            if system is not None:
                if system > now:
                    return False
                del self._system_locks[queue]
            holders = self._slots.setdefault(queue, {})
            for holder, expiry in list(holders.items()):
                if expiry <= now:
                    del holders[holder]
            if worker_id not in holders and len(holders) >= limit:
                return False
            holders[worker_id] = now + ttl
            return True

    def release_queue_slot(self, queue: str, worker_id: str) -> None:
        """Give our slot of ``queue`` back."""
        with self._lock:
            holders = self._slots.get(queue)
            if holders is not None:
                holders.pop(worker_id, None)
                if not holders:
                    del self._slots[queue]

    def set_queue_system_lock(self, queue: str, timeout: float) -> None:
        """Refuse queue slots of ``queue`` for ``timeout`` seconds."""
        with self._lock:
            self._system_locks[queue] = self._clock() + timeout

    def get_queue_system_lock(self, queue: str) -> float | None:
        """The system lock's expiry, or ``None`` when unset or expired."""
        with self._lock:
            expiry = self._system_locks.get(queue)
            if expiry is None or expiry <= self._clock():
                return None
            return expiry

    def try_rate_limit(self, name: str, ttl: float) -> bool:
        """``True`` at most once per ``ttl`` seconds for ``name``."""
        with self._lock:
            now = self._clock()
            expiry = self._rate_limits.get(name)
            if expiry is not None and expiry > now:
                return False
            self._rate_limits[name] = now + ttl
            return True

    # -- notifications --------------------------------------------------------------
    def wait_for_activity(self, timeout: float) -> set[str]:
        """Queues that got ``queued`` work since the last call; waits up to
        ``timeout`` seconds (real time) when there are none yet."""
        with self._activity_cond:
            if not self._activity and timeout > 0:
                self._activity_cond.wait_for(lambda: bool(self._activity), timeout)
            announced, self._activity = self._activity, set()
            return announced

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
