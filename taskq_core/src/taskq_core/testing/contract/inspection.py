"""Inspection: ``queue_sizes``, ``queues``, ``list_tasks``, ``get_task`` and
``executions_count``."""

from __future__ import annotations

import pytest

from taskq_core.broker import Broker
from taskq_core.exceptions import TaskNotFound
from taskq_core.states import STATES, State
from taskq_core.testing.contract._base import (
    FAR,
    OTHER,
    ContractBase,
    Q,
    _activate,
    _fail,
    _ids,
    _req,
)

__all__ = ["InspectionContract"]


class InspectionContract(ContractBase):
    """Tests of the inspection methods."""

    # -- inspection ------------------------------------------------------------
    def test_queue_sizes_and_queues(self, broker: Broker) -> None:
        """queue_sizes counts every state; queues lists the queue per state."""
        _activate(broker, "running")
        _fail(broker, "failed")
        broker.enqueue_many([_req("q1"), _req("q2"), _req("s1", when=broker.time() + FAR)])
        assert broker.queue_sizes(Q) == {
            State.SCHEDULED: 1,
            State.QUEUED: 2,
            State.ACTIVE: 1,
            State.ERROR: 1,
        }
        for state in STATES:
            assert Q in broker.queues(state)
        assert broker.iter_queues(STATES) >= {Q}
        assert broker.queue_sizes(OTHER) == dict.fromkeys(STATES, 0)

    def test_list_tasks_ascending_with_skip_from_oldest(self, broker: Broker) -> None:
        """list_tasks returns (total, tasks) in ascending score, skipping from
        the oldest."""
        now = broker.time()
        offsets = {"c": 300, "a": 100, "e": 500, "b": 200, "d": 400}
        for task_id, offset in offsets.items():
            broker.enqueue(_req(task_id, when=now + offset))
        total, tasks = broker.list_tasks(Q, State.SCHEDULED)
        assert total == 5
        assert _ids(tasks) == ["a", "b", "c", "d", "e"]
        assert [t.ts for t in tasks] == sorted(now + o for o in offsets.values())
        assert all(t.state is State.SCHEDULED and t.queue == Q for t in tasks)
        assert _ids(broker.list_tasks(Q, State.SCHEDULED, skip=1, limit=2)[1]) == ["b", "c"]
        assert broker.list_tasks(Q, State.SCHEDULED, skip=4, limit=10)[1][0].id == "e"
        assert broker.list_tasks(Q, State.SCHEDULED, skip=5) == (5, [])
        assert broker.list_tasks(Q, State.QUEUED) == (0, [])

    def test_get_task_wrong_state_or_queue_raises(self, broker: Broker) -> None:
        """get_task raises TaskNotFound for a task not in that queue and state."""
        broker.enqueue(_req("a"))
        for state in (State.SCHEDULED, State.ACTIVE, State.ERROR):
            with pytest.raises(TaskNotFound):
                broker.get_task(Q, state, "a")
        with pytest.raises(TaskNotFound):
            broker.get_task(OTHER, State.QUEUED, "a")
        with pytest.raises(TaskNotFound):
            broker.get_task(Q, State.QUEUED, "missing")
        assert broker.get_task(Q, State.QUEUED, "a").id == "a"

    def test_executions_count_of_unknown_task_raises(self, broker: Broker) -> None:
        """executions_count raises TaskNotFound for a task with no data."""
        with pytest.raises(TaskNotFound):
            broker.executions_count(Q, "nope")
        broker.enqueue(_req("a"))
        assert broker.executions_count(Q, "a") == 0
