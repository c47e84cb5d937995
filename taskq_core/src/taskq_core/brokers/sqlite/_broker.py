"""The :class:`SQLiteBroker` class: the sections of the SQLite broker,
composed, with its options, lifecycle and clock."""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import ClassVar

from taskq_core.broker import Broker, SchemaPlan
from taskq_core.brokers.sqlite._connection import SYNCHRONOUS_LEVELS, errors
from taskq_core.brokers.sqlite._coordination import SQLiteCoordination
from taskq_core.brokers.sqlite._inspection import SQLiteInspection
from taskq_core.brokers.sqlite._location import default_path, path_from_url
from taskq_core.brokers.sqlite._moves import SQLiteMoves
from taskq_core.brokers.sqlite._recovery import SQLiteRecovery
from taskq_core.brokers.sqlite._schema import (
    CURRENT_VERSION,
    migrate,
    pending_sql,
    refuse_newer,
    stored_version,
)

__all__ = ["SQLiteBroker", "setup_warnings"]


def setup_warnings(path: Path, journal_mode: str | None) -> list[str]:
    """Warnings about a file in ``journal_mode`` (``None``: not known yet):
    any mode but WAL makes readers and writers wait for each other, which is
    what a file system without shared memory (a network one) leads to."""
    if journal_mode is None or journal_mode.lower() == "wal":
        return []
    return [
        f"the SQLite file {path} is in journal mode {journal_mode!r}, not 'wal': readers "
        "and writers will wait for each other (is it on a network file system?)"
    ]


class SQLiteBroker(SQLiteMoves, SQLiteRecovery, SQLiteInspection, SQLiteCoordination, Broker):
    """A broker on one SQLite file, for any number of worker processes and
    threads on one machine (standard library ``sqlite3`` only).

    :param path: the database file (created with its tables on first use).
    :param url: a ``sqlite://`` URL instead of ``path``:
        ``sqlite:///relative.db``, ``sqlite:////absolute/path.db``, or
        ``sqlite://`` for the default file (see :func:`default_path`:
        ``$TASKQ_SQLITE_PATH``, else ``$XDG_DATA_HOME/taskq/taskq.db``, i.e.
        ``~/.local/share/taskq/taskq.db``). Neither: the default file. The
        default file's directory is created if needed; another file's must
        exist. A relative path is made absolute now.
    :param timeout: the busy timeout (seconds): how long a move waits for
        the write lock while another process writes (default 30).
    :param synchronous: SQLite's ``synchronous`` level: ``"normal"``
        (default: with WAL, no fsync per commit; a crashed process loses
        nothing, a power cut may lose the last commits) or ``"full"`` (fsync
        every commit), ``"extra"``, ``"off"``.
    :param poll_interval: the longest wait between two looks for new work
        in :meth:`wait_for_activity` (default 0.05 s). A wait is woken at once
        by a commit that queues work, in any process (a byte sent to its
        socket in the directory ``<file>-wake``), and looks at least this
        often as well; where it has no socket (no Unix sockets, a directory
        it cannot write, a path too long for a socket), it polls, 2 ms apart
        at first, backing off to this.

    The file is in WAL mode: readers never wait for writers, writers take
    turns. Every state move is one ``BEGIN IMMEDIATE`` transaction, so it
    happens completely or not at all, whichever process or thread runs it.

    Time: every time the broker stamps or compares (due times, heartbeats,
    lock and slot expiry) is this machine's ``time.time()``, read once per
    transaction after the write lock is taken. The file lives on one
    machine, so all its workers share that one clock; the moves' stamps
    follow their commit order (as long as the system clock is not set back).

    Connections: one per thread and process, opened on first use. A forked
    child opens its own (the inherited ones are set aside, never used), so a
    broker may be used on both sides of a fork.

    The schema: a missing one is created on first use, an older one migrated
    (both in one ``BEGIN IMMEDIATE`` transaction); a newer one than this taskq
    knows raises :class:`~taskq_core.exceptions.SchemaError`.

    Limits: one machine, a local disk (not NFS or another network file
    system, whose locks SQLite cannot rely on); writes are serialized.
    """

    name: ClassVar[str] = "sqlite"
    supports_fork: ClassVar[bool] = True

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        url: str | None = None,
        timeout: float = 30.0,
        synchronous: str = "normal",
        poll_interval: float = 0.05,
    ) -> None:
        if path is not None and url is not None:
            raise TypeError("SQLiteBroker takes a path or a url, not both")
        named = Path(path).expanduser().absolute() if path is not None else None
        if url is not None:
            named = path_from_url(url)
        if synchronous.lower() not in SYNCHRONOUS_LEVELS:
            levels = ", ".join(SYNCHRONOUS_LEVELS)
            raise ValueError(f"synchronous must be one of {levels}, not {synchronous!r}")
        if not timeout >= 0:
            raise ValueError(f"timeout must be >= 0 seconds, not {timeout!r}")
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be > 0 seconds, not {poll_interval!r}")
        #: the database file
        self.path: Path = named if named is not None else default_path()
        self.poll_interval = float(poll_interval)
        super().__init__(
            self.path,
            timeout=float(timeout),
            synchronous=synchronous.lower(),
            create_dir=named is None,
        )

    def __repr__(self) -> str:
        return f"SQLiteBroker(path={str(self.path)!r})"

    @property
    def url(self) -> str:
        """The file as a ``sqlite://`` URL (an absolute path: four slashes)."""
        return f"sqlite:///{self.path}"

    # -- lifecycle -----------------------------------------------------------------
    def after_fork(self) -> None:
        """In a forked child: set the inherited connections and wake-up
        socket aside."""
        self._connections.after_fork()
        self._wakeups.after_fork()

    def close(self) -> None:
        """Close this process's connections and remove its wake-up socket
        (the broker reopens both on next use)."""
        self._connections.close()
        self._wakeups.close()

    def check(self) -> list[str]:
        """Warn when the file could not be put in WAL mode, or when waits
        cannot be woken by other processes (they poll)."""
        with self._connections.using():
            pass  # opened: the journal mode is known
        warnings = setup_warnings(self.path, self._connections.journal_mode)
        if not self._wakeups.listen():
            warnings.append(
                f"other processes cannot wake this one ({self._wakeups.unavailable}): it "
                f"looks for their new work by polling, up to {self.poll_interval} s apart"
            )
        return warnings

    # -- the schema ----------------------------------------------------------------------
    def schema_plan(self) -> SchemaPlan:
        """The file's schema version and what ``taskq db upgrade`` would run
        (the whole schema for a file that does not exist yet); reads the file
        read-only, creating nothing."""
        where = str(self.path)
        version: int | None = None
        if self.path.exists():
            read_only = f"{self.path.as_uri()}?mode=ro"
            timeout = self._connections.timeout
            with (
                errors(where),
                closing(sqlite3.connect(read_only, uri=True, timeout=timeout)) as db,
            ):
                version = stored_version(db)
        refuse_newer(version, where)
        return SchemaPlan(where, version, CURRENT_VERSION, tuple(pending_sql(version)))

    def upgrade_schema(self) -> SchemaPlan:
        """Create or migrate the file's schema now, in one ``BEGIN IMMEDIATE``
        transaction (as the first use of a broker does); what it ran."""
        where = str(self.path)
        with closing(self._connections.connect()) as db, errors(where):
            found = migrate(db, where)
        return SchemaPlan(where, found, CURRENT_VERSION, tuple(pending_sql(found)))

    # -- clock -----------------------------------------------------------------------
    def time(self) -> float:
        """This machine's clock (``time.time()``), which every process on the
        file shares."""
        return time.time()
