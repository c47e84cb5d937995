"""Due tasks: ``move_due`` moves scheduled tasks that are due to ``queued``,
in priority and due-time order."""

from __future__ import annotations

import time

from taskq_core.broker import Broker
from taskq_core.states import State
from taskq_core.testing.contract._base import (
    FAR,
    OTHER,
    ContractBase,
    Q,
    _announced,
    _drain_activity,
    _ids,
    _make_due,
    _req,
    _states_of,
)

__all__ = ["MoveDueContract"]


class MoveDueContract(ContractBase):
    """Tests of ``move_due``."""

    # -- move_due --------------------------------------------------------------
    def test_move_due_moves_only_due_tasks(self, broker: Broker) -> None:
        """move_due queues the scheduled tasks due by now, at their due time,
        leaves future ones, and returns how many moved."""
        now = broker.time()
        for task_id in ("a", "b", "future"):
            broker.enqueue(_req(task_id, when=now + FAR))
        due_a = _make_due(broker, "a", ago=5)
        due_b = _make_due(broker, "b", ago=10)
        _drain_activity(broker)
        assert broker.move_due(Q, 100) == 2
        assert broker.get_task(Q, State.QUEUED, "a").ts == due_a
        assert broker.get_task(Q, State.QUEUED, "b").ts == due_b
        assert _states_of(broker, Q, "future") == {State.SCHEDULED}
        assert broker.move_due(Q, 100) == 0
        assert _announced(broker, Q)

    def test_move_due_keeps_priority_and_due_order(self, broker: Broker) -> None:
        """Moved tasks keep their priority and run in due-time order, ahead of
        tasks queued after their due time."""
        now = broker.time()
        for task_id, priority in (("late", 0), ("early", 0), ("urgent", 3)):
            broker.enqueue(_req(task_id, when=now + FAR, priority=priority))
        _make_due(broker, "late", ago=1)
        _make_due(broker, "early", ago=20)
        _make_due(broker, "urgent", ago=2)
        broker.enqueue(_req("fresh"))
        assert broker.move_due(Q, 100) == 3
        assert broker.get_task(Q, State.QUEUED, "urgent").priority == 3
        assert _ids(broker.pop(Q, 10, "w1", FAR)) == ["urgent", "early", "late", "fresh"]

    def test_move_due_respects_limit_oldest_first(self, broker: Broker) -> None:
        """move_due moves at most ``limit`` tasks, the earliest due first."""
        now = broker.time()
        for i in range(4):
            broker.enqueue(_req(f"t{i}", when=now + FAR))
            _make_due(broker, f"t{i}", ago=10 - i)
        assert broker.move_due(Q, 3) == 3
        assert _ids(broker.list_tasks(Q, State.QUEUED)[1]) == ["t0", "t1", "t2"]
        assert broker.move_due(Q, 3) == 1
        assert broker.move_due(Q, 3) == 0

    def test_move_due_after_real_wait(self, broker: Broker) -> None:
        """A task scheduled a moment ahead becomes due by the broker's clock."""
        broker.enqueue(_req("soon", when=broker.time() + 0.05))
        assert broker.move_due(Q, 10) == 0
        time.sleep(0.1)
        assert broker.move_due(Q, 10) == 1
        assert _ids(broker.pop(Q, 1, "w1", FAR)) == ["soon"]

    def test_move_due_takes_only_its_own_queue(self, broker: Broker) -> None:
        """move_due moves the due tasks of the queue it is given only: not
        those of a subqueue or a parent; a limit of 0 moves nothing."""
        now = broker.time()
        for queue in (Q, OTHER):
            broker.enqueue(_req("t", queue, when=now + FAR))
            _make_due(broker, "t", queue)
        assert broker.move_due(Q, 0) == 0
        assert broker.move_due(Q, 10) == 1
        assert _states_of(broker, Q, "t") == {State.QUEUED}
        assert _states_of(broker, OTHER, "t") == {State.SCHEDULED}
        assert broker.move_due(OTHER, 10) == 1
