"""The row helpers every section of the PostgreSQL broker builds on.

Each helper works inside one open transaction, a :class:`Tx`: its cursor,
its ``now`` (the server's ``clock_timestamp()``, read once, after the
transaction's advisory locks were granted) and the entries it dropped
(reported by ``take_dropped``). Each is one statement (one round trip).

A task copy is a row of ``taskq_entries`` (queue, id, state, score, seq,
owner); its payload and fields are one row of ``taskq_tasks``; its records
are rows of ``taskq_executions`` (see ``_schema``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from taskq_core.broker import DroppedTask, Execution, StoredTask
from taskq_core.states import State
from taskq_postgres._codec import decode_execution
from taskq_postgres._keys import ordered

__all__ = [
    "DATA_COLUMNS",
    "NOW",
    "Entry",
    "Tx",
    "add",
    "append_execution",
    "copies",
    "data_row",
    "delete_data",
    "entry",
    "forget_if_unused",
    "load_executions",
    "lock_and_clock",
    "pending_of",
    "remove",
    "reset_executions",
    "set_score",
    "stored_task",
]

#: the server's clock, in seconds since the epoch (``clock_timestamp()``: the
#: time of the call, not of the transaction's start as ``now()`` would be)
NOW = "extract(epoch FROM clock_timestamp())::float8"
#: the columns of ``taskq_tasks`` that :func:`stored_task` reads, in order
DATA_COLUMNS = "payload, priority, scheduled_at, time_last_queued, executions_count"

Cursor = psycopg.Cursor[TupleRow]


@dataclass
class Tx:
    """One open transaction."""

    cur: Cursor
    #: the server's now for every stamp of this transaction
    now: float
    #: entries dropped because their data was missing (reported by
    #: ``take_dropped`` once committed)
    dropped: list[DroppedTask] = field(default_factory=list)


@dataclass(frozen=True)
class Entry:
    """A task copy in one state."""

    seq: int
    score: float
    owner: str | None


def _lock_and_clock_sql(keys: Iterable[int]) -> str:
    # the keys are integers, written into the statement so that it needs no
    # parameters (and can follow BEGIN in one round trip)
    array = ",".join(str(int(key)) for key in ordered(keys))
    return (
        f"SELECT CASE WHEN count(pg_advisory_xact_lock(k)) >= 0 THEN {NOW} END "
        f"FROM unnest('{{{array}}}'::bigint[]) AS k"
    )


def lock_and_clock(cur: Cursor, keys: Iterable[int], *, begin: bool = False) -> float:
    """Take the advisory locks of ``keys`` (in ascending order, waiting for
    each), then read the server's clock: the transaction's ``now``, later
    than any move that held one of these locks before. ``begin``: open the
    transaction in the same round trip."""
    statement = _lock_and_clock_sql(keys)
    if begin:
        cur.execute(f"BEGIN; {statement}")
        cur.nextset()  # the second statement's result
    else:
        cur.execute(statement)
    row = cur.fetchone()
    assert row is not None
    now: float = row[0]
    return now


# -- entries -----------------------------------------------------------------------------
def entry(tx: Tx, state: State, queue: str, task_id: str) -> Entry | None:
    row = tx.cur.execute(
        "SELECT seq, score, owner FROM taskq_entries WHERE queue = %s AND id = %s AND state = %s",
        (queue, task_id, state.value),
    ).fetchone()
    return None if row is None else Entry(row[0], row[1], row[2])


def copies(tx: Tx, queue: str, task_id: str) -> dict[State, Entry]:
    """Every copy of a task, by state."""
    rows = tx.cur.execute(
        "SELECT state, seq, score, owner FROM taskq_entries WHERE queue = %s AND id = %s",
        (queue, task_id),
    ).fetchall()
    return {State(row[0]): Entry(row[1], row[2], row[3]) for row in rows}


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
    order), 0 when the task's data is missing."""
    tx.cur.execute(
        "INSERT INTO taskq_entries (queue, id, state, score, owner, priority) VALUES "
        "(%s, %s, %s, %s, %s, coalesce((SELECT priority FROM taskq_tasks "
        "WHERE queue = %s AND id = %s), 0))",
        (queue, task_id, state.value, score, owner, queue, task_id),
    )


def set_score(tx: Tx, state: State, queue: str, task_id: str, score: float) -> None:
    """Change the score of a copy, keeping its place among equal scores."""
    tx.cur.execute(
        "UPDATE taskq_entries SET score = %s WHERE queue = %s AND id = %s AND state = %s",
        (score, queue, task_id, state.value),
    )


