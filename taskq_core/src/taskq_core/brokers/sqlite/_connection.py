"""Connections to the database file: one per thread and process.

A connection is opened on a thread's first use, in autocommit mode
(``isolation_level=None``: transactions are the broker's explicit ``BEGIN
IMMEDIATE`` / ``COMMIT``), with the busy timeout, WAL journal and the chosen
``synchronous`` level. The first connection of a :class:`Connections` also
creates or migrates the schema.

After a fork a child must not use (nor close) the connections it inherited:
SQLite's locks belong to the process that took them. The child's first call
(or :meth:`Connections.after_fork`, which ``os.register_at_fork`` also runs)
sets the inherited connections aside, never closed, and opens its own; and
no fork happens while another thread is inside a statement or transaction
(``_forkgate``).
Connections of threads that have ended are closed when a new one is opened.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from taskq_core.brokers.sqlite._forkgate import GATE
from taskq_core.brokers.sqlite._schema import migrate
from taskq_core.exceptions import BrokerConnectionError, BrokerError

__all__ = ["SYNCHRONOUS_LEVELS", "Connections", "errors"]

#: the ``synchronous`` levels a broker accepts
SYNCHRONOUS_LEVELS = ("off", "normal", "full", "extra")

#: connections inherited from a parent process: kept referenced (closing one
#: in the child would release locks the parent holds) and never used
_INHERITED: list[sqlite3.Connection] = []
#: every live Connections, for the fork hook
_LIVE: weakref.WeakSet[Connections] = weakref.WeakSet()


@contextmanager
def errors(where: str) -> Iterator[None]:
    """Turn sqlite3's errors into taskq's: an operational error (locked or
    busy past the timeout, a disk or I/O error, a file that cannot be opened)
    is a :class:`BrokerConnectionError`, which the worker retries with back-off;
    any other (a damaged file, a bug) a :class:`BrokerError`."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise BrokerConnectionError(f"SQLite {where}: {exc}") from exc
    except sqlite3.Error as exc:
        raise BrokerError(f"SQLite {where}: {exc}") from exc


class Connections:
    """The connections of one broker to one file.

    :param path: the database file.
    :param timeout: the busy timeout in seconds: how long a write waits for
        another writer before failing with ``database is locked``.
    :param synchronous: SQLite's ``synchronous`` level with WAL (``normal``:
        no fsync per commit, safe against a crashed process, may lose the
        last commits on power loss; ``full``: fsync per commit).
    :param create_dir: create the file's directory if it is missing (the
        default file); otherwise a missing directory is an error.
    :param on_first_open: called with the first connection, once the schema
        is there.
    """

    def __init__(
        self,
        path: Path,
        timeout: float,
        synchronous: str,
        create_dir: bool,
        on_first_open: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        self.path = path
        self.timeout = timeout
        self.synchronous = synchronous
        self.create_dir = create_dir
        #: the journal mode the file is in (``None`` until the first connection)
        self.journal_mode: str | None = None
        self._migrated = False
        self._on_first_open = on_first_open
        self._reset()
        _LIVE.add(self)

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._by_thread: dict[int, sqlite3.Connection] = {}

    # -- per thread ----------------------------------------------------------------
    @contextmanager
    def using(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, to use meanwhile: no fork happens until
        the block ends, and sqlite3's errors become taskq's (:func:`errors`)."""
        with GATE.hold(), errors(str(self.path)):
            yield self.get()

    def get(self) -> sqlite3.Connection:
        """This thread's connection (opened, and the schema checked, on first use)."""
        if self._pid != os.getpid():
            self.after_fork()
        ident = threading.get_ident()
        db = self._by_thread.get(ident)
        if db is not None:
            return db
        with self._lock:
            self._close_ended_threads()
            db = self._open()
            self._by_thread[ident] = db
        return db

    def connect(self) -> sqlite3.Connection:
        """A new connection to the file (created, with its directory when
        that is allowed), in WAL mode; the schema is not checked."""
        where = str(self.path)
        directory = self.path.parent
        if not directory.is_dir():
            if not self.create_dir:
                raise BrokerError(f"SQLite {where}: the directory {directory} does not exist")
            try:
                directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as exc:
                raise BrokerError(f"SQLite {where}: cannot create {directory}: {exc}") from exc
        with errors(where):
            db = sqlite3.connect(
                where, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            try:
                self.journal_mode = str(db.execute("PRAGMA journal_mode = WAL").fetchone()[0])
                db.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
            except BaseException:
                db.close()
                raise
        return db

    def _open(self) -> sqlite3.Connection:
        where = str(self.path)
        db = self.connect()
        with errors(where):
            try:
                if not self._migrated:
                    migrate(db, where)
                    self._migrated = True
                    if self._on_first_open is not None:
                        self._on_first_open(db)
            except BaseException:
                db.close()
                raise
        return db

    def _close_ended_threads(self) -> None:
        alive = {thread.ident for thread in threading.enumerate()}
        for ident in [i for i in self._by_thread if i not in alive]:
            self._by_thread.pop(ident).close()

    # -- lifecycle -------------------------------------------------------------------
    def after_fork(self) -> None:
        """In a forked child: set the inherited connections aside (never used
        nor closed) and start afresh."""
        if self._pid == os.getpid():
            return
        _INHERITED.extend(self._by_thread.values())
        self._reset()

    def close(self) -> None:
        """Close this process's connections (a child's inherited ones stay)."""
        if self._pid != os.getpid():
            self.after_fork()
            return
        with self._lock:
            connections = list(self._by_thread.values())
            self._by_thread.clear()
        for db in connections:
            db.close()


def _after_fork_in_child() -> None:
    for connections in list(_LIVE):
        connections.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
