"""The memory broker's state moves: enqueue, pop, heartbeat, the end of a
run, the recovery of lost runs and due scheduled tasks (see
:mod:`taskq_core.broker.moves`)."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence

from taskq_core.broker import (
    DroppedTask,
    EnqueueRequest,
    EnqueueResult,
    Execution,
    FinishOutcome,
    FinishRequest,
    StoredTask,
)
from taskq_core.brokers.memory._store import MemoryStore, TaskData
from taskq_core.exceptions import QueueFullException
from taskq_core.states import State

__all__ = ["MemoryMoves"]

#: dropped entries kept for take_dropped()
_DROPPED_KEPT = 10_000


class MemoryMoves(MemoryStore):
    """The state moves of :class:`~taskq_core.brokers.memory.MemoryBroker`."""

    def _reset(self) -> None:
        super()._reset()
        #: what pop dropped, until take_dropped() (the newest, if nobody asks)
        self._dropped: deque[DroppedTask] = deque(maxlen=_DROPPED_KEPT)

    # -- enqueue ----------------------------------------------------------------
    def enqueue(self, request: EnqueueRequest) -> EnqueueResult:
        """Store a task; see :meth:`Broker.enqueue`."""
        request.check()
        with self._lock:
            return self._enqueue(request, self._clock())

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[EnqueueResult]:
        """Enqueue many tasks under one lock; refused ones get ``refused=True``.
        A request that cannot be stored raises before any is stored."""
        for request in requests:
            request.check()
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
        self._data[(queue, task_id)] = TaskData(
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
        self._data[(queue, task_id)] = TaskData(
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
        FinishRequest(task_id, outcome, when, execution, max_stored_executions).check()
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
        FinishRequest(task_id, outcome, when, execution, max_stored_executions).check()
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
