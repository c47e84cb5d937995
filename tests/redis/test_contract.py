"""The Redis broker passes the whole broker contract suite."""

from __future__ import annotations

import pytest
from redis_helpers import drop_task_data as _drop

from taskq_core.broker import Broker
from taskq_core.testing.contract import BrokerContractTests, DropTaskData
from taskq_redis import RedisBroker


class TestRedisContract(BrokerContractTests):
    """Every contract test, against a private Redis server."""

    @pytest.fixture
    def broker(self, redis_broker: RedisBroker) -> Broker:
        return redis_broker

    @pytest.fixture
    def drop_task_data(self) -> DropTaskData | None:
        return _drop
