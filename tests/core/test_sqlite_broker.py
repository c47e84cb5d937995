"""What is specific to the SQLite broker: its URLs and default file, its
options, WAL and the busy timeout, and the schema it creates, migrates or
refuses."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlite_helpers import outside, rows

from taskq_core import TaskQ
from taskq_core.broker import EnqueueRequest
from taskq_core.brokers.sqlite import DEFAULT_PATH_ENV, SCHEMA_VERSION, SQLiteBroker, default_path
from taskq_core.brokers.sqlite._broker import setup_warnings
from taskq_core.brokers.sqlite._schema import MIGRATIONS, migrate, pending_sql
from taskq_core.exceptions import BrokerConnectionError, BrokerError, SchemaError
from taskq_core.plugins import get_broker_entry, get_registry, make_broker
from taskq_core.states import State

Q = "default"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home directory of its own, with no data-directory variables set."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv(DEFAULT_PATH_ENV, raising=False)
    monkeypatch.delenv("TASKQ_URL", raising=False)
    return home


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[SQLiteBroker]:
    broker = SQLiteBroker(tmp_path / "queue.db")
    yield broker
    broker.close()


def _enqueue(broker: SQLiteBroker, task_id: str = "t1") -> None:
    broker.enqueue(EnqueueRequest(task_id, Q, b"payload"))


# -- URLs and the default file -------------------------------------------------------------
def test_core_registers_the_sqlite_broker() -> None:
    """The core plugin registers ``sqlite`` for the ``sqlite`` scheme, as any
    broker plugin registers its broker."""
    registry = get_registry()
    entry = registry.brokers["sqlite"]
    assert entry.plugin == "core"
    assert entry.schemes == ("sqlite",)
    assert entry.distribution == "taskq-core"
    assert registry.schemes["sqlite"] is entry
    assert get_broker_entry("sqlite:///x.db") is entry


def test_relative_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sqlite:///name.db`` is a file in the working directory, fixed when the
    broker is built (a later chdir does not move it)."""
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    brokers = [make_broker("sqlite:///queue.db"), make_broker("sqlite:///data/other.db")]
    monkeypatch.chdir("/")
    for broker in brokers:
        assert isinstance(broker, SQLiteBroker)
        _enqueue(broker)
        broker.close()
    assert [b.path for b in brokers if isinstance(b, SQLiteBroker)] == [
        tmp_path / "queue.db",
        tmp_path / "data" / "other.db",
    ]
    assert rows(brokers[0], "SELECT id FROM taskq_tasks") == [("t1",)]
    assert (tmp_path / "data" / "other.db").is_file()


def test_absolute_url_has_four_slashes(tmp_path: Path) -> None:
    """``sqlite:////abs/path.db`` names an absolute path; ``url`` gives it back."""
    target = tmp_path / "abs.db"
    broker = make_broker(f"sqlite:///{target}")
    assert isinstance(broker, SQLiteBroker)
    assert broker.path == target
    assert broker.url == f"sqlite:////{str(target).lstrip('/')}"
    _enqueue(broker)
    broker.close()
    assert target.is_file()
    assert SQLiteBroker(url=broker.url).path == target


def test_bare_url_and_no_url_use_the_default_file(home: Path) -> None:
    """``sqlite://``, ``--broker sqlite`` and ``SQLiteBroker()`` use the default
    file, ``~/.local/share/taskq/taskq.db`` without ``XDG_DATA_HOME``; its
    directory is created on first use."""
    expected = home / ".local" / "share" / "taskq" / "taskq.db"
    assert default_path() == expected
    brokers = [make_broker("sqlite://"), make_broker("sqlite"), SQLiteBroker()]
    assert [b.path for b in brokers if isinstance(b, SQLiteBroker)] == [expected] * 3
    tq = TaskQ(broker="sqlite://")
    assert not expected.exists()  # nothing is opened until it is used
    tq.broker.enqueue(EnqueueRequest("t1", Q, b"x"))
    assert expected.is_file()
    assert brokers[0].queue_sizes(Q)[State.QUEUED] == 1
    for broker in [*brokers, tq.broker]:
        broker.close()


