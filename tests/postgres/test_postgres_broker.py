"""What is specific to the PostgreSQL broker: its registration and URLs, its
options, the schema it creates or refuses (and ``taskq db upgrade``), the
server's clock, errors and outages, and safety across a fork."""

from __future__ import annotations

import os
import threading
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from pg_helpers import rows, sql

from taskq_core import TaskQ
from taskq_core.broker import EnqueueRequest
from taskq_core.cli import main
from taskq_core.exceptions import BrokerConnectionError, BrokerError, SchemaError
from taskq_core.plugins import get_broker_entry, get_registry, make_broker
from taskq_core.states import State
from taskq_postgres import CHANNEL, SCHEMA_VERSION, PostgresBroker, schema_statements
from taskq_postgres._schema import MIGRATIONS
from taskq_postgres.broker import public_url, setup_warnings

Q = "default"

pytestmark = pytest.mark.postgres


def _enqueue(broker: PostgresBroker, task_id: str = "t1", queue: str = Q) -> None:
    broker.enqueue(EnqueueRequest(task_id, queue, b"payload"))


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), prog_name="taskq")


class _NewerBroker(PostgresBroker):
    """A broker of a later taskq, which knows one more schema step."""

    _migrations = (
        *MIGRATIONS,
        (
            "ALTER TABLE taskq_tasks ADD COLUMN note text",
            "UPDATE taskq_tasks SET note = 'migrated'",
        ),
    )


# -- registration and URLs ---------------------------------------------------------------
def test_the_plugin_registers_the_postgres_broker() -> None:
    """The ``postgres`` plugin of taskq-postgres registers ``postgres`` for the
    ``postgresql`` and ``postgres`` schemes, as any broker plugin does."""
    registry = get_registry()
    entry = registry.brokers["postgres"]
    assert entry.plugin == "postgres"
    assert entry.schemes == ("postgresql", "postgres")
    assert entry.distribution == "taskq-postgres"
    assert registry.schemes["postgresql"] is entry
    assert registry.schemes["postgres"] is entry
    assert get_broker_entry("postgres://db.example/app") is entry


def test_both_schemes_and_the_name_make_a_working_broker(clean_url: str) -> None:
    """``postgresql://``, ``postgres://`` and ``TaskQ(URL)`` build the broker on
    that database; ``--broker postgres`` with no URL uses libpq's defaults
    (the ``PG*`` environment variables)."""
    other = clean_url.replace("postgresql://", "postgres://", 1)
    brokers = [make_broker(clean_url), make_broker(other), TaskQ(clean_url).broker]
    assert all(isinstance(b, PostgresBroker) for b in brokers)
    _enqueue(brokers[0], "a")  # type: ignore[arg-type]
    assert [b.queue_sizes(Q)[State.QUEUED] for b in brokers] == [1, 1, 1]
    for broker in brokers:
        broker.close()
    params = psycopg.conninfo.conninfo_to_dict(clean_url)
    env = {"PGHOST": params["host"], "PGPORT": params["port"], "PGUSER": params["user"]}
    env["PGDATABASE"] = params["dbname"]
    old = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        by_name = make_broker("postgres")
        assert by_name.queue_sizes(Q)[State.QUEUED] == 1
        by_name.close()
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key)
            else:
                os.environ[key] = value


def test_bad_urls_and_options_are_clear_errors() -> None:
    """Another scheme, a URL and a conninfo together, an unparsable URL or
    pool sizes that cannot work raise TypeError or ValueError saying why;
    nothing connects."""
    with pytest.raises(ValueError, match="needs a postgresql:// or postgres:// URL"):
        PostgresBroker("mysql://localhost/app")
    with pytest.raises(TypeError, match="not both"):
        PostgresBroker("postgresql://localhost/app", conninfo="dbname=app")
    with pytest.raises(ValueError, match="cannot read"):
        PostgresBroker("postgresql://localhost/app?nosuchoption=1")
    with pytest.raises(ValueError, match="pool_min_size"):
        PostgresBroker("postgresql://localhost/app", pool_min_size=5, pool_max_size=2)
    with pytest.raises(ValueError, match="pool_timeout"):
        PostgresBroker("postgresql://localhost/app", pool_timeout=0)
    with pytest.raises(TypeError, match="nope"):
        make_broker("postgresql://localhost/app", nope=1)
    with pytest.raises(TypeError, match="autocommit"):
        PostgresBroker("postgresql://localhost/app", autocommit=False)
    assert PostgresBroker("postgresql://localhost/app", sslmode="disable", prepare_threshold=None)


