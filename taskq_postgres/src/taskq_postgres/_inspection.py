"""The PostgreSQL broker's inspection and repair (see
:mod:`taskq_core.broker.inspection`). A read is one statement, or one
``REPEATABLE READ`` snapshot when it needs two; each repair is one
transaction holding the task's lock (``purge_errors`` one per
:data:`~taskq_postgres._moves.CHUNK` tasks)."""

from __future__ import annotations

from typing import Any

from taskq_core.broker import StoredTask
from taskq_core.exceptions import TaskNotFound
from taskq_core.states import STATES, State
from taskq_postgres import _rows as rows
from taskq_postgres._codec import decode_execution, finite
from taskq_postgres._keys import task_key
from taskq_postgres._store import PostgresStore

__all__ = ["PostgresInspection"]

#: tasks purged per transaction
_PURGE_CHUNK = 100

#: the entries of one queue and state with their data and newest records
_TASKS_OF_STATE = """
    SELECT e.id, e.score, t.queue IS NOT NULL,
        t.payload, t.priority, t.scheduled_at, t.time_last_queued, t.executions_count,
        CASE WHEN %(want_records)s THEN ARRAY(
            SELECT x.record FROM taskq_executions x
            WHERE x.queue = e.queue AND x.id = e.id
            ORDER BY x.n DESC LIMIT %(records)s
        ) ELSE ARRAY[]::bytea[] END
    FROM taskq_entries e LEFT JOIN taskq_tasks t ON t.queue = e.queue AND t.id = e.id
    WHERE e.queue = %(queue)s AND e.state = %(state)s
"""

#: the distinct queues that have an entry in a state, one index probe per
#: queue (a skip scan of ``taskq_entries_by_state``)
_QUEUES_OF_STATE = """
    WITH RECURSIVE found AS (
        (SELECT queue FROM taskq_entries WHERE state = %(state)s ORDER BY queue LIMIT 1)
        UNION ALL
        SELECT (SELECT e.queue FROM taskq_entries e
                WHERE e.state = %(state)s AND e.queue > found.queue ORDER BY e.queue LIMIT 1)
        FROM found WHERE found.queue IS NOT NULL
    )
    SELECT queue FROM found WHERE queue IS NOT NULL
"""


def _records(load_executions: int) -> dict[str, Any]:
    """The parameters of :data:`_TASKS_OF_STATE` for the newest
    ``load_executions`` records (< 0: all)."""
    return {
        "want_records": load_executions != 0,
        "records": None if load_executions < 0 else load_executions,
    }


def _stored(queue: str, state: State, row: tuple[Any, ...]) -> StoredTask:
    task_id, score, has_data, *data, records = row
    if not has_data:
        return rows.stored_task(queue, task_id, state, score, None)
    executions = [decode_execution(record) for record in reversed(records)]
    return rows.stored_task(queue, task_id, state, score, data, executions)


