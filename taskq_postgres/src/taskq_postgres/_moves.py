"""The PostgreSQL broker's state moves of the worker and ``delay``: enqueue
(also on the caller's connection), pop, heartbeat and the end of a run (see
:mod:`taskq_core.broker.moves`; the recovery of lost runs and due tasks are
in ``_recovery``). Each public method is one transaction holding the
advisory locks of the tasks it moves; the batched forms are one transaction
per :data:`CHUNK` tasks and a pop one per :data:`POP_CHUNK` (each task's
move stays atomic, and no transaction holds more than a few hundred locks,
well within PostgreSQL's default lock table).

A pop takes the head of the queue with ``SELECT ... FOR UPDATE SKIP
LOCKED`` (rows another pop is taking are skipped, never waited for), then
the locks of those tasks with ``pg_try_advisory_xact_lock``: a task whose
lock another move holds is left for the next pop, so a pop never waits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row

from taskq_core.broker import (
    DroppedTask,
    EnqueueRequest,
    EnqueueResult,
    Execution,
    FinishOutcome,
    FinishRequest,
    StoredTask,
)
from taskq_core.exceptions import QueueFullException
from taskq_core.states import State
from taskq_postgres import _rows as rows
from taskq_postgres._codec import check_request
from taskq_postgres._connection import errors
from taskq_postgres._ending import OWNED, checked_end, end_run
from taskq_postgres._keys import queue_key, task_key
from taskq_postgres._rows import NOW, Tx, lock_and_clock
from taskq_postgres._store import PostgresStore

__all__ = ["CHUNK", "POP_CHUNK", "PostgresMoves"]

#: tasks per transaction of the batched moves (each holds their locks)
CHUNK = 100
#: tasks per transaction of a pop
POP_CHUNK = 200

#: the head of a queue, in pop order; rows another pop holds are skipped
_HEAD = """
    SELECT seq, id FROM taskq_entries
    WHERE queue = %s AND state = 'queued' AND seq <> ALL(%s::bigint[])
    ORDER BY priority DESC, score, seq
    LIMIT %s
    FOR UPDATE SKIP LOCKED
"""
#: try the lock of each task, then read the clock
_TRY_LOCKS = f"""
    SELECT array_agg(pg_try_advisory_xact_lock(k) ORDER BY o), {NOW}
    FROM unnest(%s::bigint[]) WITH ORDINALITY AS u(k, o)
"""
#: take the chosen entries out of queued; their data and whether a twin is active
_TAKE = """
    WITH taken AS (
        DELETE FROM taskq_entries WHERE seq = ANY(%(seqs)s::bigint[]) AND state = 'queued'
        RETURNING seq, id
    )
    SELECT taken.seq, taken.id, t.queue IS NOT NULL,
        t.payload, t.priority, t.scheduled_at, t.time_last_queued, t.executions_count,
        EXISTS (SELECT FROM taskq_entries a
                WHERE a.queue = %(queue)s AND a.id = taken.id AND a.state = 'active')
    FROM taken LEFT JOIN taskq_tasks t ON t.queue = %(queue)s AND t.id = taken.id