def test_messages_never_show_the_password() -> None:
    """``url``, ``repr`` and error messages name the database, not the password."""
    broker = PostgresBroker("postgresql://app:s3cret@127.0.0.1:1/appdb", connect_timeout=1)
    assert broker.url == "postgresql://app:***@127.0.0.1:1/appdb"
    assert "s3cret" not in repr(broker)
    assert public_url("postgresql://host/db") == "postgresql://host/db"
    with pytest.raises(BrokerConnectionError) as raised:
        broker.time()
    assert "appdb on 127.0.0.1:1" in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_an_unreachable_server_is_a_connection_error_with_the_reason(postgres_url: str) -> None:
    """A database that does not exist (or a server that refuses) fails the
    first use at once with BrokerConnectionError carrying the server's
    reason, not a pool timeout."""
    base, _ = postgres_url.rsplit("/", 1)
    broker = PostgresBroker(f"{base}/no_such_database")
    with pytest.raises(BrokerConnectionError, match="no_such_database"):
        _enqueue(broker)
    broker.close()


# -- the schema ------------------------------------------------------------------------------
def test_a_new_database_gets_the_current_schema(fresh_url: str) -> None:
    """The first use creates every table, the triggers and the version row;
    the statements are those :func:`schema_statements` gives."""
    broker = PostgresBroker(fresh_url)
    _enqueue(broker)
    assert rows(broker, "SELECT version FROM taskq_schema") == [(SCHEMA_VERSION,)]
    tables = {name for (name,) in rows(broker, "SELECT tablename FROM pg_tables")}
    assert {
        "taskq_schema",
        "taskq_tasks",
        "taskq_entries",
        "taskq_executions",
        "taskq_locks",
        "taskq_queue_slots",
        "taskq_system_locks",
        "taskq_rate_limits",
    } <= tables
    triggers = {name for (name,) in rows(broker, "SELECT tgname FROM pg_trigger")}
    assert {"taskq_entries_inserted", "taskq_entries_updated"} <= triggers
    statements = schema_statements(None)
    assert statements[0].startswith("CREATE TABLE taskq_schema")
    assert statements[-1] == f"UPDATE taskq_schema SET version = {SCHEMA_VERSION}"
    assert schema_statements(SCHEMA_VERSION) == []
    broker.close()


