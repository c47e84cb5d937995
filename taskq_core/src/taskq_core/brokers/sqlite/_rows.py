"""The row helpers every section of the SQLite broker builds on.

Each helper works inside one open write transaction, a :class:`Tx`: the
connection, the transaction's ``now`` (the broker's clock, read once the
write lock is held), the queues it queued tasks in (announced when it
commits) and the entries it dropped (reported by ``take_dropped``).

A task copy is a row of ``taskq_entries`` (queue, id, state, score, seq,
owner); its payload and fields are one row of ``taskq_tasks``; its records
are rows of ``taskq_executions`` (see ``_schema``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from taskq_core.broker import DroppedTask, Execution, StoredTask
from taskq_core.brokers.sqlite._codec import (
    decode_execution,
    encode_execution,
    number,
    read_meta,
    text,
    unreadable_record,
)
from taskq_core.states import STATES, State

__all__ = [
    "DATA_COLUMNS",
    "DATA_COLUMNS_OF_T",
    "Entry",
    "Tx",
    "activity_since",
    "add",
    "announce",
    "append_execution",
    "copies",
    "data_row",
    "delete_data",
    "entry",
    "fail_unreadable",
    "flush_announcements",
    "forget_if_unused",
    "latest_activity",
    "load_executions",
    "pending_of",
    "remove",
    "reset_executions",
    "set_score",
    "stored_task",
]

#: the columns of ``taskq_tasks`` that :func:`stored_task` reads, in order
DATA_COLUMNS = "payload, priority, scheduled_at, time_last_queued, executions_count"
#: the states an entry may be in (an entry with another is ignored)
_STATE_VALUES = frozenset(state.value for state in STATES)
#: :data:`DATA_COLUMNS` of the ``taskq_tasks`` row joined as ``t``
DATA_COLUMNS_OF_T = ", ".join(f"t.{column}" for column in DATA_COLUMNS.split(", "))


@dataclass
class Tx:
    """One open write transaction."""

    db: sqlite3.Connection
    #: the broker's now for every stamp of this transaction
    now: float
    #: queues that got ``queued`` work (announced at commit)
    announced: set[str] = field(default_factory=set)
    #: entries dropped or moved to error because their data was missing or
    #: unreadable (reported by ``take_dropped`` once committed)
    dropped: list[DroppedTask] = field(default_factory=list)


@dataclass(frozen=True)
class Entry:
    """A task copy in one state."""

    seq: int
    #: the stored score (maybe not a number, if damaged)
    score: Any
    owner: str | None

    @property
    def ts(self) -> float | None:
        """The score as a number, ``None`` when it is unreadable."""
        return number(self.score)


# -- entries -----------------------------------------------------------------------------
def entry(tx: Tx, state: State, queue: str, task_id: str) -> Entry | None:
    row = tx.db.execute(
        "SELECT seq, score, owner FROM taskq_entries WHERE queue = ? AND state = ? AND id = ?",
        (queue, state.value, task_id),
    ).fetchone()
    return None if row is None else Entry(row[0], row[1], row[2])


def copies(tx: Tx, queue: str, task_id: str) -> dict[State, Entry]:
    """Every copy of a task, by state."""
    rows = tx.db.execute(
        "SELECT state, seq, score, owner FROM taskq_entries WHERE queue = ? AND id = ?",
        (queue, task_id),
    ).fetchall()
    return {State(row[0]): Entry(row[1], row[2], row[3]) for row in rows if row[0] in _STATE_VALUES}


def pending_of(found: dict[State, Entry]) -> State | None:
    """The pending state among a task's copies, if any."""
    for state in (State.QUEUED, State.SCHEDULED):
        if state in found:
            return state
    return None


