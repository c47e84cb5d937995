"""The state shared by the sections of the SQLite broker: its connections, and
the two kinds of transaction every method runs in.

:meth:`SQLiteStore._write` is one ``BEGIN IMMEDIATE`` ... ``COMMIT``: the
write lock is taken first (waiting up to the busy timeout for another
writer), then the broker's clock is read once, so the stamps of successive
moves follow the order in which they committed; any exception rolls the
whole move back. :meth:`SQLiteStore._read` is a deferred transaction: a
consistent snapshot for reads of several statements, which never waits for
writers (WAL).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from taskq_core.broker import DroppedTask
from taskq_core.brokers.sqlite._connection import Connections
from taskq_core.brokers.sqlite._rows import Tx, flush_announcements, latest_activity
from taskq_core.brokers.sqlite._wakeups import Wakeups

__all__ = ["SQLiteStore"]

#: dropped entries kept for take_dropped()
_DROPPED_KEPT = 10_000


class SQLiteStore:
    """Connections, transactions, and the in-process state of
    :class:`~taskq_core.brokers.sqlite.SQLiteBroker`: what it dropped (until
    ``take_dropped``), the condition that wakes this process's waiters and
    the wake-ups of other processes' waiters."""

    def __init__(self, path: Path, *, timeout: float, synchronous: str, create_dir: bool) -> None:
        self._connections = Connections(
            path, timeout, synchronous, create_dir, on_first_open=self._listen
        )
        self._where = str(path)
        #: the last activity number this broker has seen (``None``: not yet
        #: read); what is announced after it is new to ``wait_for_activity``
        self._activity_seen: int | None = None
        self._dropped: deque[DroppedTask] = deque(maxlen=_DROPPED_KEPT)
        self._dropped_lock = threading.Lock()
        #: notified after a commit of this process that queued work, and when
        #: a wake-up arrives, for the waiters of this process
        self._wakeup = threading.Condition()
        self._changes = 0
        #: wakes the waiters of every process after a commit that queued work
        self._wakeups = Wakeups(path)

    @contextmanager
    def _write(self) -> Iterator[Tx]:
        """One state move: ``BEGIN IMMEDIATE``, the body, ``COMMIT`` (or
        ``ROLLBACK`` on any exception)."""
        with self._connections.using() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                tx = Tx(db, time.time())
                yield tx
                flush_announcements(tx)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        if tx.dropped:
            with self._dropped_lock:
                self._dropped.extend(tx.dropped)
        if tx.announced:
            self._changed()
            self._wakeups.notify()

    def _changed(self) -> None:
        """Tell this process's waiters to look at the file again."""
        with self._wakeup:
            self._changes += 1
            self._wakeup.notify_all()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read-only snapshot over several statements."""
        with self._connections.using() as db:
            db.execute("BEGIN")
            try:
                yield db
            finally:
                if db.in_transaction:
                    db.execute("COMMIT")

    def _listen(self, db: sqlite3.Connection) -> None:
        """Start noticing activity: from the first connection on, what is
        announced is reported by ``wait_for_activity``."""
        if self._activity_seen is None:
            self._activity_seen = latest_activity(db)
