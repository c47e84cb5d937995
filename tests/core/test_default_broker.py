"""The default broker: with no broker named (no ``broker=``, no ``TASKQ_URL``,
no ``--url``/``--broker``) taskq uses the SQLite broker on its default file,
and a worker says so once when it starts. The test session has a default
file of its own (``tests/conftest.py``), never the user's."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import sqlite_worker_app
import tasks_fixture as tf
from structlog.testing import capture_logs

from taskq_core import TaskQ
from taskq_core.broker import Broker
from taskq_core.brokers.memory import MemoryBroker
from taskq_core.brokers.sqlite import DEFAULT_PATH_ENV, SQLiteBroker, default_path
from taskq_core.plugins import DEFAULT_BROKER_URL, make_broker
from taskq_core.worker.loop import CHOOSE_A_BROKER

HERE = Path(__file__).resolve().parent
DEFAULT_EVENT = "using the default broker"


@pytest.fixture
def own_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ``TASKQ_URL``, and a default file of this test's own (not created)."""
    path = tmp_path / "default" / "taskq.db"
    path.parent.mkdir()
    monkeypatch.delenv("TASKQ_URL", raising=False)
    monkeypatch.setenv(DEFAULT_PATH_ENV, str(path))
    return path


def _sqlite_path(broker: Broker) -> Path:
    assert isinstance(broker, SQLiteBroker), broker
    return broker.path


# -- the session's own default file ------------------------------------------------------------
def test_the_test_session_never_uses_the_users_default_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``TASKQ_SQLITE_PATH`` names a file in a temporary directory of this
    session, not the user's default file, for this process and for every
    process a test starts; a default broker in a test writes there."""
    session_file = Path(os.environ[DEFAULT_PATH_ENV])
    assert session_file.parent.name.startswith("taskq-tests-")
    assert session_file.parent.parent == Path(tempfile.gettempdir())
    assert default_path() == session_file
    code = "from taskq_core.brokers.sqlite import default_path; print(default_path())"
    child = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert child.stdout.strip() == str(session_file)

    monkeypatch.delenv("TASKQ_URL", raising=False)
    tq = TaskQ()
    task = tq.delay(tf.noop, queue="isolation-check", when=dt.timedelta(hours=1))
    assert _sqlite_path(tq.broker) == session_file
    on_file = TaskQ(f"sqlite:///{session_file}")
    assert on_file.get_queue_sizes("isolation-check")["scheduled"] == 1
    task.cancel()  # leave the session's file as it was
    for app in (tq, on_file):
        app.broker.close()

    with monkeypatch.context() as without:  # what the default would be without the session's
        without.delenv(DEFAULT_PATH_ENV)
        users_file = default_path()
    assert users_file != session_file
    assert session_file.parent not in users_file.parents


# -- which broker ------------------------------------------------------------------------------
def test_with_no_broker_named_the_broker_is_the_default_sqlite_file(own_default: Path) -> None:
    """``TaskQ()`` and ``make_broker()`` with no ``TASKQ_URL``: the SQLite
    broker on the default file, created only on first use."""
    assert DEFAULT_BROKER_URL == "sqlite://"
    tq = TaskQ(config={"DEFAULT_QUEUE": "mine"})
    assert _sqlite_path(tq.broker) == own_default
    assert _sqlite_path(make_broker()) == own_default
    assert not own_default.exists()  # nothing opened yet
    tq.delay(tf.noop)
    assert tq.get_queue_sizes("mine")["queued"] == 1
    assert own_default.is_file()
    tq.broker.close()


def test_broker_options_without_a_broker_go_to_the_default(own_default: Path) -> None:
    """Broker options with no broker named are the default broker's: the
    SQLite broker's own are taken, others are a TypeError that names them."""
    broker = TaskQ(poll_interval=0.5).broker
    assert isinstance(broker, SQLiteBroker)
    assert broker.poll_interval == 0.5
    with pytest.raises(TypeError, match="host"):
        TaskQ(host="localhost").broker  # noqa: B018


