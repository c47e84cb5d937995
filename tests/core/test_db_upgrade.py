"""``taskq db upgrade [--dry-run]`` with core's brokers: the SQLite file's
schema is created or migrated (or only printed), a broker without a schema
says so, and ``tq.delay(..., connection=)`` is refused by brokers that cannot
write in the caller's transaction."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from taskq_core import Task, TaskQ
from taskq_core.brokers.sqlite import SCHEMA_VERSION, SQLiteBroker
from taskq_core.cli import main
from taskq_core.states import State

RAN: list[int] = []


def record(n: int) -> None:
    """A task function."""
    RAN.append(n)


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, list(args), prog_name="taskq", env=env)


def _tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _version(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        value: int = db.execute("SELECT version FROM taskq_schema").fetchone()[0]
    return value


def test_memory_broker_keeps_no_schema() -> None:
    """With a broker that keeps no schema, both forms say so and exit 0."""
    for args in (("--url", "memory://"), ("--url", "memory://", "--dry-run")):
        result = invoke("db", "upgrade", *args)
        assert result.exit_code == 0, result.output
        assert result.output == "The memory broker keeps no schema: nothing to upgrade.\n"


def test_dry_run_on_a_new_file_prints_the_schema_and_creates_nothing(tmp_path: Path) -> None:
    """``--dry-run`` on a file that does not exist prints the version table,
    every CREATE TABLE and the version it sets, and creates no file."""
    path = tmp_path / "queue.db"
    result = invoke("db", "upgrade", "--dry-run", "--url", f"sqlite:///{path}")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (
        f"-- The taskq schema of {path} is at version none; taskq writes version {SCHEMA_VERSION}."
    )
    assert "CREATE TABLE taskq_schema (version INTEGER NOT NULL);" in lines
    assert any(line.startswith("CREATE TABLE taskq_tasks (") for line in lines)
    assert lines[-1] == f"UPDATE taskq_schema SET version = {SCHEMA_VERSION};"
    assert not path.exists()


def test_upgrade_creates_the_schema_then_has_nothing_to_do(tmp_path: Path) -> None:
    """``taskq db upgrade`` creates the tables of a new file (found through
    TASKQ_URL as ``taskq worker`` finds it); run again, and with
    ``--dry-run``, it has nothing to do."""
    path = tmp_path / "queue.db"
    env = {"TASKQ_URL": f"sqlite:///{path}"}
    result = invoke("db", "upgrade", env=env)
    assert result.exit_code == 0, result.output
    assert result.output == f"Created the taskq schema (version {SCHEMA_VERSION}) in {path}.\n"
    assert {"taskq_schema", "taskq_tasks", "taskq_entries"} <= _tables(path)
    assert _version(path) == SCHEMA_VERSION
    nothing = f"The taskq schema of {path} is at version {SCHEMA_VERSION}: nothing to do."
    again = invoke("db", "upgrade", env=env)
    assert (again.exit_code, again.output) == (0, nothing + "\n")
    dry = invoke("db", "upgrade", "--dry-run", env=env)
    assert (dry.exit_code, dry.output) == (0, f"-- {nothing}\n")


def test_upgrade_migrates_an_older_file(tmp_path: Path) -> None:
    """A file at an older version (0: the version table without the tables)
    is shown the steps it lacks by ``--dry-run`` (without the version table,
    which it has) and is migrated by ``taskq db upgrade``."""
    path = tmp_path / "queue.db"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE taskq_schema (version INTEGER NOT NULL)")
        db.execute("INSERT INTO taskq_schema VALUES (0)")
    url = f"sqlite:///{path}"
    dry = invoke("db", "upgrade", "--dry-run", "--url", url)
    assert dry.exit_code == 0, dry.output
    assert "version 0;" in dry.output.splitlines()[0]
    assert "CREATE TABLE taskq_schema" not in dry.output
    assert "CREATE TABLE taskq_tasks (" in dry.output
    assert _tables(path) == {"taskq_schema"}
    result = invoke("db", "upgrade", "--url", url)
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"Upgraded the taskq schema of {path} from version 0 to {SCHEMA_VERSION}.\n"
    )
    assert _version(path) == SCHEMA_VERSION
    assert "taskq_entries" in _tables(path)


def test_a_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    """A file whose schema is newer than this taskq knows: both forms exit 1
    with the versions and what to do, and change nothing."""
    path = tmp_path / "queue.db"
    SQLiteBroker(path).upgrade_schema()
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE taskq_schema SET version = ?", (SCHEMA_VERSION + 1,))
    for extra in ((), ("--dry-run",)):
        result = invoke("db", "upgrade", "--url", f"sqlite:///{path}", *extra)
        assert result.exit_code == 1
        assert f"version {SCHEMA_VERSION + 1}" in result.output
        assert "upgrade taskq-core" in result.output
    assert _version(path) == SCHEMA_VERSION + 1


def test_upgrade_with_an_unknown_broker_is_a_usage_error() -> None:
    """An unknown broker name is a clear error (exit 1), as for taskq worker."""
    result = invoke("db", "upgrade", "--broker", "nosuch")
    assert result.exit_code == 1
    assert 'Unknown broker "nosuch"' in result.output


def test_plans_of_the_sqlite_broker(tmp_path: Path) -> None:
    """``schema_plan`` reads without creating; ``upgrade_schema`` returns
    what it ran; a broker's first use afterwards finds the schema current."""
    broker = SQLiteBroker(tmp_path / "queue.db")
    plan = broker.schema_plan()
    assert (plan.stored, plan.current, plan.where) == (None, SCHEMA_VERSION, str(broker.path))
    assert not broker.path.exists()
    done = broker.upgrade_schema()
    assert done == plan
    assert broker.upgrade_schema().statements == ()
    assert broker.schema_plan().stored == SCHEMA_VERSION
    tq = TaskQ(broker)
    tq.delay(record, args=[1])
    assert tq.get_queue_sizes("default")["queued"] == 1
    broker.close()


@pytest.mark.parametrize("url", ["memory://", "sqlite"])
def test_delay_on_a_connection_is_refused_by_brokers_that_cannot(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tq.delay(..., connection=)`` and ``Task.delay(connection=)`` with a
    broker that keeps its tasks elsewhere raise TypeError naming the broker
    and enqueue nothing."""
    monkeypatch.setenv("TASKQ_SQLITE_PATH", str(tmp_path / "queue.db"))
    tq = TaskQ(url)
    connection = sqlite3.connect(":memory:")
    with pytest.raises(TypeError, match=f"the {tq.broker.name} broker cannot enqueue"):
        tq.delay(record, args=[1], connection=connection)
    with pytest.raises(TypeError, match="connection=Connection object"):
        Task(tq, record, args=[2]).delay(connection=connection)
    assert tq.broker.queue_sizes("default")[State.QUEUED] == 0
    tq.broker.close()
    connection.close()


def test_delay_on_a_connection_runs_at_once_when_eager() -> None:
    """With ALWAYS_EAGER the task runs inline (no broker is written), so a
    connection is not needed and not refused."""
    tq = TaskQ("memory://", config={"ALWAYS_EAGER": True})
    RAN.clear()
    tq.delay(record, args=[7], connection=object())
    assert RAN == [7]
