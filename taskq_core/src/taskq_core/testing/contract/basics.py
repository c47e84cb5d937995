"""A fresh broker: its clock, and no tasks anywhere."""

from __future__ import annotations

from taskq_core.broker import Broker
from taskq_core.states import STATES
from taskq_core.testing.contract._base import FAR, ContractBase, Q

__all__ = ["BasicsContract"]


class BasicsContract(ContractBase):
    """Tests of a fresh broker."""

    def test_time_is_float_epoch_and_does_not_go_back(self, broker: Broker) -> None:
        """time() is a float number of epoch seconds that does not decrease."""
        first = broker.time()
        second = broker.time()
        assert isinstance(first, float)
        assert first > 1_000_000_000
        assert second >= first

    def test_empty_broker_has_no_tasks(self, broker: Broker) -> None:
        """A fresh broker reports zero tasks in all four states and no queues."""
        assert broker.queue_sizes(Q) == dict.fromkeys(STATES, 0)
        for state in STATES:
            assert Q not in broker.queues(state)
            assert broker.list_tasks(Q, state) == (0, [])
        assert broker.expired_tasks(broker.time() + FAR, 100) == []
        assert broker.pop(Q, 10, "w1", FAR) == []
        assert broker.move_due(Q, 100) == 0
