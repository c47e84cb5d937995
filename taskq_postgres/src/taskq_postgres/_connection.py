"""Connections to the database: one psycopg-pool pool per broker and process,
and the errors of psycopg turned into taskq's.

The pool is made on first use. Its connections are in autocommit mode: a
move opens its own transaction (``conn.transaction()``), a single read needs
none. After a fork the child must not use the parent's sockets: its first
call (or :meth:`Connections.after_fork`, which ``os.register_at_fork`` runs
too) sets the inherited pool aside, never closed (closing it would end the
parent's sessions), and makes a pool of its own.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from taskq_core.exceptions import BrokerConnectionError, BrokerError

__all__ = ["Connections", "describe", "errors"]

#: pools inherited from a parent process: kept referenced (their connections
#: share the parent's sockets) and never used
_INHERITED: list[object] = []
#: every live Connections, for the fork hook
_LIVE: weakref.WeakSet[Connections] = weakref.WeakSet()
#: seconds a connection attempt may take unless the URL says otherwise
_CONNECT_TIMEOUT = 10


@contextmanager
def errors(where: str) -> Iterator[None]:
    """Turn psycopg's errors into taskq's: a failed or lost connection, a
    pool timeout, a deadlock or serialization failure (what a retry may cure)
    is a :class:`BrokerConnectionError`, which the worker retries with
    back-off; any other (a refused statement, a bug) a :class:`BrokerError`."""
    try:
        yield
    except psycopg.OperationalError as exc:
        raise BrokerConnectionError(f"PostgreSQL {where}: {exc}") from exc
    except psycopg.Error as exc:
        raise BrokerError(f"PostgreSQL {where}: {exc}") from exc


def describe(conninfo: str) -> str:
    """The database a connection string names, for messages (never the
    password): ``dbname on host:port``, with libpq's defaults left unsaid."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "(an unparsable connection string)"
    dbname = params.get("dbname") or "the default database"
    host = params.get("host") or "the default host"
    port = params.get("port")
    return f"{dbname} on {host}" + (f":{port}" if port else "")


class Connections:
    """The connections of one broker to one database.

    :param conninfo: a libpq connection string or ``postgresql://`` URL.
    :param min_size: connections the pool keeps open.
    :param max_size: connections the pool opens at most.
    :param timeout: how long a move waits for a free connection (or for a
        new one to be made) before failing with ``BrokerConnectionError``.
    :param options: more keyword arguments of ``psycopg.connect`` (libpq
        parameters such as ``sslmode``, or ``prepare_threshold``).
    """

    def __init__(
        self,
        conninfo: str,
        *,
        min_size: int,
        max_size: int,
        timeout: float,
        options: Mapping[str, Any],
    ) -> None:
        self.conninfo = conninfo
        self.min_size = min_size
        self.max_size = max_size
        self.timeout = timeout
        given = conninfo_to_dict(conninfo)
        kwargs: dict[str, Any] = {"fallback_application_name": "taskq"}
        if "connect_timeout" not in given:
            kwargs["connect_timeout"] = _CONNECT_TIMEOUT
        kwargs.update(options)
        #: the keyword arguments of every connection (autocommit on)
        self.kwargs = {**kwargs, "autocommit": True}
        #: what the messages call the database
        self.where = describe(conninfo)
        self._reset()
        _LIVE.add(self)

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._pool: ConnectionPool[psycopg.Connection[TupleRow]] | None = None

    def pool(self) -> ConnectionPool[psycopg.Connection[TupleRow]]:
        """This process's pool (made and opened on first use, once a first
        connection succeeded; otherwise :func:`errors` says why it failed)."""
        if self._pid != os.getpid():
            self.after_fork()
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._pool is None:
                    # one connection first: a server that refuses it (down,
                    # a wrong password or database) is an error now, with
                    # the server's reason, not a pool timeout later
                    self.connect().close()
                    made: ConnectionPool[psycopg.Connection[TupleRow]] = ConnectionPool(
                        self.conninfo,
                        kwargs=self.kwargs,
                        min_size=self.min_size,
                        max_size=self.max_size,
                        timeout=self.timeout,
                        open=False,
                        name=f"taskq-{self.where}",
                        num_workers=1,
                    )
                    made.open(wait=False)
                    self._pool = made
                pool = self._pool
        return pool

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[TupleRow]]:
        """A pooled connection for the block; psycopg's errors become taskq's
        (:func:`errors`). When the connection turned out broken (the server
        restarted), the pool checks its idle connections at once, so the
        next use gets a working one."""
        pool = self.pool()
        with errors(self.where):
            try:
                with pool.connection() as conn:
                    yield conn
            except psycopg.OperationalError:
                pool.check()
                raise

    def connect(self) -> psycopg.Connection[TupleRow]:
        """A new connection of its own (not pooled), in autocommit mode."""
        with errors(self.where):
            return psycopg.connect(self.conninfo, **self.kwargs)

    # -- lifecycle ----------------------------------------------------------------
    def after_fork(self) -> None:
        """In a forked child: set the inherited pool aside (never used nor
        closed) and start afresh."""
        if self._pid == os.getpid():
            return
        if self._pool is not None:
            _INHERITED.append(self._pool)
        self._reset()

    def close(self) -> None:
        """Close this process's pool (a child's inherited one stays)."""
        if self._pid != os.getpid():
            self.after_fork()
            return
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


def _after_fork_in_child() -> None:
    for connections in list(_LIVE):
        connections.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
