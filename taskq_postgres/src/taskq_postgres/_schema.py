"""The tables, and the version table that lets taskq create and migrate them.

``taskq_schema`` holds one row: the version of the schema in the database.
:data:`MIGRATIONS` is the list of steps, step ``n`` taking a database from
version ``n`` to ``n + 1`` (step 0 creates the tables of version 1; a
database without the version table gets it first).
:func:`schema_statements` gives the statements a database lacks: what
``taskq db upgrade`` runs and ``--dry-run`` prints.

A broker's first use creates a missing schema (under an advisory lock, so
workers starting together create it once). It never migrates by itself: on
an older schema every use raises :class:`~taskq_core.exceptions.SchemaError`
naming ``taskq db upgrade``, so a migration runs when an operator chooses,
not halfway through a rolling deploy. A schema newer than this taskq knows
is refused too.

The tables (every name starts with ``taskq_``; they go in the first schema of
the connection's ``search_path``, so ``?options=-csearch_path%3Dtaskq`` in the
URL keeps them apart):

``taskq_tasks``
    one row per task: the payload and what is kept beside it (priority,
    ``scheduled_at``, ``time_last_queued``, the count of failed runs). A task
    id whose row is gone is "missing data" in the contract's terms.
``taskq_entries``
    one row per copy of a task in a state (a unique task may have up to three:
    pending, active, error): the score (due time, heartbeat or failure time),
    the priority (copied from the task, for the pop order), the owning worker
    of an active copy. ``seq`` (an identity) breaks score ties, first stored
    first. Two statement triggers ``NOTIFY taskq_activity`` with the queue of
    every row that became ``queued``, at commit.
``taskq_executions``
    the stored execution records (msgpack), numbered per task from 1.
``taskq_locks``, ``taskq_queue_slots``, ``taskq_system_locks``, ``taskq_rate_limits``
    coordination rows, each with its expiry time.

Times are ``double precision`` seconds since the epoch on the server's clock;
``CHECK`` constraints keep them finite, states known and counts >= 0, so
another program cannot store a value taskq could not read back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.rows import TupleRow

from taskq_core.exceptions import SchemaError
from taskq_postgres._keys import SCHEMA_KEY

__all__ = [
    "CHANNEL",
    "CURRENT_VERSION",
    "MIGRATIONS",
    "Migrations",
    "check_version",
    "ensure_schema",
    "schema_statements",
    "stored_version",
    "upgrade",
]

#: the ``LISTEN/NOTIFY`` channel the triggers announce queued work on
CHANNEL = "taskq_activity"

Migrations = tuple[tuple[str, ...], ...]

#: the version table, created before the first step
_VERSION_TABLE = (
    "CREATE TABLE taskq_schema (version integer NOT NULL CHECK (version >= 0))",
    "INSERT INTO taskq_schema (version) VALUES (0)",
)


def _finite(column: str) -> str:
    return f"CHECK ({column} > '-Infinity' AND {column} < 'Infinity')"


_VERSION_1 = (
    f"""CREATE TABLE taskq_tasks (
        queue text NOT NULL,
        id text NOT NULL,
        payload bytea NOT NULL,
        priority bigint NOT NULL DEFAULT 0,
        scheduled_at double precision {_finite("scheduled_at")},
        time_last_queued double precision {_finite("time_last_queued")},
        executions_count integer NOT NULL DEFAULT 0 CHECK (executions_count >= 0),
        PRIMARY KEY (queue, id)
    )""",
    f"""CREATE TABLE taskq_entries (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        queue text NOT NULL,
        id text NOT NULL,
        state text NOT NULL CHECK (state IN ('scheduled', 'queued', 'active', 'error')),
        score double precision NOT NULL {_finite("score")},
        priority bigint NOT NULL DEFAULT 0,
        owner text,
        UNIQUE (queue, id, state)
    )""",
    "CREATE INDEX taskq_entries_by_state ON taskq_entries (state, queue, score, seq)",
    """CREATE INDEX taskq_entries_pop ON taskq_entries (queue, priority DESC, score, seq)
        WHERE state = 'queued'""",
    "CREATE INDEX taskq_entries_active ON taskq_entries (score, seq) WHERE state = 'active'",
    """CREATE TABLE taskq_executions (
        queue text NOT NULL,
        id text NOT NULL,
        n integer NOT NULL,
        record bytea NOT NULL,
        PRIMARY KEY (queue, id, n)
    )""",
    f"""CREATE FUNCTION taskq_announce() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('{CHANNEL}', queued.queue)
            FROM (SELECT DISTINCT queue FROM taskq_changed WHERE state = 'queued') AS queued;
        RETURN NULL;
    END
    $$""",
    """CREATE TRIGGER taskq_entries_inserted AFTER INSERT ON taskq_entries
        REFERENCING NEW TABLE AS taskq_changed
        FOR EACH STATEMENT EXECUTE FUNCTION taskq_announce()""",
    """CREATE TRIGGER taskq_entries_updated AFTER UPDATE ON taskq_entries
        REFERENCING NEW TABLE AS taskq_changed
        FOR EACH STATEMENT EXECUTE FUNCTION taskq_announce()""",
    """CREATE TABLE taskq_locks (
        name text PRIMARY KEY, token text NOT NULL, expires double precision NOT NULL
    )""",
    """CREATE TABLE taskq_queue_slots (
        queue text NOT NULL, worker_id text NOT NULL, expires double precision NOT NULL,
        PRIMARY KEY (queue, worker_id)
    )""",
    "CREATE TABLE taskq_system_locks (queue text PRIMARY KEY, expires double precision NOT NULL)",
    "CREATE TABLE taskq_rate_limits (name text PRIMARY KEY, expires double precision NOT NULL)",
)

#: step ``n`` takes a database from schema version ``n`` to ``n + 1``
MIGRATIONS: Migrations = (_VERSION_1,)
#: the schema version this taskq writes
CURRENT_VERSION = len(MIGRATIONS)


def schema_statements(version: int | None, migrations: Migrations = MIGRATIONS) -> list[str]:
    """The statements that take a database from schema ``version`` (``None``:
    no taskq tables) to the newest version of ``migrations``, to run in one
    transaction; empty when it is current (or newer)."""
    steps = [sql for step in migrations[version or 0 :] for sql in step]
    if not steps:
        return []
    head = list(_VERSION_TABLE) if version is None else []
    return [*head, *steps, f"UPDATE taskq_schema SET version = {len(migrations)}"]


def stored_version(cur: psycopg.Cursor[TupleRow]) -> int | None:
    """The schema version of the database (``None``: no version table)."""
    found = cur.execute("SELECT to_regclass('taskq_schema') IS NOT NULL").fetchone()
    if found is None or not found[0]:
        return None
    rows = cur.execute("SELECT version FROM taskq_schema").fetchall()
    if len(rows) != 1 or not isinstance(rows[0][0], int):
        raise SchemaError(
            f"the table taskq_schema does not hold one schema version number: {rows[:3]!r}"
        )
    return rows[0][0]


def check_version(version: int | None, where: str, newest: int = CURRENT_VERSION) -> None:
    """Refuse a stored schema this taskq cannot use as it is: an older one
    (name the command that migrates it) or a newer one."""
    if version is None or version == newest:
        return
    if version > newest:
        raise SchemaError(
            f"the PostgreSQL database {where} has taskq schema version {version}, newer "
            f"than the version {newest} this taskq knows: upgrade taskq-postgres to use it"
        )
    raise SchemaError(
        f"the PostgreSQL database {where} has taskq schema version {version}, older than "
        f"the version {newest} this taskq writes: run `taskq db upgrade` with the same "
        "broker URL to migrate it (`taskq db upgrade --dry-run` prints the SQL first)"
    )


@contextmanager
def _schema_lock(conn: psycopg.Connection[TupleRow]) -> Iterator[None]:
    """Hold the schema's session-level advisory lock meanwhile (``conn`` in
    autocommit mode): a transaction begun inside it sees every schema change
    committed before (a lock taken inside one transaction would leave its
    catalog lookups stale)."""
    conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_KEY,))
    try:
        yield
    finally:
        if not conn.broken:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_KEY,))


def ensure_schema(
    conn: psycopg.Connection[TupleRow], where: str, migrations: Migrations = MIGRATIONS
) -> None:
    """On a broker's first use: create a missing schema (once, however many
    processes start together); refuse an older or newer one
    (:func:`check_version`). ``conn`` is in autocommit mode."""
    version = stored_version(conn.cursor())
    if version is None:
        with _schema_lock(conn), conn.transaction():
            cur = conn.cursor()
            version = stored_version(cur)  # another process may have created it meanwhile
            if version is None:
                for sql in schema_statements(None, migrations):
                    cur.execute(sql)
                return
    check_version(version, where, len(migrations))


def upgrade(
    conn: psycopg.Connection[TupleRow],
    where: str,
    migrations: Migrations = MIGRATIONS,
    *,
    dry_run: bool = False,
) -> tuple[int | None, list[str]]:
    """``taskq db upgrade``: the stored version and the statements that bring
    it to the newest version of ``migrations``, run in one transaction
    holding the schema lock (unless ``dry_run``: then nothing is run).
    Refuses a newer schema."""
    newest = len(migrations)
    if dry_run:
        version = stored_version(conn.cursor())
        if version is not None and version > newest:
            check_version(version, where, newest)
        return version, schema_statements(version, migrations)
    with _schema_lock(conn), conn.transaction():
        cur = conn.cursor()
        version = stored_version(cur)
        if version is not None and version > newest:
            check_version(version, where, newest)
        statements = schema_statements(version, migrations)
        for sql in statements:
            cur.execute(sql)
    return version, statements
