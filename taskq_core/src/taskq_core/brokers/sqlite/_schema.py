"""The tables, and the version table that lets taskq create and migrate them.

``taskq_schema`` holds one row: the version of the schema in the file.
:data:`MIGRATIONS` is the list of steps, step ``n`` taking a file from
version ``n`` to ``n + 1`` (step 0 creates the tables of version 1; a file
without the version table gets it first). On
first use a broker runs the steps a file lacks in one ``BEGIN IMMEDIATE``
transaction (so concurrent workers migrate it once), and refuses a file
whose version is newer than the steps it knows.

The tables (every name starts with ``taskq_``, so they can share a file with
an application's own tables):

``taskq_tasks``
    one row per task: the payload and what is kept beside it (priority,
    ``scheduled_at``, ``time_last_queued``, the count of failed runs). A task
    id whose row is gone is "missing data" in the contract's terms.
``taskq_entries``
    one row per copy of a task in a state (a unique task may have up to three:
    pending, active, error): the score (due time, heartbeat or failure time),
    the priority (copied from the task, for the pop order), the owning worker
    of an active copy. ``seq`` (AUTOINCREMENT: never reused) breaks score ties,
    first stored first.
``taskq_executions``
    the stored execution records (msgpack), numbered per task from 1.
``taskq_counts``
    how many entries each queue has in each state (kept by triggers).
``taskq_activity``
    per queue, the number of the last change that queued a task there
    (what ``wait_for_activity`` polls).
``taskq_locks``, ``taskq_queue_slots``, ``taskq_system_locks``, ``taskq_rate_limits``
    coordination rows, each with its expiry time.

Columns keep SQLite's loose typing on purpose: a value of the wrong type
written by someone else is read back as unreadable (Decision 19) instead of
making every later write of that row fail a constraint.
"""

from __future__ import annotations

import sqlite3

from taskq_core.exceptions import SchemaError

__all__ = [
    "CURRENT_VERSION",
    "MIGRATIONS",
    "migrate",
    "pending_sql",
    "refuse_newer",
    "stored_version",
]

#: the version table, created before the first step
_VERSION_TABLE = (
    "CREATE TABLE taskq_schema (version INTEGER NOT NULL)",
    "INSERT INTO taskq_schema (version) VALUES (0)",
)

_VERSION_1 = (
    """CREATE TABLE taskq_tasks (
        queue TEXT NOT NULL,
        id TEXT NOT NULL,
        payload BLOB NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        scheduled_at REAL,
        time_last_queued REAL,
        executions_count INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (queue, id)
    )""",
    """CREATE TABLE taskq_entries (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        id TEXT NOT NULL,
        state TEXT NOT NULL,
        score REAL NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        owner TEXT,
        UNIQUE (queue, state, id)
    )""",
    "CREATE INDEX taskq_entries_by_score ON taskq_entries (queue, state, score, seq)",
    "CREATE INDEX taskq_entries_of_task ON taskq_entries (queue, id)",
    "CREATE INDEX taskq_entries_by_state ON taskq_entries (state, score, seq)",
    """CREATE INDEX taskq_entries_pop ON taskq_entries (queue, priority DESC, score, seq)
        WHERE state = 'queued'""",
    """CREATE TABLE taskq_executions (
        queue TEXT NOT NULL,
        id TEXT NOT NULL,
        n INTEGER NOT NULL,
        record BLOB NOT NULL,
        PRIMARY KEY (queue, id, n)
    )""",
    """CREATE TABLE taskq_counts (
        queue TEXT NOT NULL,
        state TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (queue, state)
    ) WITHOUT ROWID""",
    """CREATE TRIGGER taskq_entries_added AFTER INSERT ON taskq_entries BEGIN
        INSERT INTO taskq_counts (queue, state, n) VALUES (new.queue, new.state, 1)
            ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
    END""",
    """CREATE TRIGGER taskq_entries_removed AFTER DELETE ON taskq_entries BEGIN
        UPDATE taskq_counts SET n = n - 1 WHERE queue = old.queue AND state = old.state;
        DELETE FROM taskq_counts WHERE queue = old.queue AND state = old.state AND n <= 0;
    END""",
    """CREATE TRIGGER taskq_entries_moved AFTER UPDATE OF queue, state ON taskq_entries BEGIN
        UPDATE taskq_counts SET n = n - 1 WHERE queue = old.queue AND state = old.state;
        DELETE FROM taskq_counts WHERE queue = old.queue AND state = old.state AND n <= 0;
        INSERT INTO taskq_counts (queue, state, n) VALUES (new.queue, new.state, 1)
            ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
    END""",
    "CREATE TABLE taskq_activity (queue TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
    "CREATE INDEX taskq_activity_by_seq ON taskq_activity (seq)",
    """CREATE TABLE taskq_locks (
        name TEXT PRIMARY KEY, token TEXT NOT NULL, expires REAL NOT NULL
    )""",
    "CREATE INDEX taskq_locks_by_expiry ON taskq_locks (expires)",
    """CREATE TABLE taskq_queue_slots (
        queue TEXT NOT NULL, worker_id TEXT NOT NULL, expires REAL NOT NULL,
        PRIMARY KEY (queue, worker_id)
    )""",
    "CREATE TABLE taskq_system_locks (queue TEXT PRIMARY KEY, expires REAL NOT NULL)",
    "CREATE TABLE taskq_rate_limits (name TEXT PRIMARY KEY, expires REAL NOT NULL)",
)

