"""The SQLite broker's recovery of runs whose worker was lost, and due
scheduled tasks (see :mod:`taskq_core.broker.moves`). Each public method is
one write transaction (``expired_tasks`` one read)."""

from __future__ import annotations

from taskq_core.broker import DroppedTask, Execution, FinishOutcome, FinishRequest
from taskq_core.brokers.sqlite import _rows as rows
from taskq_core.brokers.sqlite._codec import meta_problem, number, text
from taskq_core.brokers.sqlite._ending import checked_end, end_run, expired
from taskq_core.brokers.sqlite._store import SQLiteStore
from taskq_core.states import State

__all__ = ["SQLiteRecovery"]

#: scheduled entries due by now, earliest first; then those whose due time is
#: not a number (text sorts after every number: ``score >= ''``)
_DUE_COLUMNS = """
    SELECT e.seq, e.id, e.score, t.priority, t.scheduled_at, t.time_last_queued,
        t.executions_count, t.rowid IS NOT NULL,
        EXISTS (SELECT 1 FROM taskq_entries q
                WHERE q.queue = e.queue AND q.state = 'queued' AND q.id = e.id)
    FROM taskq_entries e LEFT JOIN taskq_tasks t ON t.queue = e.queue AND t.id = e.id
    WHERE e.queue = ? AND e.state = 'scheduled'
"""
_DUE = _DUE_COLUMNS + " AND e.score <= ? ORDER BY e.score, e.seq LIMIT ?"
_DUE_UNREADABLE = _DUE_COLUMNS + " AND e.score >= '' ORDER BY e.score, e.seq LIMIT ?"


class SQLiteRecovery(SQLiteStore):
    """The recovery and due-task moves of
    :class:`~taskq_core.brokers.sqlite.SQLiteBroker`."""

    # -- recovery ---------------------------------------------------------------
    def expired_tasks(self, older_than: float, limit: int) -> list[tuple[str, str]]:
        """Active tasks whose last heartbeat is before ``older_than`` (or not
        a number), oldest first."""
        if limit <= 0:
            return []
        with self._connections.using() as db:
            found = db.execute(
                "SELECT queue, id FROM taskq_entries WHERE state = 'active' "
                "AND (score < ? OR score >= '') ORDER BY score, seq LIMIT ?",
                (older_than, limit),
            ).fetchall()
        return [(text(queue), text(task_id)) for queue, task_id in found]

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
        request = FinishRequest(task_id, outcome, when, execution, max_stored_executions)
        record = checked_end(request)
        with self._write() as tx:
            if not expired(tx, queue, task_id, older_than):
                return False
            end_run(tx, queue, task_id, request, record)
            return True

    def drop_expired_missing(self, queue: str, task_id: str, older_than: float) -> bool:
        """Remove an expired active id whose data is missing, in one transaction."""
        with self._write() as tx:
            if not expired(tx, queue, task_id, older_than):
                return False
            if rows.data_row(tx, queue, task_id) is not None:
                return False
            rows.remove(tx, State.ACTIVE, queue, task_id)
            return True

    # -- due tasks ----------------------------------------------------------------
    def move_due(self, queue: str, limit: int) -> int:
        """Move scheduled tasks due by now to ``queued``, keeping due-time order;
        a due task whose data is unreadable goes to ``error`` instead."""
        if limit <= 0:
            return 0
        with self._write() as tx:
            due = tx.db.execute(_DUE, (queue, tx.now, limit)).fetchall()
            if len(due) < limit:
                due += tx.db.execute(_DUE_UNREADABLE, (queue, limit - len(due))).fetchall()
            moved = 0
            for seq, raw_id, score, *data, has_data, queued in due:
                task_id = text(raw_id)
                tx.db.execute("DELETE FROM taskq_entries WHERE seq = ?", (seq,))
                if queued:
                    continue
                due_at = number(score)
                if due_at is None and not has_data:
                    tx.dropped.append(
                        DroppedTask(queue, task_id, State.SCHEDULED, "its data is missing")
                    )
                    continue
                problem = meta_problem(*data) if has_data else None
                if due_at is None:
                    problem = f"the task's due time is not a number: {score!r:.40}"
                if problem is not None:
                    message = problem if due_at is None else f"the task's metadata {problem}"
                    rows.fail_unreadable(tx, queue, task_id, State.SCHEDULED, message)
                    continue
                assert due_at is not None
                rows.add(tx, State.QUEUED, queue, task_id, due_at)
                moved += 1
            return moved
