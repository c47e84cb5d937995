"""The SQLite broker's state moves of the worker and ``delay``: enqueue,
pop, heartbeat and the end of a run (see :mod:`taskq_core.broker.moves`;
the recovery of lost runs and due tasks are in ``_recovery``). Each public
method is one write transaction; the batched forms (``enqueue_many``,
``heartbeat_many``, ``finish_many``, ``finish_many_then_pop``) are one
transaction for the batch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from taskq_core.broker import (
    DroppedTask,
    EnqueueRequest,
    EnqueueResult,
    Execution,
    FinishOutcome,
    FinishRequest,
    StoredTask,
)
from taskq_core.brokers.sqlite import _rows as rows
from taskq_core.brokers.sqlite._codec import (
    check_request,
    meta_problem,
    text,
)
from taskq_core.brokers.sqlite._ending import checked_end, end_run
from taskq_core.brokers.sqlite._rows import Tx
from taskq_core.brokers.sqlite._store import SQLiteStore
from taskq_core.exceptions import QueueFullException
from taskq_core.states import State

__all__ = ["SQLiteMoves"]

#: the next queued entries in pop order, with their data and whether a twin
#: is active (the partial index ``taskq_entries_pop`` serves the order)
_POP = f"""
    SELECT e.seq, e.id, t.rowid IS NOT NULL, {rows.DATA_COLUMNS_OF_T},
        EXISTS (SELECT 1 FROM taskq_entries a
                WHERE a.queue = e.queue AND a.state = 'active' AND a.id = e.id)
    FROM taskq_entries e LEFT JOIN taskq_tasks t ON t.queue = e.queue AND t.id = e.id
    WHERE e.queue = ? AND e.state = 'queued'
    ORDER BY e.priority DESC, e.score, e.seq
    LIMIT ?