def test_a_named_broker_beats_the_default(
    own_default: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broker argument (URL or object) or ``TASKQ_URL`` names the broker;
    the default file is then never touched."""
    other = tmp_path / "other.db"
    apps = [TaskQ("memory://"), TaskQ(broker=MemoryBroker()), TaskQ(f"sqlite:///{other}")]
    monkeypatch.setenv("TASKQ_URL", "memory://")
    apps.append(TaskQ())
    assert isinstance(make_broker(), MemoryBroker)
    kinds = [type(app.broker).__name__ for app in apps]
    assert kinds == ["MemoryBroker", "MemoryBroker", "SQLiteBroker", "MemoryBroker"]
    for app in apps:
        app.delay(tf.noop)
    assert _sqlite_path(apps[2].broker) == other
    assert other.is_file()
    assert not own_default.exists()
    apps[2].broker.close()


# -- what the worker says ----------------------------------------------------------------------
def _worker_events(tq: TaskQ) -> list[dict[str, Any]]:
    """The log events of a burst worker (sync executor) on ``tq``."""
    with capture_logs() as events:
        tq.run_worker(burst=True, executor="sync")
    return events


def test_a_worker_on_the_default_broker_says_so_once(own_default: Path) -> None:
    """Before ``ready``, one info event names the default broker, its file
    and how to choose another; ``ready`` names the broker; the task runs."""
    tq = TaskQ()
    tq.delay(tf.noop)
    tq.delay(tf.noop)
    events = _worker_events(tq)
    names = [e["event"] for e in events]
    assert names.count(DEFAULT_EVENT) == 1
    assert names.index(DEFAULT_EVENT) < names.index("ready")
    said = events[names.index(DEFAULT_EVENT)]
    assert said["log_level"] == "info"
    assert said["broker"] == "sqlite"
    assert said["file"] == str(own_default)
    assert said["hint"] == CHOOSE_A_BROKER
    for way in ("--url", "--broker", "TASKQ_URL", "TaskQ(broker=...)", DEFAULT_PATH_ENV):
        assert way in CHOOSE_A_BROKER
    assert events[names.index("ready")]["broker"] == "sqlite"
    assert tq.get_queue_sizes("default") == {"queued": 0, "scheduled": 0, "active": 0}
    tq.broker.close()


@pytest.mark.parametrize("how", ["argument", "TASKQ_URL"])
def test_naming_sqlite_default_url_is_the_default_broker(
    own_default: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """``sqlite://`` (as an argument or in ``TASKQ_URL``) is the default broker
    itself: the worker says so the same way."""
    if how == "TASKQ_URL":
        monkeypatch.setenv("TASKQ_URL", "sqlite://")
        tq = TaskQ()
    else:
        tq = TaskQ("sqlite://")
    events = _worker_events(tq)
    (said,) = [e for e in events if e["event"] == DEFAULT_EVENT]
    assert said["file"] == str(own_default)
    tq.broker.close()


def test_a_worker_on_a_named_broker_does_not_mention_the_default(
    own_default: Path, tmp_path: Path
) -> None:
    """On ``memory://``, a SQLite file of its own, or an app whose broker the
    command line replaced (``_use_broker``), ``ready`` names the broker and
    nothing mentions the default."""
    replaced = TaskQ()
    replaced._use_broker(MemoryBroker())
    apps = {"memory": TaskQ("memory://"), "sqlite": TaskQ(f"sqlite:///{tmp_path / 'q.db'}")}
    for name, tq in [*apps.items(), ("memory", replaced)]:
        events = _worker_events(tq)
        assert DEFAULT_EVENT not in [e["event"] for e in events]
        (ready,) = [e for e in events if e["event"] == "ready"]
        assert ready["broker"] == name
    apps["sqlite"].broker.close()
    assert not own_default.exists()


# -- the command line --------------------------------------------------------------------------
def _env(tmp_path: Path) -> dict[str, str]:
    """This process's environment (the test's default file, no TASKQ_URL),
    this folder importable, traces under ``tmp_path``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    env["TASKQ_TEST_DIR"] = str(tmp_path)
    return env


def _taskq(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "taskq_core.cli", *args],
        env=_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def _traced(tmp_path: Path) -> list[str]:
    done = tmp_path / "done"
    return [line.split()[0] for line in done.read_text().splitlines()] if done.exists() else []


@pytest.mark.slow
def test_taskq_commands_with_no_broker_named_use_the_default_file(
    own_default: Path, tmp_path: Path
) -> None:
    """``taskq stats`` and ``taskq worker -m module --burst`` with no URL
    anywhere work on the default file; the worker's log says so once, with
    the file."""
    tq = TaskQ()
    tq.delay(sqlite_worker_app.trace, args=["by-default"])
    stats = _taskq(tmp_path, "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout) == {"default": {"queued": 1}}

    worker = _taskq(tmp_path, "worker", "-m", "sqlite_worker_app", "--burst", "--executor", "sync")
    assert worker.returncode == 0, worker.stderr
    events = _events(worker.stderr)
    (said,) = [e for e in events if e["event"] == DEFAULT_EVENT]
    assert said["file"] == str(own_default)
    assert said["hint"] == CHOOSE_A_BROKER
    assert _traced(tmp_path) == ["by-default"]
    assert tq.get_queue_stats() == {}
    tq.broker.close()


@pytest.mark.slow
def test_command_line_url_replaces_the_default_of_an_app(own_default: Path, tmp_path: Path) -> None:
    """Decision 11 with the default: ``--app`` of an app that names no broker
    works on the default file, and with ``--url`` on the command line on
    that URL instead (the default file's task stays, and no default is
    mentioned)."""
    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    on_default, on_other = TaskQ(), TaskQ(other_url)
    on_default.delay(sqlite_worker_app.trace, args=["in-default"])
    on_other.delay(sqlite_worker_app.trace, args=["in-other"])
    app = ("--app", "sqlite_worker_app:tq", "--burst", "--executor", "sync")

    worker = _taskq(tmp_path, "worker", *app, "--url", other_url)
    assert worker.returncode == 0, worker.stderr
    assert DEFAULT_EVENT not in [e["event"] for e in _events(worker.stderr)]
    assert _traced(tmp_path) == ["in-other"]
    assert on_default.get_queue_stats() == {"default": {"queued": 1}}

    worker = _taskq(tmp_path, "worker", *app)
    assert worker.returncode == 0, worker.stderr
    assert DEFAULT_EVENT in [e["event"] for e in _events(worker.stderr)]
    assert _traced(tmp_path) == ["in-other", "in-default"]
    assert on_default.get_queue_stats() == {}
    for tq in (on_default, on_other):
        tq.broker.close()