def test_workers_starting_together_create_the_schema_once(fresh_url: str) -> None:
    """Eight brokers using a new database at the same moment: one creates the
    schema, the others wait for it and use it; no error, one version row."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def start(number: int) -> None:
        broker = PostgresBroker(fresh_url)
        try:
            barrier.wait()
            _enqueue(broker, f"t{number}")
        except BaseException as exc:
            errors.append(exc)
        finally:
            broker.close()

    threads = [threading.Thread(target=start, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    broker = PostgresBroker(fresh_url)
    assert rows(broker, "SELECT version FROM taskq_schema") == [(SCHEMA_VERSION,)]
    assert broker.queue_sizes(Q)[State.QUEUED] == 8
    broker.close()


def test_an_older_schema_is_refused_naming_the_command(clean_url: str) -> None:
    """A database at an older version than this taskq writes is not migrated
    behind anyone's back: every use (a worker's start first) raises
    SchemaError naming ``taskq db upgrade``, and the schema is unchanged."""
    PostgresBroker(clean_url).close()
    _enqueue(older := PostgresBroker(clean_url))
    older.close()
    newer = _NewerBroker(clean_url)
    for use in (newer.check, lambda: _enqueue(newer, "t2")):
        with pytest.raises(SchemaError) as raised:
            use()
        message = str(raised.value)
        assert f"version {SCHEMA_VERSION}, older than the version {SCHEMA_VERSION + 1}" in message
        assert "`taskq db upgrade`" in message
    assert rows(newer, "SELECT version FROM taskq_schema") == [(SCHEMA_VERSION,)]
    newer.close()


def test_upgrade_schema_migrates_an_older_schema_in_one_transaction(clean_url: str) -> None:
    """``schema_plan`` lists the steps an older database lacks and changes
    nothing; ``upgrade_schema`` runs them and sets the version, keeping the
    tasks; afterwards the broker works and has nothing left to do."""
    broker = PostgresBroker(clean_url)
    _enqueue(broker)
    broker.close()
    newer = _NewerBroker(clean_url)
    plan = newer.schema_plan()
    assert (plan.stored, plan.current) == (SCHEMA_VERSION, SCHEMA_VERSION + 1)
    assert plan.statements == (
        "ALTER TABLE taskq_tasks ADD COLUMN note text",
        "UPDATE taskq_tasks SET note = 'migrated'",
        f"UPDATE taskq_schema SET version = {SCHEMA_VERSION + 1}",
    )
    assert rows(newer, "SELECT version FROM taskq_schema") == [(SCHEMA_VERSION,)]
    assert newer.upgrade_schema() == plan
    assert rows(newer, "SELECT id, note FROM taskq_tasks") == [("t1", "migrated")]
    assert newer.upgrade_schema().statements == ()
    assert newer.queue_sizes(Q)[State.QUEUED] == 1
    sql(newer, "ALTER TABLE taskq_tasks DROP COLUMN note")
    sql(newer, "UPDATE taskq_schema SET version = %s", SCHEMA_VERSION)
    newer.close()


def test_a_failing_migration_changes_nothing(clean_url: str) -> None:
    """A step that fails rolls back every step: the version and the tasks
    are as they were."""
    broker = PostgresBroker(clean_url)
    _enqueue(broker)
    broker.close()

    class Broken(PostgresBroker):
        _migrations = (*MIGRATIONS, ("ALTER TABLE taskq_tasks ADD COLUMN note text", "NONSENSE"))

    broken = Broken(clean_url)
    with pytest.raises(BrokerError, match="syntax error"):
        broken.upgrade_schema()
    columns = {c for (c,) in rows(broken, "SELECT column_name FROM information_schema.columns")}
    assert "note" not in columns
    assert rows(broken, "SELECT version FROM taskq_schema") == [(SCHEMA_VERSION,)]
    broken.close()


def test_a_newer_schema_is_refused(clean_url: str) -> None:
    """A database whose schema is newer than this taskq knows: every use and
    ``taskq db upgrade`` (dry or not) are refused with the versions and what
    to do, and nothing changes."""
    broker = PostgresBroker(clean_url)
    _enqueue(broker)
    sql(broker, "UPDATE taskq_schema SET version = %s", SCHEMA_VERSION + 1)
    broker.close()
    again = PostgresBroker(clean_url)
    for use in (again.check, lambda: _enqueue(again, "t2"), again.schema_plan):
        with pytest.raises(SchemaError, match="upgrade taskq-postgres") as raised:
            use()
        assert f"version {SCHEMA_VERSION + 1}, newer than" in str(raised.value)
    for extra in ((), ("--dry-run",)):
        result = invoke("db", "upgrade", "--url", clean_url, *extra)
        assert result.exit_code == 1
        assert "upgrade taskq-postgres" in result.output
    assert rows(again, "SELECT version FROM taskq_schema") == [(SCHEMA_VERSION + 1,)]
    sql(again, "UPDATE taskq_schema SET version = %s", SCHEMA_VERSION)
    again.close()


def test_a_damaged_version_table_is_a_schema_error(clean_url: str) -> None:
    """A version table that does not hold one version is refused as not
    taskq's (SchemaError naming the table)."""
    broker = PostgresBroker(clean_url)
    _enqueue(broker)
    sql(broker, "INSERT INTO taskq_schema VALUES (%s)", SCHEMA_VERSION)
    broker.close()
    again = PostgresBroker(clean_url)
    with pytest.raises(SchemaError, match="taskq_schema"):
        again.time()
    sql(again, "DELETE FROM taskq_schema")
    sql(again, "INSERT INTO taskq_schema VALUES (%s)", SCHEMA_VERSION)
    again.close()