"""


class SQLiteMoves(SQLiteStore):
    """The state moves of :class:`~taskq_core.brokers.sqlite.SQLiteBroker`."""

    # -- enqueue ----------------------------------------------------------------
    def enqueue(self, request: EnqueueRequest) -> EnqueueResult:
        """Store a task; see :meth:`Broker.enqueue`."""
        check_request(request)
        with self._write() as tx:
            return self._enqueue(tx, request)

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[EnqueueResult]:
        """Enqueue many tasks in one transaction; refused ones get ``refused=True``."""
        for request in requests:
            check_request(request)
        results: list[EnqueueResult] = []
        with self._write() as tx:
            for request in requests:
                try:
                    results.append(self._enqueue(tx, request))
                except QueueFullException:
                    results.append(
                        EnqueueResult(request.id, None, created=False, ts=0.0, refused=True)
                    )
        return results

    def _enqueue(self, tx: Tx, request: EnqueueRequest) -> EnqueueResult:
        queue, task_id = request.queue, request.id
        if request.max_queue_size is not None:
            size = tx.db.execute(
                "SELECT coalesce(sum(n), 0) FROM taskq_counts WHERE queue = ? "
                "AND state IN ('queued', 'scheduled', 'active')",
                (queue,),
            ).fetchone()[0]
            if size >= request.max_queue_size:
                raise QueueFullException(f"Queue size: {size}")
        found = rows.copies(tx, queue, task_id)
        pending = rows.pending_of(found)
        if pending is not None:
            score = found[pending].ts
            if score is None:  # an unreadable score: now, or the requested due time
                score = tx.now if pending is State.QUEUED else max(request.when or 0.0, tx.now)
                rows.set_score(tx, pending, queue, task_id, score)
            if request.unique:
                # keep the pending copy's place; store the latest payload
                self._replace_payload(tx, request, score)
            return EnqueueResult(task_id, pending, created=False, ts=score)
        when = request.when
        if when is None or when <= tx.now:
            state, score = State.QUEUED, tx.now
        else:
            state, score = State.SCHEDULED, float(when)
        tx.db.execute(
            "INSERT INTO taskq_tasks (queue, id, payload, priority, scheduled_at, "
            "time_last_queued, executions_count) VALUES (?, ?, ?, ?, ?, ?, 0) "
            "ON CONFLICT (queue, id) DO UPDATE SET payload = excluded.payload, "
            "priority = excluded.priority, scheduled_at = excluded.scheduled_at, "
            "time_last_queued = excluded.time_last_queued",
            (queue, task_id, bytes(request.payload), request.priority, score, tx.now),
        )
        rows.add(tx, state, queue, task_id, score)
        return EnqueueResult(task_id, state, created=True, ts=score)

    def _replace_payload(self, tx: Tx, request: EnqueueRequest, score: float) -> None:
        """Store the request's payload for the pending copy; a pending id whose
        data was lost gets data again (the request's fields, at ``score``)."""
        tx.db.execute(
            "INSERT INTO taskq_tasks (queue, id, payload, priority, scheduled_at, "
            "time_last_queued, executions_count) VALUES (?, ?, ?, ?, ?, ?, 0) "
            "ON CONFLICT (queue, id) DO UPDATE SET payload = excluded.payload",
            (request.queue, request.id, bytes(request.payload), request.priority, score, tx.now),
        )

    # -- worker side ------------------------------------------------------------
    def pop(self, queue: str, limit: int, worker_id: str, defer_seconds: float) -> list[StoredTask]:
        """Move due ``queued`` tasks to ``active``; see :meth:`Broker.pop`."""
        if limit <= 0:
            return []
        with self._write() as tx:
            return self._pop(tx, queue, limit, worker_id, defer_seconds)

    def _pop(
        self, tx: Tx, queue: str, limit: int, worker_id: str, defer_seconds: float
    ) -> list[StoredTask]:
        out: list[StoredTask] = []
        while len(out) < limit:
            head = tx.db.execute(_POP, (queue, limit - len(out))).fetchall()
            if not head:
                break
            tx.db.executemany("DELETE FROM taskq_entries WHERE seq = ?", [(r[0],) for r in head])
            for row in head:
                task = self._activate(tx, queue, row, worker_id, defer_seconds)
                if task is not None:
                    out.append(task)
        return out

    def _activate(
        self, tx: Tx, queue: str, row: tuple[Any, ...], worker_id: str, defer_seconds: float
    ) -> StoredTask | None:
        """Make one entry taken out of ``queued`` active, or deal with what is
        wrong with it; the task if it became active."""
        _seq, raw_id, has_data, *data, twin_active = row
        task_id = text(raw_id)
        if not has_data:  # the data is gone: drop the id
            tx.dropped.append(DroppedTask(queue, task_id, State.QUEUED, "its data is missing"))
            return None
        problem = meta_problem(*data[1:])
        if problem is not None:
            message = f"the task's metadata {problem}"
            rows.fail_unreadable(tx, queue, task_id, State.QUEUED, message)
            return None
        if twin_active:
            # the unique twin is running: try again later (a queued copy is
            # never also scheduled, but keep an earlier time if one is there)
            tx.db.execute(
                "INSERT INTO taskq_entries (queue, id, state, score, priority) "
                "VALUES (?, ?, 'scheduled', ?, ?) ON CONFLICT (queue, state, id) "
                "DO UPDATE SET score = min(score, excluded.score)",
                (queue, task_id, tx.now + defer_seconds, data[1]),
            )
            return None
        # an error copy of the id stays in error (API decision 16)
        rows.add(tx, State.ACTIVE, queue, task_id, tx.now, owner=worker_id)
        return rows.stored_task(queue, task_id, State.ACTIVE, tx.now, tuple(data))

    def take_dropped(self) -> list[DroppedTask]:
        """The entries pop and move_due dropped or moved to error since the
        last call, because their stored data was missing or unreadable."""
        with self._dropped_lock:
            dropped = list(self._dropped)
            self._dropped.clear()
        return dropped

    def heartbeat(self, queue: str, task_ids: Sequence[str], worker_id: str) -> list[str]:
        """Refresh the active score of tasks ``worker_id`` owns."""
        if not task_ids:
            return []
        with self._write() as tx:
            return self._heartbeat(tx, queue, task_ids, worker_id)

    def heartbeat_many(
        self, task_ids: Mapping[str, Sequence[str]], worker_id: str
    ) -> dict[str, list[str]]:
        """Every queue's heartbeat in one transaction."""
        queues = [queue for queue, ids in task_ids.items() if ids]
        if not queues:
            return {}
        with self._write() as tx:
            return {q: self._heartbeat(tx, q, task_ids[q], worker_id) for q in queues}

    def _heartbeat(self, tx: Tx, queue: str, task_ids: Sequence[str], worker_id: str) -> list[str]:
        refreshed: list[str] = []
        for task_id in task_ids:
            cursor = tx.db.execute(
                "UPDATE taskq_entries SET score = ? "
                "WHERE queue = ? AND state = 'active' AND id = ? AND owner = ?",
                (tx.now, queue, task_id, worker_id),
            )
            if cursor.rowcount:
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
        request = FinishRequest(task_id, outcome, when, execution, max_stored_executions)
        return self.finish_many(queue, worker_id, [request])[0]

    def finish_many(
        self, queue: str, worker_id: str, requests: Sequence[FinishRequest]
    ) -> list[bool]:
        """End several runs of ``queue`` in one transaction, each as ``finish``."""
        if not requests:
            return []
        return self.finish_many_then_pop(queue, worker_id, requests, 0, 0.0)[0]

    def finish_many_then_pop(
        self,
        queue: str,
        worker_id: str,
        requests: Sequence[FinishRequest],
        limit: int,
        defer_seconds: float,
    ) -> tuple[list[bool], list[StoredTask]]:
        """The finishes, then the next pop, in one transaction."""
        records = [checked_end(r) for r in requests]
        with self._write() as tx:
            ended = [
                self._finish(tx, queue, r.task_id, worker_id, r, record)
                for r, record in zip(requests, records, strict=True)
            ]
            popped = self._pop(tx, queue, limit, worker_id, defer_seconds) if limit > 0 else []
        return ended, popped

    def _finish(
        self,
        tx: Tx,
        queue: str,
        task_id: str,
        worker_id: str,
        request: FinishRequest,
        record: bytes | None,
    ) -> bool:
        active = rows.entry(tx, State.ACTIVE, queue, task_id)
        if active is None or active.owner != worker_id:
            return False
        end_run(tx, queue, task_id, request, record)
        return True