def remove(tx: Tx, state: State, queue: str, task_id: str) -> bool:
    """Delete a copy; whether there was one."""
    row = tx.cur.execute(
        "DELETE FROM taskq_entries WHERE queue = %s AND id = %s AND state = %s RETURNING seq",
        (queue, task_id, state.value),
    ).fetchone()
    return row is not None


# -- data and records ----------------------------------------------------------------------
def data_row(tx: Tx, queue: str, task_id: str) -> tuple[Any, ...] | None:
    """The task's :data:`DATA_COLUMNS`, or ``None`` when its data is missing."""
    row: tuple[Any, ...] | None = tx.cur.execute(
        f"SELECT {DATA_COLUMNS} FROM taskq_tasks WHERE queue = %s AND id = %s",
        (queue, task_id),
    ).fetchone()
    return row


def delete_data(tx: Tx, queue: str, task_id: str) -> None:
    tx.cur.execute(
        "WITH gone AS (DELETE FROM taskq_tasks WHERE queue = %s AND id = %s) "
        "DELETE FROM taskq_executions WHERE queue = %s AND id = %s",
        (queue, task_id, queue, task_id),
    )


def forget_if_unused(tx: Tx, queue: str, task_id: str) -> None:
    """Delete the data of a task that no state refers to any more."""
    params = {"queue": queue, "id": task_id}
    unused = "NOT EXISTS (SELECT FROM taskq_entries WHERE queue = %(queue)s AND id = %(id)s)"
    tx.cur.execute(
        "WITH gone AS (DELETE FROM taskq_tasks WHERE queue = %(queue)s AND id = %(id)s "
        f"AND {unused}) DELETE FROM taskq_executions "
        f"WHERE queue = %(queue)s AND id = %(id)s AND {unused}",
        params,
    )


def append_execution(
    tx: Tx, queue: str, task_id: str, record: bytes, max_stored: int | None
) -> None:
    """Append an encoded record, add one to the count and drop the oldest
    records beyond ``max_stored`` (0 or ``None``: keep all), in one statement."""
    tx.cur.execute(
        """WITH last AS (
            SELECT coalesce(max(n), 0) + 1 AS n FROM taskq_executions
            WHERE queue = %(queue)s AND id = %(id)s
        ), added AS (
            INSERT INTO taskq_executions (queue, id, n, record)
            SELECT %(queue)s, %(id)s, last.n, %(record)s FROM last
        ), counted AS (
            UPDATE taskq_tasks SET executions_count = executions_count + 1
            WHERE queue = %(queue)s AND id = %(id)s
        )
        DELETE FROM taskq_executions
        WHERE queue = %(queue)s AND id = %(id)s AND n <= (SELECT n FROM last) - %(keep)s""",
        {"queue": queue, "id": task_id, "record": record, "keep": max_stored or None},
    )


def reset_executions(tx: Tx, queue: str, task_id: str) -> None:
    """Forget the records of earlier failures (a successful run)."""
    tx.cur.execute(
        "WITH gone AS (DELETE FROM taskq_executions WHERE queue = %s AND id = %s) "
        "UPDATE taskq_tasks SET executions_count = 0 WHERE queue = %s AND id = %s",
        (queue, task_id, queue, task_id),
    )


def load_executions(cur: Cursor, queue: str, task_id: str, n: int) -> list[Execution]:
    """The newest ``n`` records (``n < 0``: all), oldest first."""
    if n == 0:
        return []
    rows = cur.execute(
        "SELECT record FROM taskq_executions WHERE queue = %s AND id = %s ORDER BY n DESC LIMIT %s",
        (queue, task_id, n if n > 0 else None),
    ).fetchall()
    return [decode_execution(row[0]) for row in reversed(rows)]


# -- reading a task --------------------------------------------------------------------------
def stored_task(
    queue: str,
    task_id: str,
    state: State,
    score: float,
    data: Sequence[Any] | None,
    executions: list[Execution] | None = None,
) -> StoredTask:
    """A :class:`StoredTask` from an entry's score and the task's
    :data:`DATA_COLUMNS` (``None``: its data is missing)."""
    if data is None:
        return StoredTask(task_id, queue, state, b"", score, missing=True)
    payload, priority, scheduled_at, time_last_queued, count = data
    return StoredTask(
        id=task_id,
        queue=queue,
        state=state,
        payload=bytes(payload),
        ts=score,
        priority=priority,
        scheduled_at=scheduled_at,
        time_last_queued=time_last_queued,
        executions_count=count,
        executions=executions or [],
    )