def test_default_file_follows_xdg_data_home_and_the_override(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``$XDG_DATA_HOME/taskq/taskq.db``, unless ``TASKQ_SQLITE_PATH`` names
    the file (``~`` expanded, relative made absolute)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_path() == tmp_path / "data" / "taskq" / "taskq.db"
    monkeypatch.setenv(DEFAULT_PATH_ENV, "~/queues/main.db")
    assert default_path() == home / "queues" / "main.db"
    assert SQLiteBroker(url="sqlite://").path == home / "queues" / "main.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DEFAULT_PATH_ENV, "rel.db")
    assert default_path() == tmp_path / "rel.db"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://host/queue.db", "names a file, not a host"),
        ("sqlite:///queue.db?timeout=5", "takes no options"),
        ("sqlite:///:memory:", "use memory://"),
        ("sqlite:///file:queue.db?mode=memory", "takes no options"),
        ("sqlite:///file:queue.db", "use memory://"),
    ],
)
def test_bad_urls_are_clear_errors(url: str, message: str) -> None:
    """A host, query options or an in-memory database are refused with a
    ValueError saying why (the CLI shows it as a usage error)."""
    with pytest.raises(ValueError, match=message):
        make_broker(url)


def test_bad_options_are_clear_errors(tmp_path: Path) -> None:
    """Unknown options, a path and a URL together, another scheme or bad
    values raise TypeError or ValueError naming them."""
    with pytest.raises(TypeError, match="nope"):
        make_broker("sqlite://", nope=1)
    with pytest.raises(TypeError, match="not both"):
        SQLiteBroker(tmp_path / "a.db", url="sqlite:///b.db")
    with pytest.raises(ValueError, match="needs a sqlite:// URL"):
        SQLiteBroker(url="redis://localhost")
    with pytest.raises(ValueError, match="synchronous"):
        SQLiteBroker(tmp_path / "a.db", synchronous="sometimes")
    with pytest.raises(ValueError, match="timeout"):
        SQLiteBroker(tmp_path / "a.db", timeout=-1)
    with pytest.raises(ValueError, match="poll_interval"):
        SQLiteBroker(tmp_path / "a.db", poll_interval=0)


def test_missing_directory_of_a_named_file_is_an_error(tmp_path: Path) -> None:
    """A file in a directory that does not exist is a BrokerError naming the
    directory (not a retried outage), and nothing is created."""
    broker = SQLiteBroker(tmp_path / "no" / "such" / "dir" / "queue.db")
    with pytest.raises(BrokerError, match="does not exist") as raised:
        _enqueue(broker)
    assert not isinstance(raised.value, BrokerConnectionError)
    assert str(tmp_path / "no" / "such" / "dir") in str(raised.value)
    assert not (tmp_path / "no").exists()


def test_checked_arguments_raise_before_writing(broker: SQLiteBroker) -> None:
    """A bool or huge priority, a non-finite time, a payload that is not bytes
    or an unknown outcome is refused before anything is written."""
    for bad in (
        EnqueueRequest("a", Q, b"x", priority=True),
        EnqueueRequest("a", Q, b"x", priority=2**70),
        EnqueueRequest("a", Q, b"x", when=float("inf")),
        EnqueueRequest("a", Q, "text"),  # type: ignore[arg-type]
    ):
        with pytest.raises((TypeError, ValueError)):
            broker.enqueue(bad)
        with pytest.raises((TypeError, ValueError)):
            broker.enqueue_many([EnqueueRequest("ok", Q, b"x"), bad])
    assert broker.queue_sizes(Q)[State.QUEUED] == 0
    _enqueue(broker, "a")
    assert [t.id for t in broker.pop(Q, 1, "w1", 10)] == ["a"]
    with pytest.raises(ValueError, match="unknown outcome"):
        broker.finish(Q, "a", "w1", "vanish")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_stored_executions"):
        broker.finish(Q, "a", "w1", "error", max_stored_executions=-1)
    with pytest.raises(ValueError, match="when"):
        broker.update_scheduled_time(Q, "a", float("nan"))
    assert broker.queue_sizes(Q)[State.ACTIVE] == 1