#: step ``n`` takes a file from schema version ``n`` to ``n + 1``
MIGRATIONS: tuple[tuple[str, ...], ...] = (_VERSION_1,)
#: the schema version this taskq writes
CURRENT_VERSION = len(MIGRATIONS)


def stored_version(db: sqlite3.Connection) -> int | None:
    """The schema version of the file (``None``: no version table yet)."""
    found = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'taskq_schema'"
    ).fetchone()
    if found is None:
        return None
    rows = db.execute("SELECT version FROM taskq_schema").fetchall()
    if len(rows) != 1 or type(rows[0][0]) is not int or rows[0][0] < 0:
        raise SchemaError(
            f"the table taskq_schema does not hold one schema version number: {rows[:3]!r}"
        )
    version: int = rows[0][0]
    return version


def pending_sql(
    version: int | None, migrations: tuple[tuple[str, ...], ...] = MIGRATIONS
) -> list[str]:
    """The statements that take a file from ``version`` (``None``: a file
    without taskq's tables) to the newest version of ``migrations``."""
    steps = [sql for step in migrations[version or 0 :] for sql in step]
    if not steps:
        return []
    head = list(_VERSION_TABLE) if version is None else []
    return [*head, *steps, f"UPDATE taskq_schema SET version = {len(migrations)}"]


def refuse_newer(version: int | None, where: str, newest: int = CURRENT_VERSION) -> None:
    """Raise :class:`~taskq_core.exceptions.SchemaError` when ``version`` is
    newer than the ``newest`` this taskq knows (``where`` names the file)."""
    if version is not None and version > newest:
        raise SchemaError(
            f"the SQLite file {where} has taskq schema version {version}, newer than "
            f"the version {newest} this taskq knows: upgrade taskq-core to use it"
        )


def migrate(
    db: sqlite3.Connection, where: str, migrations: tuple[tuple[str, ...], ...] = MIGRATIONS
) -> int | None:
    """Bring the file's schema to the newest version, in one ``BEGIN
    IMMEDIATE`` transaction; returns the version it had (``None``: no taskq
    tables). ``db`` must be in autocommit mode (``isolation_level=None``)
    with no transaction open.

    Raises :class:`~taskq_core.exceptions.SchemaError` when the file's schema
    is newer than ``migrations`` know (``where`` names the file).
    """
    newest = len(migrations)
    if stored_version(db) == newest:  # the common case, without the write lock
        return newest
    db.execute("BEGIN IMMEDIATE")
    try:
        version = stored_version(db)
        refuse_newer(version, where, newest)
        for sql in pending_sql(version, migrations):
            db.execute(sql)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return version
