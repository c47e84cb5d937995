"""The end of a run, shared by a worker's ``finish`` and the recovery of a
lost run: checking its arguments, and the one decision tree of where the task
goes (see :meth:`Broker.finish <taskq_core.broker.Broker.finish>`), inside the
caller's transaction, which holds the task's lock.

:func:`end_run` takes the active copy out and reads what the decision needs
(is the data there, the pending copy and its score, an error copy) in one
statement; the writes that follow need no answer, so they travel with the
commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from taskq_core.broker import FinishRequest
from taskq_core.states import State
from taskq_postgres import _rows as rows
from taskq_postgres._codec import encode_execution
from taskq_postgres._rows import Tx

__all__ = ["checked_end", "end_run"]

#: take the active copy out (if it passes the condition) and read the rest
_END = """
    WITH gone AS (
        DELETE FROM taskq_entries
        WHERE queue = %(queue)s AND id = %(id)s AND state = 'active' AND {condition}
        RETURNING seq
    ), pending AS (
        SELECT state, score FROM taskq_entries
        WHERE queue = %(queue)s AND id = %(id)s AND state IN ('queued', 'scheduled')
        ORDER BY state = 'queued' DESC LIMIT 1
    )
    SELECT EXISTS (SELECT FROM gone),
        EXISTS (SELECT FROM taskq_tasks WHERE queue = %(queue)s AND id = %(id)s),
        (SELECT state FROM pending), (SELECT score FROM pending),
        EXISTS (SELECT FROM taskq_entries
                WHERE queue = %(queue)s AND id = %(id)s AND state = 'error')
"""
#: the run is this worker's
OWNED = "owner = %(owner)s"
#: the run's heartbeat is older than the bound
EXPIRED = "score < %(older_than)s"


@dataclass(frozen=True)
class _Found:
    """What :data:`_END` found."""

    ended: bool
    has_data: bool
    pending: State | None
    pending_score: float | None
    in_error: bool


def checked_end(request: FinishRequest) -> bytes | None:
    """Check a run's end before anything is written; its encoded record."""
    request.check()
    return None if request.execution is None else encode_execution(request.execution)


def _take_active(tx: Tx, queue: str, task_id: str, condition: str, **bound: object) -> _Found:
    row = tx.cur.execute(
        _END.format(condition=condition), {"queue": queue, "id": task_id, **bound}
    ).fetchone()
    assert row is not None
    ended, has_data, pending, score, in_error = row
    return _Found(ended, has_data, None if pending is None else State(pending), score, in_error)


def end_run(
    tx: Tx,
    queue: str,
    task_id: str,
    request: FinishRequest,
    record: bytes | None,
    condition: str,
    **bound: object,
) -> bool:
    """End the active run of a task if its copy passes ``condition`` (:data:`OWNED`
    or :data:`EXPIRED`, with ``bound`` values); whether it did. ``record`` is
    the encoded execution record, if any."""
    found = _take_active(tx, queue, task_id, condition, **bound)
    if not found.ended:
        return False
    outcome, when = request.outcome, request.when
    if record is not None and found.has_data:
        rows.append_execution(tx, queue, task_id, record, request.max_stored_executions)
    pending = found.pending
    if outcome == "done":
        if pending is None and not found.in_error:
            rows.delete_data(tx, queue, task_id)
        elif not found.in_error and found.has_data:
            # a successful run clears the records of earlier failures
            rows.reset_executions(tx, queue, task_id)
        return True
    if outcome == "error":
        if found.in_error:
            rows.set_score(tx, State.ERROR, queue, task_id, tx.now)
        else:
            rows.add(tx, State.ERROR, queue, task_id, tx.now)
        return True
    if outcome == "retry":
        target, due = State.SCHEDULED, (tx.now if when is None else float(when))
    elif when is None or when <= tx.now:
        target, due = State.QUEUED, tx.now
    else:
        target, due = State.SCHEDULED, float(when)
    if pending is not None:
        # the pending twin absorbs this copy: one pending copy, earliest time
        if found.pending_score is None or due < found.pending_score:
            rows.set_score(tx, pending, queue, task_id, due)
        return True
    rows.add(tx, target, queue, task_id, due)
    return True