def add(
    tx: Tx, state: State, queue: str, task_id: str, score: float, owner: str | None = None
) -> None:
    """Store a new copy in ``state``; its priority is the task's (for the pop
    order), 0 when the task's data is missing or unreadable."""
    tx.db.execute(
        "INSERT INTO taskq_entries (queue, id, state, score, owner, priority) VALUES "
        "(?, ?, ?, ?, ?, coalesce((SELECT CASE typeof(priority) WHEN 'integer' THEN priority "
        "ELSE 0 END FROM taskq_tasks WHERE queue = ? AND id = ?), 0))",
        (queue, task_id, state.value, score, owner, queue, task_id),
    )
    if state is State.QUEUED:
        announce(tx, queue)


def set_score(tx: Tx, state: State, queue: str, task_id: str, score: float) -> None:
    """Change the score of a copy, keeping its place among equal scores."""
    tx.db.execute(
        "UPDATE taskq_entries SET score = ? WHERE queue = ? AND state = ? AND id = ?",
        (score, queue, state.value, task_id),
    )
    if state is State.QUEUED:
        announce(tx, queue)


def remove(tx: Tx, state: State, queue: str, task_id: str) -> bool:
    """Delete a copy; whether there was one."""
    cursor = tx.db.execute(
        "DELETE FROM taskq_entries WHERE queue = ? AND state = ? AND id = ?",
        (queue, state.value, task_id),
    )
    return cursor.rowcount > 0


def announce(tx: Tx, queue: str) -> None:
    tx.announced.add(queue)


def flush_announcements(tx: Tx) -> None:
    """Give every queue announced in this transaction a new activity number."""
    for queue in sorted(tx.announced):
        tx.db.execute(
            "INSERT INTO taskq_activity (queue, seq) VALUES "
            "(?, (SELECT coalesce(max(seq), 0) + 1 FROM taskq_activity)) "
            "ON CONFLICT (queue) DO UPDATE SET seq = excluded.seq",
            (queue,),
        )


def latest_activity(db: sqlite3.Connection) -> int:
    """The number of the last announcement (0: none yet)."""
    value: int = db.execute("SELECT coalesce(max(seq), 0) FROM taskq_activity").fetchone()[0]
    return value


def activity_since(db: sqlite3.Connection, seen: int) -> list[tuple[str, int]]:
    """``(queue, number)`` of the queues announced after number ``seen``."""
    found = db.execute("SELECT queue, seq FROM taskq_activity WHERE seq > ?", (seen,)).fetchall()
    return [(text(queue), int(seq)) for queue, seq in found]


# -- data and records ----------------------------------------------------------------------
def data_row(tx: Tx, queue: str, task_id: str) -> tuple[Any, ...] | None:
    """The task's :data:`DATA_COLUMNS`, or ``None`` when its data is missing."""
    row: tuple[Any, ...] | None = tx.db.execute(
        f"SELECT {DATA_COLUMNS} FROM taskq_tasks WHERE queue = ? AND id = ?",
        (queue, task_id),
    ).fetchone()
    return row


def delete_data(tx: Tx, queue: str, task_id: str) -> None:
    tx.db.execute("DELETE FROM taskq_tasks WHERE queue = ? AND id = ?", (queue, task_id))
    tx.db.execute("DELETE FROM taskq_executions WHERE queue = ? AND id = ?", (queue, task_id))


def forget_if_unused(tx: Tx, queue: str, task_id: str) -> None:
    """Delete the data of a task that no state refers to any more."""
    used = tx.db.execute(
        "SELECT 1 FROM taskq_entries WHERE queue = ? AND id = ? LIMIT 1", (queue, task_id)
    ).fetchone()
    if used is None:
        delete_data(tx, queue, task_id)


def append_execution(
    tx: Tx,
    queue: str,
    task_id: str,
    record: bytes,
    max_stored: int | None,
    *,
    count_it: bool = True,
) -> None:
    """Append an encoded record; drop the oldest beyond ``max_stored`` (0 or
    ``None``: keep all); add one to the count unless told not to (it is
    unreadable)."""
    last = tx.db.execute(
        "SELECT coalesce(max(n), 0) FROM taskq_executions WHERE queue = ? AND id = ?",
        (queue, task_id),
    ).fetchone()[0]
    number_ = int(last) + 1
    tx.db.execute(
        "INSERT INTO taskq_executions (queue, id, n, record) VALUES (?, ?, ?, ?)",
        (queue, task_id, number_, record),
    )
    if count_it:
        tx.db.execute(
            "UPDATE taskq_tasks SET executions_count = executions_count + 1 "
            "WHERE queue = ? AND id = ?",
            (queue, task_id),
        )
    if max_stored:
        tx.db.execute(
            "DELETE FROM taskq_executions WHERE queue = ? AND id = ? AND n <= ?",
            (queue, task_id, number_ - max_stored),
        )