# -- WAL, busy timeout ---------------------------------------------------------------------
def test_file_is_in_wal_mode_and_check_is_quiet(broker: SQLiteBroker) -> None:
    """The broker puts its file in WAL mode (a property of the file, seen by
    any other connection), so ``check()`` has nothing to warn about."""
    _enqueue(broker)
    assert rows(broker, "PRAGMA journal_mode") == [("wal",)]
    assert broker.check() == []


def test_setup_warnings_name_a_journal_mode_other_than_wal(tmp_path: Path) -> None:
    """A file that is not in WAL mode (a file system without shared memory
    refuses it) is named in a warning; WAL or an unknown mode is not."""
    path = tmp_path / "queue.db"
    (warning,) = setup_warnings(path, "delete")
    assert str(path) in warning
    assert "'delete'" in warning
    assert "'wal'" in warning
    assert setup_warnings(path, "WAL") == []
    assert setup_warnings(path, None) == []


def test_a_move_waits_for_another_writer(tmp_path: Path) -> None:
    """While another connection holds the write lock, a move waits (up to the
    busy timeout) and then succeeds: no ``database is locked``."""
    broker = SQLiteBroker(tmp_path / "queue.db")
    _enqueue(broker, "first")
    released = threading.Event()
    other_db = sqlite3.connect(broker.path, isolation_level=None, check_same_thread=False)
    with closing(other_db) as other:
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE taskq_tasks SET payload = payload")

        def release() -> None:
            released.wait(0.3)  # the broker is waiting on the lock meanwhile
            other.execute("COMMIT")

        thread = threading.Thread(target=release)
        thread.start()
        _enqueue(broker, "second")
        thread.join()
    assert broker.queue_sizes(Q)[State.QUEUED] == 2
    broker.close()


