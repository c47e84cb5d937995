"""The SQLite broker's inspection and repair (see
:mod:`taskq_core.broker.inspection`). Reads of several statements run in one
snapshot; each repair is one write transaction."""

from __future__ import annotations

import sqlite3

from taskq_core.broker import StoredTask
from taskq_core.brokers.sqlite import _rows as rows
from taskq_core.brokers.sqlite._codec import finite, read_meta, text
from taskq_core.brokers.sqlite._store import SQLiteStore
from taskq_core.exceptions import TaskNotFound
from taskq_core.states import STATES, State

__all__ = ["SQLiteInspection"]

_TASKS_OF_STATE = f"""
    SELECT e.id, e.score, t.rowid IS NOT NULL, {rows.DATA_COLUMNS_OF_T}
    FROM taskq_entries e LEFT JOIN taskq_tasks t ON t.queue = e.queue AND t.id = e.id
    WHERE e.queue = ? AND e.state = ?
"""


class SQLiteInspection(SQLiteStore):
    """The inspection and repair methods of
    :class:`~taskq_core.brokers.sqlite.SQLiteBroker`."""

    # -- inspection -------------------------------------------------------------------
    def queues(self, state: State) -> set[str]:
        """Queues with at least one task in ``state``."""
        with self._connections.using() as db:
            found = db.execute(
                "SELECT queue FROM taskq_counts WHERE state = ? AND n > 0", (State(state).value,)
            ).fetchall()
        return {text(row[0]) for row in found}

    def queue_sizes(self, queue: str) -> dict[State, int]:
        """Number of tasks of ``queue`` in each of the four states."""
        with self._connections.using() as db:
            found = db.execute(
                "SELECT state, n FROM taskq_counts WHERE queue = ?", (queue,)
            ).fetchall()
        counts = dict(found)
        return {state: int(counts.get(state.value, 0)) for state in STATES}

    def get_task(
        self, queue: str, state: State, task_id: str, load_executions: int = 0
    ) -> StoredTask:
        """The task in ``state``; ``TaskNotFound`` if absent or its data is missing."""
        state = State(state)
        with self._read() as db:
            found = db.execute(
                _TASKS_OF_STATE + " AND e.id = ?", (queue, state.value, task_id)
            ).fetchone()
            if found is None:
                raise TaskNotFound(f"task {task_id} is not {state} in queue {queue!r}")
            if not found[2]:
                raise TaskNotFound(f"the data of task {task_id} in queue {queue!r} is missing")
            return self._stored(db, queue, state, found, load_executions)

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
        with self._read() as db:
            total = db.execute(
                "SELECT coalesce(sum(n), 0) FROM taskq_counts WHERE queue = ? AND state = ?",
                (queue, state.value),
            ).fetchone()[0]
            window = db.execute(
                _TASKS_OF_STATE + " ORDER BY e.score, e.seq LIMIT ? OFFSET ?",
                (queue, state.value, max(limit, 0), max(skip, 0)),
            ).fetchall()
            tasks = [self._stored(db, queue, state, row, load_executions) for row in window]
        return int(total), tasks

    @staticmethod
    def _stored(
        db: sqlite3.Connection,
        queue: str,
        state: State,
        row: tuple[object, ...],
        load_executions: int,
    ) -> StoredTask:
        task_id, score, has_data, *data = row
        if not has_data:
            return rows.stored_task(queue, task_id, state, score, None)
        records = rows.load_executions(db, queue, text(task_id), max(load_executions, 0))
        return rows.stored_task(queue, task_id, state, score, tuple(data), records)

    def executions_count(self, queue: str, task_id: str) -> int:
        """Failed executions of a task; ``TaskNotFound`` if its data is missing
        (0 when the stored count is unreadable)."""
        with self._connections.using() as db:
            found = db.execute(
                f"SELECT {rows.DATA_COLUMNS} FROM taskq_tasks WHERE queue = ? AND id = ?",
                (queue, task_id),
            ).fetchone()
        if found is None:
            raise TaskNotFound(f"the data of task {task_id} in queue {queue!r} is missing")
        return read_meta(*found[1:]).executions_count

    # -- repair -------------------------------------------------------------------------
    def cancel(self, queue: str, task_id: str) -> None:
        """Remove a scheduled task; ``TaskNotFound`` if it is not scheduled."""
        with self._write() as tx:
            if not rows.remove(tx, State.SCHEDULED, queue, task_id):
                raise TaskNotFound(f"task {task_id} is not scheduled in queue {queue!r}")
            rows.forget_if_unused(tx, queue, task_id)

    def delete(self, queue: str, task_id: str) -> None:
        """Remove a task in error; ``TaskNotFound`` if it is not in error."""
        with self._write() as tx:
            if not rows.remove(tx, State.ERROR, queue, task_id):
                raise TaskNotFound(f"task {task_id} is not in error in queue {queue!r}")
            rows.forget_if_unused(tx, queue, task_id)

    def retry_from_error(self, queue: str, task_id: str) -> None:
        """Move a task from error to queued now, keeping its records."""
        with self._write() as tx:
            if rows.entry(tx, State.ERROR, queue, task_id) is None:
                raise TaskNotFound(f"task {task_id} is not in error in queue {queue!r}")
            if rows.data_row(tx, queue, task_id) is None:
                raise TaskNotFound(f"the data of task {task_id} in queue {queue!r} is missing")
            rows.remove(tx, State.ERROR, queue, task_id)
            if rows.pending_of(rows.copies(tx, queue, task_id)) is not None:
                return  # the pending copy will run; it already has the data
            rows.add(tx, State.QUEUED, queue, task_id, tx.now)

    def update_scheduled_time(self, queue: str, task_id: str, when: float) -> None:
        """Change a scheduled task's due time and ``scheduled_at``, nothing else."""
        when = finite(when, "when")
        with self._write() as tx:
            scheduled = rows.entry(tx, State.SCHEDULED, queue, task_id)
            if scheduled is None or rows.data_row(tx, queue, task_id) is None:
                raise TaskNotFound(f"task {task_id} is not scheduled in queue {queue!r}")
            rows.set_score(tx, State.SCHEDULED, queue, task_id, when)
            tx.db.execute(
                "UPDATE taskq_tasks SET scheduled_at = ? WHERE queue = ? AND id = ?",
                (when, queue, task_id),
            )

    def purge_errors(self, queue: str, older_than: float | None, limit: int | None) -> int:
        """Delete tasks in error that failed before ``older_than`` (exclusive);
        one whose failure time is unreadable only without ``older_than``."""
        if limit is not None and limit <= 0:
            raise ValueError(f"limit must be positive or None, not {limit!r}")
        bound = "" if older_than is None else " AND score < ?"
        params: tuple[object, ...] = (queue,) if older_than is None else (queue, older_than)
        with self._write() as tx:
            victims = tx.db.execute(
                "SELECT seq, id FROM taskq_entries WHERE queue = ? AND state = 'error'"
                + bound
                + " ORDER BY score, seq LIMIT ?",
                (*params, -1 if limit is None else limit),
            ).fetchall()
            tx.db.executemany("DELETE FROM taskq_entries WHERE seq = ?", [(v[0],) for v in victims])
            for _seq, task_id in victims:
                rows.forget_if_unused(tx, queue, task_id)
            return len(victims)