def reset_executions(tx: Tx, queue: str, task_id: str) -> None:
    """Forget the records of earlier failures (a successful run)."""
    tx.db.execute("DELETE FROM taskq_executions WHERE queue = ? AND id = ?", (queue, task_id))
    tx.db.execute(
        "UPDATE taskq_tasks SET executions_count = 0 WHERE queue = ? AND id = ?",
        (queue, task_id),
    )


def load_executions(db: sqlite3.Connection, queue: str, task_id: str, n: int) -> list[Execution]:
    """The newest ``n`` records (``n < 0``: all), oldest first."""
    if n == 0:
        return []
    rows = db.execute(
        "SELECT record FROM taskq_executions WHERE queue = ? AND id = ? ORDER BY n DESC LIMIT ?",
        (queue, task_id, n if n > 0 else -1),
    ).fetchall()
    return [decode_execution(row[0]) for row in reversed(rows)]


def fail_unreadable(tx: Tx, queue: str, task_id: str, state: State, message: str) -> None:
    """Move a task whose stored data cannot be read to ``error``, with a
    record saying ``message``; the caller has taken it out of ``state``. The
    fields that were unreadable are reset (the task is readable again, in
    error), and the entry is reported by ``take_dropped``."""
    row = data_row(tx, queue, task_id)
    if row is not None:
        meta = read_meta(*row[1:])
        count = row[4]
        if type(count) is not int or count < 0:
            count = tx.db.execute(
                "SELECT count(*) FROM taskq_executions WHERE queue = ? AND id = ?",
                (queue, task_id),
            ).fetchone()[0]
        tx.db.execute(
            "UPDATE taskq_tasks SET priority = ?, scheduled_at = ?, time_last_queued = ?, "
            "executions_count = ? WHERE queue = ? AND id = ?",
            (meta.priority, meta.scheduled_at, meta.time_last_queued, count, queue, task_id),
        )
        record = encode_execution(unreadable_record(message, tx.now))
        append_execution(tx, queue, task_id, record, None)
    if entry(tx, State.ERROR, queue, task_id) is not None:
        set_score(tx, State.ERROR, queue, task_id, tx.now)
    else:
        add(tx, State.ERROR, queue, task_id, tx.now)
    tx.dropped.append(DroppedTask(queue, task_id, state, message, moved_to_error=True))


# -- reading a task --------------------------------------------------------------------------
def stored_task(
    queue: str,
    task_id: Any,
    state: State,
    score: Any,
    data: tuple[Any, ...] | None,
    executions: list[Execution] | None = None,
) -> StoredTask:
    """A :class:`StoredTask` from an entry's score and the task's
    :data:`DATA_COLUMNS` (``None``: its data is missing)."""
    ts = number(score)
    if data is None:
        return StoredTask(text(task_id), queue, state, b"", ts or 0.0, missing=True)
    payload, *fields = data
    meta = read_meta(*fields)
    problem = meta.problem
    if ts is None:
        problem = f"the task's score in {state.value} is not a number: {score!r:.40}"
    return StoredTask(
        id=text(task_id),
        queue=queue,
        state=state,
        payload=payload if isinstance(payload, bytes) else text(payload).encode(),
        ts=ts or 0.0,
        priority=meta.priority,
        scheduled_at=meta.scheduled_at,
        time_last_queued=meta.time_last_queued,
        executions_count=meta.executions_count,
        executions=executions or [],
        meta_error=problem,
    )