def test_a_move_past_the_busy_timeout_is_a_retried_outage(tmp_path: Path) -> None:
    """With no time to wait (timeout 0), a move that meets another writer fails
    with BrokerConnectionError (the worker backs off and retries) and writes
    nothing; once the lock is free it goes through."""
    broker = SQLiteBroker(tmp_path / "queue.db", timeout=0)
    _enqueue(broker, "first")
    with closing(sqlite3.connect(broker.path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(BrokerConnectionError, match="locked"):
            _enqueue(broker, "second")
        other.execute("ROLLBACK")
    assert broker.queue_sizes(Q)[State.QUEUED] == 1
    _enqueue(broker, "second")
    assert broker.queue_sizes(Q)[State.QUEUED] == 2
    broker.close()


def test_an_error_inside_a_move_rolls_all_of_it_back(broker: SQLiteBroker) -> None:
    """A batch of enqueues that fails part way (a payload the file refuses)
    leaves nothing behind: the move is one transaction."""
    _enqueue(broker, "kept")
    with outside(broker) as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON taskq_tasks "
            "WHEN new.id = 'bad' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    with pytest.raises(BrokerError, match="refused"):
        broker.enqueue_many([EnqueueRequest("good", Q, b"x"), EnqueueRequest("bad", Q, b"x")])
    assert rows(broker, "SELECT id FROM taskq_tasks") == [("kept",)]
    assert broker.queue_sizes(Q)[State.QUEUED] == 1
    _enqueue(broker, "good")
    assert broker.queue_sizes(Q)[State.QUEUED] == 2


# -- the schema ------------------------------------------------------------------------------
def test_a_new_file_gets_the_current_schema(broker: SQLiteBroker) -> None:
    """The first use creates every table and records the schema version."""
    _enqueue(broker)
    assert rows(broker, "SELECT version FROM taskq_schema") == [(SCHEMA_VERSION,)]
    tables = {name for (name,) in rows(broker, "SELECT name FROM sqlite_master")}
    assert {
        "taskq_tasks",
        "taskq_entries",
        "taskq_executions",
        "taskq_counts",
        "taskq_activity",
        "taskq_locks",
        "taskq_queue_slots",
        "taskq_system_locks",
        "taskq_rate_limits",
    } <= tables


def test_a_file_shared_with_other_tables_keeps_them(tmp_path: Path) -> None:
    """taskq adds its tables (all named ``taskq_*``) to a file that already
    holds an application's own, and leaves those alone."""
    path = tmp_path / "app.db"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE users (name TEXT)")
        db.execute("INSERT INTO users VALUES ('ada')")
    broker = SQLiteBroker(path)
    _enqueue(broker)
    assert rows(broker, "SELECT name FROM users") == [("ada",)]
    assert rows(broker, "SELECT count(*) FROM taskq_tasks") == [(1,)]
    broker.close()


def test_reopening_a_current_file_keeps_its_tasks(tmp_path: Path) -> None:
    """A second broker (a restarted worker) on a file at the current version
    changes nothing in the schema and sees the tasks."""
    first = SQLiteBroker(tmp_path / "queue.db")
    _enqueue(first)
    first.close()
    second = SQLiteBroker(tmp_path / "queue.db")
    assert second.queue_sizes(Q)[State.QUEUED] == 1
    assert rows(second, "SELECT version FROM taskq_schema") == [(SCHEMA_VERSION,)]
    second.close()


def test_an_older_schema_is_migrated_in_one_transaction(tmp_path: Path) -> None:
    """A file at an older version gets the steps it lacks, in order, and the
    new version; its tasks stay. (A later step is added to the real ones, as
    the next version of taskq will.)"""
    broker = SQLiteBroker(tmp_path / "queue.db")
    _enqueue(broker)
    broker.close()
    newer = (
        *MIGRATIONS,
        (
            "ALTER TABLE taskq_tasks ADD COLUMN note TEXT",
            "UPDATE taskq_tasks SET note = 'migrated'",
        ),
    )
    assert pending_sql(SCHEMA_VERSION, newer)[-1] == (
        f"UPDATE taskq_schema SET version = {SCHEMA_VERSION + 1}"
    )
    with closing(sqlite3.connect(broker.path, isolation_level=None)) as db:
        assert migrate(db, "queue.db", newer) == SCHEMA_VERSION
        assert migrate(db, "queue.db", newer) == SCHEMA_VERSION + 1  # nothing left to do
        assert db.execute("SELECT id, note FROM taskq_tasks").fetchall() == [("t1", "migrated")]
        assert db.execute("SELECT version FROM taskq_schema").fetchall() == [(SCHEMA_VERSION + 1,)]


def test_a_failing_migration_changes_nothing(tmp_path: Path) -> None:
    """A step that fails rolls every step of the migration back: the file
    keeps its version and its data."""
    broker = SQLiteBroker(tmp_path / "queue.db")
    _enqueue(broker)
    broker.close()
    newer = (*MIGRATIONS, ("ALTER TABLE taskq_tasks ADD COLUMN note TEXT", "SELECT nonsense("))
    with closing(sqlite3.connect(broker.path, isolation_level=None)) as db:
        with pytest.raises(sqlite3.OperationalError):
            migrate(db, "queue.db", newer)
        assert not db.in_transaction
        columns = [row[1] for row in db.execute("PRAGMA table_info(taskq_tasks)")]
        assert "note" not in columns
        assert db.execute("SELECT version FROM taskq_schema").fetchall() == [(SCHEMA_VERSION,)]


def test_pending_sql_of_a_new_file_creates_the_version_table_first() -> None:
    """What a new file needs: the version table, every step, the version
    (what ``taskq db upgrade --dry-run`` will print)."""
    statements = pending_sql(None)
    assert statements[0].startswith("CREATE TABLE taskq_schema")
    assert any(s.startswith("CREATE TABLE taskq_tasks") for s in statements)
    assert statements[-1] == f"UPDATE taskq_schema SET version = {SCHEMA_VERSION}"
    assert pending_sql(SCHEMA_VERSION) == []


def test_a_newer_schema_is_refused_with_a_clear_error(broker: SQLiteBroker) -> None:
    """A file whose schema is newer than this taskq knows is refused with a
    SchemaError naming the file, both versions and what to do; nothing is
    changed, and a fresh broker refuses it again."""
    _enqueue(broker)
    broker.close()
    with outside(broker) as db:
        db.execute("UPDATE taskq_schema SET version = ?", (SCHEMA_VERSION + 1,))
    again = SQLiteBroker(broker.path)
    with pytest.raises(SchemaError) as raised:
        again.queue_sizes(Q)
    message = str(raised.value)
    assert str(broker.path) in message
    assert f"version {SCHEMA_VERSION + 1}" in message
    assert f"version {SCHEMA_VERSION} this taskq knows" in message
    assert "upgrade taskq" in message
    with pytest.raises(SchemaError):
        SQLiteBroker(broker.path).pop(Q, 1, "w1", 10)
    assert rows(broker, "SELECT version FROM taskq_schema") == [(SCHEMA_VERSION + 1,)]
    assert rows(broker, "SELECT count(*) FROM taskq_tasks") == [(1,)]


@pytest.mark.parametrize("content", [[], ["x"], [1, 1], [-3]])
def test_an_unreadable_version_table_is_refused(tmp_path: Path, content: list[object]) -> None:
    """A ``taskq_schema`` table without exactly one version number is refused."""
    path = tmp_path / "queue.db"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE taskq_schema (version)")
        db.executemany("INSERT INTO taskq_schema VALUES (?)", [(v,) for v in content])
    with pytest.raises(SchemaError, match="taskq_schema"):
        SQLiteBroker(path).queue_sizes(Q)


def test_a_default_directory_that_cannot_be_created_is_an_error(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A default file whose directory cannot be created (a file is in the
    way) is a BrokerError naming the directory, not a retried outage."""
    (tmp_path / "in-the-way").write_text("")
    monkeypatch.setenv(DEFAULT_PATH_ENV, str(tmp_path / "in-the-way" / "queue.db"))
    broker = SQLiteBroker()
    with pytest.raises(BrokerError, match="cannot create") as raised:
        _enqueue(broker)
    assert not isinstance(raised.value, BrokerConnectionError)
    assert "in-the-way" in str(raised.value)


def _open_files(path: Path) -> int:
    """How many descriptors of this process are open on ``path``."""
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            if Path(os.readlink(fd)) == path:
                count += 1
        except OSError:
            continue
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_connections_of_ended_threads_are_closed(broker: SQLiteBroker) -> None:
    """Each thread gets its own connection; those of threads that have ended
    are closed when another is opened, so short-lived threads leak nothing."""
    _enqueue(broker, "main")
    for number in range(20):
        thread = threading.Thread(target=_enqueue, args=(broker, f"t{number}"))
        thread.start()
        thread.join()
    assert broker.queue_sizes(Q)[State.QUEUED] == 21
    assert _open_files(broker.path) <= 2  # this thread's and the last thread's
    broker.close()
    assert _open_files(broker.path) == 0


def test_a_closed_broker_reopens_on_next_use(broker: SQLiteBroker) -> None:
    """close() releases the connections; the next call opens a new one."""
    _enqueue(broker, "a")
    broker.close()
    _enqueue(broker, "b")
    assert broker.queue_sizes(Q)[State.QUEUED] == 2
