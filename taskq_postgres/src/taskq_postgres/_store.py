"""The state shared by the sections of the PostgreSQL broker: its connections,
its listener, the schema check, and the transactions every method runs in.

:meth:`PostgresStore._write` is one transaction: with its ``BEGIN`` it
takes the advisory locks of the tasks and queues it moves, in ascending
order, then reads the server's clock once (``clock_timestamp()``), so the
stamps of two moves on one task follow the order in which they committed.
Any exception rolls the whole move back.
:meth:`PostgresStore._snapshot` is a ``REPEATABLE READ READ ONLY``
transaction: one consistent view for reads of several statements.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

from taskq_core.broker import DroppedTask
from taskq_postgres._connection import Connections
from taskq_postgres._listener import Listener
from taskq_postgres._rows import Cursor, Tx, lock_and_clock
from taskq_postgres._schema import MIGRATIONS, Migrations, ensure_schema

__all__ = ["PostgresStore"]

#: dropped entries kept for take_dropped()
_DROPPED_KEPT = 10_000


def _rollback(conn: psycopg.Connection[TupleRow]) -> None:
    """End the connection's open transaction, if any, without its changes (a
    connection that cannot is broken: the pool discards it)."""
    if conn.broken or conn.info.transaction_status == TransactionStatus.IDLE:
        return
    try:
        conn.execute("ROLLBACK")
    except psycopg.Error:
        pass


class PostgresStore:
    """Connections, transactions, the listener and the in-process state of
    :class:`~taskq_postgres.PostgresBroker`: what it dropped (until
    ``take_dropped``) and whether the schema was checked."""

    #: the schema steps this broker knows (tests give a longer list)
    _migrations: Migrations = MIGRATIONS

    def __init__(
        self,
        conninfo: str,
        *,
        pool_min_size: int,
        pool_max_size: int,
        pool_timeout: float,
        connect_options: Mapping[str, Any],
    ) -> None:
        self._connections = Connections(
            conninfo,
            min_size=pool_min_size,
            max_size=pool_max_size,
            timeout=pool_timeout,
            options=connect_options,
        )
        self._listener = Listener(self._connections.connect, self._connections.where)
        self._schema_ready = False
        #: ``(dbname, port)`` of the broker's database, once connected
        self._database: tuple[str, int] | None = None
        self._dropped: deque[DroppedTask] = deque(maxlen=_DROPPED_KEPT)
        self._dropped_lock = threading.Lock()

    @property
    def where(self) -> str:
        """The database, as messages name it (no password)."""
        return self._connections.where

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[TupleRow]]:
        """A pooled connection; on the broker's first use, the schema is
        created if missing, refused if older or newer."""
        with self._connections.connection() as conn:
            if not self._schema_ready:
                ensure_schema(conn, self.where, self._migrations)
                self._database = (conn.info.dbname, conn.info.port)
                self._schema_ready = True
            yield conn

    @contextmanager
    def _write(self, keys: Iterable[int] = ()) -> Iterator[Tx]:
        """One move: ``BEGIN`` with the locks of ``keys`` and the clock (one
        round trip), the body, ``COMMIT`` (or ``ROLLBACK`` on any exception)."""
        with self._conn() as conn:
            cur = conn.cursor()
            try:
                tx = Tx(cur, lock_and_clock(cur, keys, begin=True))
                yield tx
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        self._keep_dropped(tx)

    @contextmanager
    def _snapshot(self) -> Iterator[Cursor]:
        """A read-only snapshot over several statements."""
        with self._conn() as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield conn.cursor()
            finally:
                _rollback(conn)

    @contextmanager
    def _read(self) -> Iterator[Cursor]:
        """A cursor for one statement (autocommit: no transaction around it)."""
        with self._conn() as conn:
            yield conn.cursor()

    def _keep_dropped(self, tx: Tx) -> None:
        if tx.dropped:
            with self._dropped_lock:
                self._dropped.extend(tx.dropped)

    def take_dropped(self) -> list[DroppedTask]:
        """The entries pop and move_due dropped since the last call, because
        their data was missing."""
        with self._dropped_lock:
            dropped = list(self._dropped)
            self._dropped.clear()
        return dropped
