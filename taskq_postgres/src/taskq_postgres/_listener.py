"""Listening for activity: ``LISTEN taskq_activity`` on a connection of its own.

The triggers of ``taskq_entries`` send ``NOTIFY taskq_activity, '<queue>'``
for every queue that got a ``queued`` task; PostgreSQL delivers it when that
transaction commits (never if it rolls back), once per queue and transaction.
The listening connection is made on first use (a worker makes it at start)
and made again after it failed, so a worker that lost the server listens
again once it is back. Workers also re-read the queue lists on a timer, so a
notification sent while nobody listened never strands a queue (Decision 8).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import psycopg
from psycopg.rows import TupleRow

from taskq_core.exceptions import BrokerConnectionError
from taskq_postgres._connection import errors
from taskq_postgres._schema import CHANNEL

__all__ = ["Listener"]

#: listening connections inherited from a parent process: never used nor closed
_INHERITED: list[object] = []


class Listener:
    """The ``LISTEN`` connection of one broker in one process."""

    def __init__(self, connect: Callable[[], psycopg.Connection[TupleRow]], where: str) -> None:
        self._connect = connect
        self._where = where
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[TupleRow] | None = None

    def _listening(self) -> psycopg.Connection[TupleRow]:
        if self._pid != os.getpid():
            self.after_fork()
        if self._conn is None or self._conn.closed:
            conn = self._connect()
            try:
                conn.execute(f"LISTEN {CHANNEL}")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def start(self) -> None:
        """Listen from now on (:meth:`wait` starts on its first call otherwise)."""
        with self._lock, errors(self._where):
            self._listening()

    def wait(self, timeout: float) -> set[str]:
        """The queue names notified within ``timeout`` seconds: returns as soon
        as one arrived (with any others already there)."""
        with self._lock:
            try:
                with errors(self._where):
                    conn = self._listening()
                    names = {n.payload for n in conn.notifies(timeout=timeout, stop_after=1)}
                    if names:
                        names.update(n.payload for n in conn.notifies(timeout=0.0))
            except BrokerConnectionError:
                self._drop()
                raise
        return names

    def _drop(self) -> None:
        """Forget a failed connection (the next wait connects again)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                pass

    def after_fork(self) -> None:
        """Forget the parent's connection without touching it."""
        if self._pid == os.getpid():
            return
        if self._conn is not None:
            _INHERITED.append(self._conn)
        self._reset()

    def close(self) -> None:
        """Stop listening and close the connection."""
        if self._pid != os.getpid():
            self.after_fork()
            return
        with self._lock:
            self._drop()