"""


def _enqueue_keys(requests: Sequence[EnqueueRequest]) -> list[int]:
    keys = [task_key(r.queue, r.id) for r in requests]
    keys += [queue_key(r.queue) for r in requests if r.max_queue_size is not None]
    return keys


def _chunks(items: Sequence[Any], size: int = CHUNK) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


class PostgresMoves(PostgresStore):
    """The state moves of :class:`~taskq_postgres.PostgresBroker`."""

    # -- enqueue ----------------------------------------------------------------
    def enqueue(self, request: EnqueueRequest) -> EnqueueResult:
        """Store a task; see :meth:`Broker.enqueue`."""
        check_request(request)
        with self._write(_enqueue_keys([request])) as tx:
            return self._enqueue(tx, request)

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[EnqueueResult]:
        """Enqueue many tasks, in order, one transaction per :data:`CHUNK`;
        refused ones get ``refused=True``."""
        for request in requests:
            check_request(request)
        results: list[EnqueueResult] = []
        for chunk in _chunks(requests):
            with self._write(_enqueue_keys(chunk)) as tx:
                for request in chunk:
                    try:
                        results.append(self._enqueue(tx, request))
                    except QueueFullException:
                        results.append(
                            EnqueueResult(request.id, None, created=False, ts=0.0, refused=True)
                        )
        return results

    def enqueue_on_connection(self, request: EnqueueRequest, connection: object) -> EnqueueResult:
        """Enqueue on the caller's psycopg ``connection``, inside its open
        transaction, without committing: the task (and the notification that
        wakes workers) exists once the caller commits, never if it rolls back.

        On a connection in autocommit mode with no transaction open, the
        enqueue is one transaction of its own, committed at once. The task's
        lock is held until the caller's transaction ends, so keep it short.
        Raises :class:`TypeError` for something that is not a psycopg
        connection and :class:`ValueError` for one that is closed, in a failed
        transaction, or connected to another database than the broker's.
        """
        conn = self._caller_connection(connection)
        check_request(request)
        with self._conn():
            pass  # the schema is there (created on the broker's own connection)
        self._check_same_database(conn)
        with errors(self.where):
            if conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
                with conn.transaction():
                    return self._enqueue_on(conn, request)
            return self._enqueue_on(conn, request)

    def _enqueue_on(self, conn: psycopg.Connection[Any], request: EnqueueRequest) -> EnqueueResult:
        cur = conn.cursor(row_factory=tuple_row)
        tx = Tx(cur, lock_and_clock(cur, _enqueue_keys([request])))
        return self._enqueue(tx, request)

    def _caller_connection(self, connection: object) -> psycopg.Connection[Any]:
        name = f"the postgres broker ({self.where})"
        if not isinstance(connection, psycopg.Connection):
            raise TypeError(
                f"{name} enqueues inside a transaction of a psycopg.Connection (connection=), "
                f"not of a {type(connection).__module__}.{type(connection).__name__}"
            )
        if connection.closed:
            raise ValueError(f"{name} cannot enqueue on a closed connection")
        if connection.info.transaction_status == TransactionStatus.INERROR:
            raise ValueError(
                f"{name} cannot enqueue on a connection whose transaction failed: roll it back"
            )
        return connection

    def _check_same_database(self, conn: psycopg.Connection[Any]) -> None:
        theirs = (conn.info.dbname, conn.info.port)
        if self._database is not None and theirs != self._database:
            raise ValueError(
                f"the postgres broker keeps its tasks in database {self._database[0]!r} "
                f"(port {self._database[1]}), but connection= is connected to {theirs[0]!r} "
                f"(port {theirs[1]}): a task enqueued there would never run"
            )

    def _enqueue(self, tx: Tx, request: EnqueueRequest) -> EnqueueResult:
        queue, task_id = request.queue, request.id
        if request.max_queue_size is not None:
            row = tx.cur.execute(
                "SELECT count(*) FROM taskq_entries WHERE queue = %s "
                "AND state IN ('queued', 'scheduled', 'active')",
                (queue,),
            ).fetchone()
            size = 0 if row is None else int(row[0])
            if size >= request.max_queue_size:
                raise QueueFullException(f"Queue size: {size}")
        found = rows.copies(tx, queue, task_id)
        pending = rows.pending_of(found)
        if pending is not None:
            score = found[pending].score
            if request.unique:
                # keep the pending copy's place; store the latest payload
                self._replace_payload(tx, request, score)
            return EnqueueResult(task_id, pending, created=False, ts=score)
        when = request.when
        if when is None or when <= tx.now:
            state, score = State.QUEUED, tx.now
        else:
            state, score = State.SCHEDULED, float(when)
        tx.cur.execute(
            "WITH task AS (INSERT INTO taskq_tasks (queue, id, payload, priority, scheduled_at, "
            "time_last_queued, executions_count) "
            "VALUES (%(queue)s, %(id)s, %(payload)s, %(priority)s, %(score)s, %(now)s, 0) "
            "ON CONFLICT (queue, id) DO UPDATE SET payload = excluded.payload, "
            "priority = excluded.priority, scheduled_at = excluded.scheduled_at, "
            "time_last_queued = excluded.time_last_queued) "
            "INSERT INTO taskq_entries (queue, id, state, score, priority) "
            "VALUES (%(queue)s, %(id)s, %(state)s, %(score)s, %(priority)s)",
            {
                "queue": queue,
                "id": task_id,
                "payload": bytes(request.payload),
                "priority": request.priority,
                "score": score,
                "now": tx.now,
                "state": state.value,
            },
        )
        return EnqueueResult(task_id, state, created=True, ts=score)

    def _replace_payload(self, tx: Tx, request: EnqueueRequest, score: float) -> None:
        """Store the request's payload for the pending copy; a pending id whose
        data was lost gets data again (the request's fields, at ``score``)."""
        tx.cur.execute(
            "INSERT INTO taskq_tasks (queue, id, payload, priority, scheduled_at, "
            "time_last_queued, executions_count) VALUES (%s, %s, %s, %s, %s, %s, 0) "
            "ON CONFLICT (queue, id) DO UPDATE SET payload = excluded.payload",
            (request.queue, request.id, bytes(request.payload), request.priority, score, tx.now),
        )

    # -- worker side ------------------------------------------------------------
    def pop(self, queue: str, limit: int, worker_id: str, defer_seconds: float) -> list[StoredTask]:
        """Move due ``queued`` tasks to ``active``; see :meth:`Broker.pop`.
        One transaction per :data:`POP_CHUNK` tasks."""
        out: list[StoredTask] = []
        while len(out) < limit:
            with self._write() as tx:
                want = min(POP_CHUNK, limit - len(out))
                popped, exhausted = self._pop(tx, queue, want, worker_id, defer_seconds)
            out += popped
            if exhausted:
                break
        return out

    def _pop(
        self, tx: Tx, queue: str, limit: int, worker_id: str, defer_seconds: float
    ) -> tuple[list[StoredTask], bool]:
        """Up to ``limit`` tasks, and whether the queue had no more to give
        (none left, or every one left is being moved by someone else)."""
        out: list[StoredTask] = []
        skipped: list[int] = []
        while len(out) < limit:
            head = tx.cur.execute(_HEAD, (queue, skipped, limit - len(out))).fetchall()
            if not head:
                return out, True
            locks = tx.cur.execute(_TRY_LOCKS, ([task_key(queue, r[1]) for r in head],)).fetchone()
            assert locks is not None
            granted, tx.now = locks
            mine = [seq for (seq, _id), ok in zip(head, granted, strict=True) if ok]
            skipped += [seq for (seq, _id), ok in zip(head, granted, strict=True) if not ok]
            if not mine:
                return out, True  # every task at the head is being moved by someone else
            taken = {
                row[0]: row
                for row in tx.cur.execute(_TAKE, {"seqs": mine, "queue": queue}).fetchall()
            }
            chosen = [taken[seq] for seq in mine if seq in taken]
            out += self._activate(tx, queue, chosen, worker_id, defer_seconds)
        return out, False

    def _activate(
        self,
        tx: Tx,
        queue: str,
        taken: list[tuple[Any, ...]],
        worker_id: str,
        defer_seconds: float,
    ) -> list[StoredTask]:
        """Make the entries taken out of ``queued`` active, in pop order: drop
        the ids whose data is missing, defer those whose twin is active."""
        active: list[StoredTask] = []
        deferred: list[tuple[str, int]] = []
        for _seq, task_id, has_data, *data, twin_active in taken:
            if not has_data:  # the data is gone: drop the id
                tx.dropped.append(DroppedTask(queue, task_id, State.QUEUED, "its data is missing"))
            elif twin_active:
                deferred.append((task_id, data[1]))
            else:
                # an error copy of the id stays in error (API decision 16)
                active.append(rows.stored_task(queue, task_id, State.ACTIVE, tx.now, data))
        if active:
            tx.cur.execute(
                "INSERT INTO taskq_entries (queue, id, state, score, owner, priority) "
                "SELECT %s, u.id, 'active', %s, %s, u.priority "
                "FROM unnest(%s::text[], %s::bigint[]) WITH ORDINALITY AS u(id, priority, o) "
                "ORDER BY u.o",
                (queue, tx.now, worker_id, [t.id for t in active], [t.priority for t in active]),
            )
        if deferred:
            # the unique twin is running: try again later (a queued copy is
            # never also scheduled, but keep an earlier time if one is there)
            tx.cur.execute(
                "INSERT INTO taskq_entries (queue, id, state, score, priority) "
                "SELECT %s, u.id, 'scheduled', %s, u.priority "
                "FROM unnest(%s::text[], %s::bigint[]) AS u(id, priority) "
                "ON CONFLICT (queue, id, state) "
                "DO UPDATE SET score = least(taskq_entries.score, excluded.score)",
                (
                    queue,
                    tx.now + defer_seconds,
                    [task_id for task_id, _ in deferred],
                    [priority for _, priority in deferred],
                ),
            )
        return active

    def heartbeat(self, queue: str, task_ids: Sequence[str], worker_id: str) -> list[str]:
        """Refresh the active score of tasks ``worker_id`` owns."""
        if not task_ids:
            return []
        return self.heartbeat_many({queue: task_ids}, worker_id).get(queue, [])

    def heartbeat_many(
        self, task_ids: Mapping[str, Sequence[str]], worker_id: str
    ) -> dict[str, list[str]]:
        """Every queue's heartbeat in one transaction (one statement)."""
        pairs = [(queue, task_id) for queue, ids in task_ids.items() for task_id in ids]
        if not pairs:
            return {}
        with self._write(task_key(q, i) for q, i in pairs) as tx:
            refreshed = {
                (q, i)
                for q, i in tx.cur.execute(
                    "UPDATE taskq_entries e SET score = %s "
                    "FROM unnest(%s::text[], %s::text[]) AS u(queue, id) "
                    "WHERE e.queue = u.queue AND e.id = u.id AND e.state = 'active' "
                    "AND e.owner = %s RETURNING e.queue, e.id",
                    (tx.now, [q for q, _ in pairs], [i for _, i in pairs], worker_id),
                ).fetchall()
            }
        return {
            queue: [i for i in ids if (queue, i) in refreshed]
            for queue, ids in task_ids.items()
            if ids
        }

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
        """End several runs of ``queue``, each as ``finish``, one transaction
        per :data:`CHUNK`."""
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
        """The finishes, then the next pop; the last chunk of finishes and
        the pop share one transaction."""
        records = [checked_end(r) for r in requests]
        pairs = list(zip(requests, records, strict=True))
        ended: list[bool] = []
        popped: list[StoredTask] = []
        exhausted = limit <= 0
        chunks = _chunks(pairs) or [[]]
        for number, chunk in enumerate(chunks):
            with self._write(task_key(queue, r.task_id) for r, _ in chunk) as tx:
                ended += [
                    end_run(tx, queue, r.task_id, r, record, OWNED, owner=worker_id)
                    for r, record in chunk
                ]
                if number == len(chunks) - 1 and not exhausted:
                    want = min(POP_CHUNK, limit)
                    popped, exhausted = self._pop(tx, queue, want, worker_id, defer_seconds)
        if not exhausted and len(popped) < limit:
            popped += self.pop(queue, limit - len(popped), worker_id, defer_seconds)
        return ended, popped