def test_db_upgrade_dry_run_prints_the_sql_and_changes_nothing(fresh_url: str) -> None:
    """``taskq db upgrade --dry-run --url postgresql://...`` on a database
    without taskq's tables prints every CREATE statement and creates nothing;
    ``taskq db upgrade`` then creates them; run again it has nothing to do."""
    dry = invoke("db", "upgrade", "--dry-run", "--url", fresh_url)
    assert dry.exit_code == 0, dry.output
    assert "version none; taskq writes version 1." in dry.output.splitlines()[0]
    assert "CREATE TABLE taskq_tasks (" in dry.output
    assert "CREATE TRIGGER taskq_entries_inserted" in dry.output
    with psycopg.connect(fresh_url) as conn:
        found = conn.execute("SELECT to_regclass('taskq_schema')").fetchone()
    assert found == (None,)
    done = invoke("db", "upgrade", "--url", fresh_url)
    assert done.exit_code == 0, done.output
    assert done.output.startswith("Created the taskq schema (version 1) in taskq_fresh_")
    again = invoke("db", "upgrade", "--url", fresh_url)
    assert again.exit_code == 0
    assert again.output.endswith("is at version 1: nothing to do.\n")


def test_db_upgrade_cannot_reach_the_server_is_a_clear_error() -> None:
    """An unreachable server is an error message and exit 1, not a traceback."""
    result = invoke("db", "upgrade", "--url", "postgresql://127.0.0.1:1/app?connect_timeout=1")
    assert result.exit_code == 1
    assert "app on 127.0.0.1:1" in result.output
    assert "Traceback" not in result.output


# -- clock, checks, outages ---------------------------------------------------------------
def test_the_clock_is_the_servers(pg_broker: PostgresBroker) -> None:
    """``time()`` is the server's clock_timestamp(), and a task's stamps come
    from the same clock (between two readings of it)."""
    before = pg_broker.time()
    _enqueue(pg_broker)
    after = pg_broker.time()
    (server_now,) = rows(pg_broker, "SELECT extract(epoch FROM clock_timestamp())::float8")[0]
    task = pg_broker.get_task(Q, State.QUEUED, "t1")
    assert before <= task.ts <= after <= server_now
    assert task.scheduled_at == task.time_last_queued == task.ts


def test_check_listens_and_warns_about_old_servers(pg_broker: PostgresBroker) -> None:
    """``check()`` (a worker's start) has nothing to say about this server,
    and starts listening: a task queued right after it is announced."""
    assert pg_broker.check() == []
    other = PostgresBroker(pg_broker._connections.conninfo)
    _enqueue(other)
    other.close()
    assert pg_broker.wait_for_activity(5) == {Q}
    assert setup_warnings(110005) == ["PostgreSQL 11 is older than 12, which taskq needs"]
    assert setup_warnings(150002) == []


def test_a_lost_connection_is_an_outage_and_the_next_call_works(
    pg_broker: PostgresBroker,
) -> None:
    """Decision 10: when the server ends the broker's sessions (a restart, a
    failover), the next call fails with BrokerConnectionError (the worker
    backs off and retries) and the one after works on new connections; the
    listener reconnects too."""
    _enqueue(pg_broker)
    pg_broker.wait_for_activity(0.01)
    sql(
        pg_broker,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'taskq' AND pid <> pg_backend_pid()",
    )
    with pytest.raises(BrokerConnectionError):
        _enqueue(pg_broker, "t2")
    with pytest.raises(BrokerConnectionError):
        pg_broker.wait_for_activity(0.1)
    _enqueue(pg_broker, "t3")
    assert pg_broker.queue_sizes(Q)[State.QUEUED] == 2
    pg_broker.wait_for_activity(0.01)  # listening again
    other = PostgresBroker(pg_broker._connections.conninfo)
    _enqueue(other, "t4")
    other.close()
    assert Q in pg_broker.wait_for_activity(5)


def test_a_statement_the_server_refuses_is_a_broker_error(pg_broker: PostgresBroker) -> None:
    """A move the database refuses (here a trigger another program added)
    raises BrokerError, not a retried outage, and writes nothing."""
    _enqueue(pg_broker)
    sql(
        pg_broker,
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'refused by policy'; END $$",
    )
    sql(pg_broker, "CREATE TRIGGER refuse BEFORE INSERT ON taskq_tasks EXECUTE FUNCTION refuse()")
    try:
        with pytest.raises(BrokerError, match="refused by policy") as raised:
            pg_broker.enqueue_many([EnqueueRequest(f"n{i}", Q, b"x") for i in range(3)])
        assert not isinstance(raised.value, BrokerConnectionError)
        assert pg_broker.queue_sizes(Q)[State.QUEUED] == 1
    finally:
        sql(pg_broker, "DROP TRIGGER refuse ON taskq_tasks")
        sql(pg_broker, "DROP FUNCTION refuse()")


