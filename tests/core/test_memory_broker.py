"""The memory broker: the broker contract suite, the stateful model test, and
what is specific to the in-process broker (its clock, options, helpers)."""

from __future__ import annotations

import pytest

from taskq_core.broker import Broker
from taskq_core.brokers.memory import MemoryBroker
from taskq_core.testing.contract import BrokerContractTests, DropTaskData


def _drop(broker: Broker, queue: str, task_id: str) -> None:
    assert isinstance(broker, MemoryBroker)
    broker._drop_data(queue, task_id)


class TestMemoryContract(BrokerContractTests):
    """The memory broker passes the whole broker contract."""

    @pytest.fixture
    def broker(self) -> Broker:
        return MemoryBroker()

    @pytest.fixture
    def drop_task_data(self) -> DropTaskData | None:
        return _drop
