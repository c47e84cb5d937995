"""The PostgreSQL broker's recovery of runs whose worker was lost, and due
scheduled tasks (see :mod:`taskq_core.broker.moves`). Each public method is
one transaction (``expired_tasks`` one read); like a pop, ``move_due`` takes
its entries with ``FOR UPDATE SKIP LOCKED`` and leaves a task whose lock
another move holds for the next pass."""

from __future__ import annotations

from taskq_core.broker import Execution, FinishOutcome, FinishRequest
from taskq_postgres._ending import EXPIRED, checked_end, end_run
from taskq_postgres._keys import task_key
from taskq_postgres._rows import NOW
from taskq_postgres._store import PostgresStore

__all__ = ["PostgresRecovery"]

#: scheduled entries due by now, earliest first; rows another move holds are skipped
_DUE = f"""
    SELECT seq, id FROM taskq_entries
    WHERE queue = %s AND state = 'scheduled' AND score <= {NOW}
    ORDER BY score, seq
    LIMIT %s
    FOR UPDATE SKIP LOCKED
"""
#: try the lock of each task
_TRY_LOCKS = """
    SELECT array_agg(pg_try_advisory_xact_lock(k) ORDER BY o)
    FROM unnest(%s::bigint[]) WITH ORDINALITY AS u(k, o)
"""
#: take the chosen entries out of scheduled and queue those without a queued
#: twin, keeping their due time (the score) and due-time order
_MOVE = """
    WITH taken AS (
        DELETE FROM taskq_entries WHERE seq = ANY(%(seqs)s::bigint[]) AND state = 'scheduled'
        RETURNING seq, id, score, priority
    ), moved AS (
        INSERT INTO taskq_entries (queue, id, state, score, priority)
        SELECT %(queue)s, taken.id, 'queued', taken.score,
            coalesce((SELECT t.priority FROM taskq_tasks t
                      WHERE t.queue = %(queue)s AND t.id = taken.id), 0)
        FROM taken
        WHERE NOT EXISTS (SELECT FROM taskq_entries q
                          WHERE q.queue = %(queue)s AND q.id = taken.id AND q.state = 'queued')
        ORDER BY taken.score, taken.seq
        RETURNING 1
    )
    SELECT count(*) FROM moved
"""


class PostgresRecovery(PostgresStore):
    """The recovery and due-task moves of :class:`~taskq_postgres.PostgresBroker`."""

    # -- recovery ---------------------------------------------------------------
    def expired_tasks(self, older_than: float, limit: int) -> list[tuple[str, str]]:
        """Active tasks whose last heartbeat is before ``older_than``, oldest first."""
        if limit <= 0:
            return []
        with self._read() as cur:
            found = cur.execute(
                "SELECT queue, id FROM taskq_entries WHERE state = 'active' AND score < %s "
                "ORDER BY score, seq LIMIT %s",
                (older_than, limit),
            ).fetchall()
        return [(queue, task_id) for queue, task_id in found]

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
        with self._write([task_key(queue, task_id)]) as tx:
            return end_run(tx, queue, task_id, request, record, EXPIRED, older_than=older_than)

    def drop_expired_missing(self, queue: str, task_id: str, older_than: float) -> bool:
        """Remove an expired active id whose data is missing, in one transaction."""
        with self._write([task_key(queue, task_id)]) as tx:
            row = tx.cur.execute(
                "DELETE FROM taskq_entries WHERE queue = %(queue)s AND id = %(id)s "
                "AND state = 'active' AND score < %(older_than)s AND NOT EXISTS "
                "(SELECT FROM taskq_tasks WHERE queue = %(queue)s AND id = %(id)s) RETURNING seq",
                {"queue": queue, "id": task_id, "older_than": older_than},
            ).fetchone()
            return row is not None

    # -- due tasks ----------------------------------------------------------------
    def move_due(self, queue: str, limit: int) -> int:
        """Move scheduled tasks due by the server's now to ``queued``, keeping
        due-time order (a task with a queued twin just loses its scheduled
        copy); the triggers wake the workers."""
        if limit <= 0:
            return 0
        with self._write() as tx:
            head = tx.cur.execute(_DUE, (queue, limit)).fetchall()
            if not head:
                return 0
            granted = tx.cur.execute(
                _TRY_LOCKS, ([task_key(queue, task_id) for _seq, task_id in head],)
            ).fetchone()
            assert granted is not None
            mine = [seq for (seq, _id), ok in zip(head, granted[0], strict=True) if ok]
            if not mine:
                return 0
            moved = tx.cur.execute(_MOVE, {"seqs": mine, "queue": queue}).fetchone()
            return 0 if moved is None else int(moved[0])