def test_checked_arguments_raise_before_writing(pg_broker: PostgresBroker) -> None:
    """A bool or huge priority, a non-finite time, a payload that is not
    bytes, a NUL in an id or an unknown outcome is refused before anything
    is written."""
    for bad in (
        EnqueueRequest("a", Q, b"x", priority=True),
        EnqueueRequest("a", Q, b"x", priority=2**70),
        EnqueueRequest("a", Q, b"x", when=float("inf")),
        EnqueueRequest("a\x00b", Q, b"x"),
        EnqueueRequest("a", Q, "text"),  # type: ignore[arg-type]
    ):
        with pytest.raises((TypeError, ValueError)):
            pg_broker.enqueue(bad)
        with pytest.raises((TypeError, ValueError)):
            pg_broker.enqueue_many([EnqueueRequest("ok", Q, b"x"), bad])
    assert pg_broker.queue_sizes(Q)[State.QUEUED] == 0
    _enqueue(pg_broker, "a")
    assert [t.id for t in pg_broker.pop(Q, 1, "w1", 10)] == ["a"]
    with pytest.raises(ValueError, match="unknown outcome"):
        pg_broker.finish(Q, "a", "w1", "vanish")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_stored_executions"):
        pg_broker.finish(Q, "a", "w1", "error", max_stored_executions=-1)
    with pytest.raises(ValueError, match="when"):
        pg_broker.update_scheduled_time(Q, "a", float("nan"))
    assert pg_broker.queue_sizes(Q)[State.ACTIVE] == 1


def test_the_columns_refuse_values_taskq_could_not_read(pg_broker: PostgresBroker) -> None:
    """Decision 19 by construction: another program cannot store a score or
    time that is not a finite number, an unknown state or a negative count
    (the database refuses), so no task of taskq's can become unreadable."""
    _enqueue(pg_broker)
    for statement in (
        "UPDATE taskq_entries SET score = 'NaN'",
        "UPDATE taskq_entries SET score = 'Infinity'",
        "UPDATE taskq_entries SET state = 'lost'",
        "UPDATE taskq_tasks SET executions_count = -1",
        "UPDATE taskq_tasks SET scheduled_at = '-Infinity'",
    ):
        with pytest.raises(psycopg.errors.CheckViolation):
            sql(pg_broker, statement)
    assert pg_broker.get_task(Q, State.QUEUED, "t1").meta_error is None


def test_an_unreadable_execution_record_is_shown_as_such(pg_broker: PostgresBroker) -> None:
    """A record overwritten with bytes that are not msgpack comes back as
    ``{"unreadable": ...}``; the task stays readable and can be retried."""
    _enqueue(pg_broker)
    pg_broker.pop(Q, 1, "w1", 10)
    pg_broker.finish(Q, "t1", "w1", "error", execution={"exception_name": "x:Y"})
    sql(pg_broker, "UPDATE taskq_executions SET record = '\\xc1'::bytea")
    task = pg_broker.get_task(Q, State.ERROR, "t1", load_executions=-1)
    assert list(task.executions[0]) == ["unreadable"]
    pg_broker.retry_from_error(Q, "t1")
    assert pg_broker.queue_sizes(Q)[State.QUEUED] == 1


# -- fork -----------------------------------------------------------------------------------
def test_a_forked_child_uses_connections_of_its_own(pg_broker: PostgresBroker) -> None:
    """A child forked after the parent used the broker (its pool and its
    listener) enqueues on connections of its own; the parent's connections
    are untouched and keep working afterwards."""
    _enqueue(pg_broker, "parent")
    pg_broker.wait_for_activity(0.01)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 1
        try:
            pg_broker.enqueue(EnqueueRequest("child", Q, b"x"))
            status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    _enqueue(pg_broker, "parent2")
    assert {t.id for t in pg_broker.list_tasks(Q, State.QUEUED)[1]} == {
        "parent",
        "child",
        "parent2",
    }
    assert pg_broker.wait_for_activity(5) == {Q}


def test_the_channel_is_the_one_the_triggers_notify() -> None:
    """Workers listen on the channel the triggers notify."""
    assert CHANNEL == "taskq_activity"
    assert any(f"pg_notify('{CHANNEL}'" in s for s in schema_statements(None))
