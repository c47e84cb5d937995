"""The end of a run, shared by a worker's ``finish`` and the recovery of a
lost run: checking its arguments, and the one decision tree of where the task
goes (see :meth:`Broker.finish <taskq_core.broker.Broker.finish>`), inside the
caller's write transaction."""

from __future__ import annotations

from taskq_core.broker import FinishRequest
from taskq_core.brokers.sqlite import _rows as rows
from taskq_core.brokers.sqlite._codec import encode_execution, meta_problem
from taskq_core.brokers.sqlite._rows import Tx
from taskq_core.states import State

__all__ = ["checked_end", "end_run", "expired"]


def checked_end(request: FinishRequest) -> bytes | None:
    """Check a run's end before anything is written; its encoded record."""
    request.check()
    return None if request.execution is None else encode_execution(request.execution)


def expired(tx: Tx, queue: str, task_id: str, older_than: float) -> bool:
    """Whether the active copy's heartbeat is before ``older_than`` (or unreadable)."""
    active = rows.entry(tx, State.ACTIVE, queue, task_id)
    if active is None:
        return False
    heartbeat = active.ts
    return heartbeat is None or heartbeat < older_than


def end_run(tx: Tx, queue: str, task_id: str, request: FinishRequest, record: bytes | None) -> None:
    """End an active run (see :meth:`Broker.finish`); the caller has checked
    that it may. ``record`` is the encoded execution record, if any."""
    outcome, when = request.outcome, request.when
    rows.remove(tx, State.ACTIVE, queue, task_id)
    data = rows.data_row(tx, queue, task_id)
    problem = None if data is None else meta_problem(*data[1:])
    if record is not None and data is not None:
        count = data[4]
        rows.append_execution(
            tx,
            queue,
            task_id,
            record,
            request.max_stored_executions,
            count_it=type(count) is int and count >= 0,
        )
    if problem is not None and outcome != "done":
        # its fields cannot be trusted to make it pending again: to error,
        # with the run's record and one saying why
        message = f"the task's metadata {problem}"
        rows.fail_unreadable(tx, queue, task_id, State.ACTIVE, message)
        return
    found = rows.copies(tx, queue, task_id)
    pending = rows.pending_of(found)
    in_error = State.ERROR in found
    if outcome == "done":
        if pending is None and not in_error:
            rows.delete_data(tx, queue, task_id)
        elif not in_error and data is not None:
            # a successful run clears the records of earlier failures
            rows.reset_executions(tx, queue, task_id)
        return
    if outcome == "error":
        if in_error:
            rows.set_score(tx, State.ERROR, queue, task_id, tx.now)
        else:
            rows.add(tx, State.ERROR, queue, task_id, tx.now)
        return
    if outcome == "retry":
        target, due = State.SCHEDULED, (tx.now if when is None else float(when))
    elif when is None or when <= tx.now:
        target, due = State.QUEUED, tx.now
    else:
        target, due = State.SCHEDULED, float(when)
    if pending is not None:
        # the pending twin absorbs this copy: one pending copy, earliest time
        current = found[pending].ts
        if current is None or due < current:
            rows.set_score(tx, pending, queue, task_id, due)
        return
    rows.add(tx, target, queue, task_id, due)
