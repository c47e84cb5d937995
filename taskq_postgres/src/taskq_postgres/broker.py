"""The :class:`PostgresBroker` class: the sections of the PostgreSQL broker,
composed, with its options, lifecycle, clock and schema."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from taskq_core.broker import Broker, SchemaPlan
from taskq_postgres._coordination import PostgresCoordination
from taskq_postgres._inspection import PostgresInspection
from taskq_postgres._moves import PostgresMoves
from taskq_postgres._recovery import PostgresRecovery
from taskq_postgres._rows import NOW
from taskq_postgres._schema import upgrade

__all__ = ["MIN_SERVER_VERSION", "SCHEMES", "PostgresBroker", "public_url", "setup_warnings"]

#: the URL schemes the broker is registered for
SCHEMES = ("postgresql", "postgres")
#: the oldest PostgreSQL server taskq runs on (``server_version_num``)
MIN_SERVER_VERSION = 120000
#: keyword arguments of ``psycopg.connect`` that are not libpq parameters
_PSYCOPG_OPTIONS = frozenset({"prepare_threshold", "context", "cursor_factory"})
#: what the broker sets on its connections itself
_OWN_OPTIONS = frozenset({"autocommit", "row_factory", "conninfo"})


def _check_options(target: str, options: dict[str, Any]) -> None:
    """Refuse options ``psycopg.connect`` would refuse (or the broker needs
    to set itself) now, not at the first connection."""
    own = sorted(_OWN_OPTIONS & set(options))
    if own:
        raise TypeError(f"PostgresBroker sets {', '.join(own)} itself; do not pass it")
    libpq = {k: v for k, v in options.items() if k not in _PSYCOPG_OPTIONS}
    try:
        make_conninfo(target, **libpq)
    except psycopg.ProgrammingError as exc:
        raise TypeError(f"PostgresBroker got an option libpq does not know: {exc}") from exc


def public_url(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def setup_warnings(server_version_num: int) -> list[str]:
    """Warnings about a server of this ``server_version_num``."""
    if server_version_num < MIN_SERVER_VERSION:
        major = server_version_num // 10000
        return [f"PostgreSQL {major} is older than 12, which taskq needs"]
    return []


class PostgresBroker(
    PostgresMoves, PostgresRecovery, PostgresInspection, PostgresCoordination, Broker
):
    """A broker on a PostgreSQL 12+ database, for any number of workers on
    any hosts, that can enqueue inside your own transactions.

    :param url: a ``postgresql://`` (or ``postgres://``) URL, as libpq reads
        it: ``postgresql://user:password@host:5432/dbname?sslmode=require``.
        Neither ``url`` nor ``conninfo``: libpq's defaults (``PGHOST``,
        ``PGDATABASE``, ``PGUSER``, ``PGPASSWORD``... and the local socket).
    :param conninfo: a libpq key/value string instead (``"host=db dbname=app"``).
    :param pool_min_size: connections the pool keeps open (default 1).
    :param pool_max_size: connections the pool opens at most (default 10): a
        worker uses one at a time, plus one per thread that enqueues; the
        listening connection is not counted.
    :param pool_timeout: seconds a move waits for a free (or new) connection
        before failing with :class:`~taskq_core.exceptions.BrokerConnectionError`
        (the worker then backs off and retries).
    :param connect_options: more ``psycopg.connect`` keyword arguments (libpq
        parameters such as ``sslmode`` or ``connect_timeout``, which otherwise
        defaults to 10 s; ``prepare_threshold=None`` behind a pooler that
        cannot keep prepared statements).

    Every state move is one transaction. It first takes the
    transaction-level advisory locks of the tasks it moves (in ascending
    order, so moves cannot deadlock) and then reads the clock once; a pop
    takes the head of the queue with ``SELECT ... FOR UPDATE SKIP LOCKED``
    and only try-locks, so it never waits for another move.

    Time: every time the broker stamps or compares (due times, heartbeats,
    lock and slot expiry) is the server's ``clock_timestamp()`` in seconds
    since the epoch, read once per move after its locks are granted (not
    ``now()``, which is the start of the transaction: in your own transaction
    it could be minutes old). All workers, on any host, share that one clock.

    Connections: a psycopg-pool pool per process, made on first use, plus
    one connection that ``LISTEN``\\ s for new work (made by a worker at start,
    or by the first :meth:`wait_for_activity`). A forked child makes its own
    (the inherited ones are set aside, never used nor closed).

    The schema: a missing one is created on first use; an older one is
    refused with :class:`~taskq_core.exceptions.SchemaError` naming
    ``taskq db upgrade`` (migrations run when you choose); a newer one than
    this taskq knows is refused too.
    """

    name: ClassVar[str] = "postgres"
    supports_fork: ClassVar[bool] = True

    def __init__(
        self,
        url: str | None = None,
        *,
        conninfo: str | None = None,
        pool_min_size: int = 1,
        pool_max_size: int = 10,
        pool_timeout: float = 10.0,
        **connect_options: Any,
    ) -> None:
        if url is not None and conninfo is not None:
            raise TypeError("PostgresBroker takes a url or a conninfo, not both")
        if url is not None:
            scheme = urlsplit(url).scheme.lower()
            if scheme not in SCHEMES:
                raise ValueError(
                    f"PostgresBroker needs a postgresql:// or postgres:// URL, not {url!r}"
                )
        target = url if url is not None else (conninfo or "")
        try:
            conninfo_to_dict(target)
        except psycopg.ProgrammingError as exc:
            shown = public_url(target) if url is not None else "the conninfo"
            raise ValueError(
                f"cannot read {shown} as a PostgreSQL connection string: {exc}"
            ) from exc
        _check_options(target, connect_options)
        if not 0 <= pool_min_size <= pool_max_size or pool_max_size < 1:
            raise ValueError(
                "the pool needs 0 <= pool_min_size <= pool_max_size and pool_max_size >= 1, "
                f"not {pool_min_size} and {pool_max_size}"
            )
        if not pool_timeout > 0:
            raise ValueError(f"pool_timeout must be > 0 seconds, not {pool_timeout!r}")
        #: the URL (or conninfo) given, as messages show it (no password)
        self.url = public_url(url) if url is not None else (conninfo or "")
        super().__init__(
            target,
            pool_min_size=pool_min_size,
            pool_max_size=pool_max_size,
            pool_timeout=float(pool_timeout),
            connect_options=connect_options,
        )

    def __repr__(self) -> str:
        return f"PostgresBroker({self.where})"

    # -- lifecycle -----------------------------------------------------------------
    def after_fork(self) -> None:
        """In a forked child: set the inherited connections aside."""
        self._connections.after_fork()
        self._listener.after_fork()

    def close(self) -> None:
        """Close this process's connections (the broker reconnects on next use)."""
        self._listener.close()
        self._connections.close()

    def check(self) -> list[str]:
        """At a worker's start: the schema is there (created if missing;
        ``SchemaError`` if older or newer), the listening connection is made
        (nothing queued from now on is missed), and the server is checked."""
        with self._conn() as conn:
            version = conn.info.server_version
        self._listener.start()
        return setup_warnings(version)

    # -- clock -----------------------------------------------------------------------
    def time(self) -> float:
        """The server's clock (``clock_timestamp()``), which every worker shares."""
        with self._read() as cur:
            row = cur.execute(f"SELECT {NOW}").fetchone()
        assert row is not None
        now: float = row[0]
        return now

    # -- the schema ------------------------------------------------------------------
    def schema_plan(self) -> SchemaPlan:
        """The database's schema version and what ``taskq db upgrade`` would
        run (the whole schema when there is none); changes nothing."""
        with self._connections.connection() as conn:
            found, statements = upgrade(conn, self.where, self._migrations, dry_run=True)
        return SchemaPlan(self.where, found, len(self._migrations), tuple(statements))

    def upgrade_schema(self) -> SchemaPlan:
        """Create or migrate the schema now, in one transaction (holding the
        schema's advisory lock, so two upgrades run one after the other); what
        it ran. Stop the workers of the older taskq first, then upgrade, then
        start the workers of the new one."""
        with self._connections.connection() as conn:
            found, statements = upgrade(conn, self.where, self._migrations)
        self._schema_ready = False  # looked at again on the next use
        return SchemaPlan(self.where, found, len(self._migrations), tuple(statements))