class PostgresInspection(PostgresStore):
    """The inspection and repair methods of :class:`~taskq_postgres.PostgresBroker`."""

    # -- inspection -------------------------------------------------------------------
    def queues(self, state: State) -> set[str]:
        """Queues with at least one task in ``state``."""
        with self._read() as cur:
            found = cur.execute(_QUEUES_OF_STATE, {"state": State(state).value}).fetchall()
        return {row[0] for row in found}

    def queue_sizes(self, queue: str) -> dict[State, int]:
        """Number of tasks of ``queue`` in each of the four states."""
        with self._read() as cur:
            found = cur.execute(
                "SELECT state, count(*) FROM taskq_entries WHERE queue = %s GROUP BY state",
                (queue,),
            ).fetchall()
        counts = {state: int(n) for state, n in found}
        return {state: counts.get(state.value, 0) for state in STATES}

    def get_task(
        self, queue: str, state: State, task_id: str, load_executions: int = 0
    ) -> StoredTask:
        """The task in ``state``; ``TaskNotFound`` if absent or its data is missing."""
        state = State(state)
        with self._read() as cur:
            found = cur.execute(
                _TASKS_OF_STATE + " AND e.id = %(id)s",
                {"queue": queue, "state": state.value, "id": task_id, **_records(load_executions)},
            ).fetchone()
        if found is None:
            raise TaskNotFound(f"task {task_id} is not {state} in queue {queue!r}")
        if not found[2]:
            raise TaskNotFound(f"the data of task {task_id} in queue {queue!r} is missing")
        return _stored(queue, state, found)

    def list_tasks(
        self,
        queue: str,
        state: State,
        skip: int = 0,
        limit: int = 1000,
        load_executions: int = 0,
    ) -> tuple[int, list[StoredTask]]:
        """``(total, tasks)`` in ascending score order, ``skip`` from the oldest."""
        state = State(state)
        params = {"queue": queue, "state": state.value, **_records(load_executions)}
        with self._snapshot() as cur:
            total = cur.execute(
                "SELECT count(*) FROM taskq_entries WHERE queue = %(queue)s AND state = %(state)s",
                params,
            ).fetchone()
            window = cur.execute(
                _TASKS_OF_STATE + " ORDER BY e.score, e.seq LIMIT %(limit)s OFFSET %(skip)s",
                {**params, "limit": max(limit, 0), "skip": max(skip, 0)},
            ).fetchall()
        tasks = [_stored(queue, state, row) for row in window]
        return (0 if total is None else int(total[0])), tasks

    def executions_count(self, queue: str, task_id: str) -> int:
        """Failed executions of a task; ``TaskNotFound`` if its data is missing."""
        with self._read() as cur:
            found = cur.execute(
                "SELECT executions_count FROM taskq_tasks WHERE queue = %s AND id = %s",
                (queue, task_id),
            ).fetchone()
        if found is None:
            raise TaskNotFound(f"the data of task {task_id} in queue {queue!r} is missing")
        return int(found[0])

    # -- repair -------------------------------------------------------------------------
    def cancel(self, queue: str, task_id: str) -> None:
        """Remove a scheduled task; ``TaskNotFound`` if it is not scheduled."""
        with self._write([task_key(queue, task_id)]) as tx:
            if not rows.remove(tx, State.SCHEDULED, queue, task_id):
                raise TaskNotFound(f"task {task_id} is not scheduled in queue {queue!r}")
            rows.forget_if_unused(tx, queue, task_id)

    def delete(self, queue: str, task_id: str) -> None:
        """Remove a task in error; ``TaskNotFound`` if it is not in error."""
        with self._write([task_key(queue, task_id)]) as tx:
            if not rows.remove(tx, State.ERROR, queue, task_id):
                raise TaskNotFound(f"task {task_id} is not in error in queue {queue!r}")
            rows.forget_if_unused(tx, queue, task_id)

    def retry_from_error(self, queue: str, task_id: str) -> None:
        """Move a task from error to queued now, keeping its records."""
        with self._write([task_key(queue, task_id)]) as tx:
            found = rows.copies(tx, queue, task_id)
            if State.ERROR not in found:
                raise TaskNotFound(f"task {task_id} is not in error in queue {queue!r}")
            if rows.data_row(tx, queue, task_id) is None:
                raise TaskNotFound(f"the data of task {task_id} in queue {queue!r} is missing")
            rows.remove(tx, State.ERROR, queue, task_id)
            if rows.pending_of(found) is not None:
                return  # the pending copy will run; it already has the data
            rows.add(tx, State.QUEUED, queue, task_id, tx.now)

    def update_scheduled_time(self, queue: str, task_id: str, when: float) -> None:
        """Change a scheduled task's due time and ``scheduled_at``, nothing else."""
        when = finite(when, "when")
        with self._write([task_key(queue, task_id)]) as tx:
            scheduled = rows.entry(tx, State.SCHEDULED, queue, task_id)
            if scheduled is None or rows.data_row(tx, queue, task_id) is None:
                raise TaskNotFound(f"task {task_id} is not scheduled in queue {queue!r}")
            rows.set_score(tx, State.SCHEDULED, queue, task_id, when)
            tx.cur.execute(
                "UPDATE taskq_tasks SET scheduled_at = %s WHERE queue = %s AND id = %s",
                (when, queue, task_id),
            )

    def purge_errors(self, queue: str, older_than: float | None, limit: int | None) -> int:
        """Delete tasks in error that failed before ``older_than`` (exclusive),
        oldest first, up to ``limit``; one transaction per chunk of tasks."""
        if limit is not None and limit <= 0:
            raise ValueError(f"limit must be positive or None, not {limit!r}")
        deleted = 0
        while limit is None or deleted < limit:
            step = _PURGE_CHUNK if limit is None else min(_PURGE_CHUNK, limit - deleted)
            purged = self._purge_chunk(queue, older_than, step)
            deleted += purged
            if purged < step:
                break
        return deleted

    def _purge_chunk(self, queue: str, older_than: float | None, limit: int) -> int:
        with self._read() as cur:
            victims = [
                row[0]
                for row in cur.execute(
                    "SELECT id FROM taskq_entries WHERE queue = %s AND state = 'error' "
                    "AND score < coalesce(%s::float8, 'Infinity') ORDER BY score, seq LIMIT %s",
                    (queue, older_than, limit),
                ).fetchall()
            ]
        if not victims:
            return 0
        with self._write(task_key(queue, task_id) for task_id in victims) as tx:
            gone = tx.cur.execute(
                "DELETE FROM taskq_entries WHERE queue = %s AND state = 'error' "
                "AND id = ANY(%s::text[]) AND score < coalesce(%s::float8, 'Infinity') "
                "RETURNING id",
                (queue, victims, older_than),
            ).fetchall()
            ids = [row[0] for row in gone]
            tx.cur.execute(
                """WITH unused AS (
                    SELECT u.id FROM unnest(%(ids)s::text[]) AS u(id)
                    WHERE NOT EXISTS (SELECT FROM taskq_entries e
                                      WHERE e.queue = %(queue)s AND e.id = u.id)
                ), gone AS (
                    DELETE FROM taskq_tasks
                    WHERE queue = %(queue)s AND id IN (SELECT id FROM unused)
                )
                DELETE FROM taskq_executions
                WHERE queue = %(queue)s AND id IN (SELECT id FROM unused)""",
                {"queue": queue, "ids": ids},
            )
            return len(ids)
