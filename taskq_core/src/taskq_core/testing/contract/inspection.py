"""Inspection: ``queue_sizes``, ``queues``, ``list_tasks``, ``get_task`` and
``executions_count``; queue names and ids of every shape."""

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
    _execution,
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

    def test_list_queued_in_time_order_whatever_the_priority(self, broker: Broker) -> None:
        """list_tasks(queued) lists by queued time (then first stored), not in
        pop order, and pages that way with skip and limit, while pop takes
        the highest priority first."""
        plan = [("a", 0), ("b", 5), ("c", -3), ("d", 5), ("e", 0), ("f", 1), ("g", -3)]
        for task_id, priority in plan:
            broker.enqueue(_req(task_id, priority=priority))
        order = [task_id for task_id, _priority in plan]
        total, tasks = broker.list_tasks(Q, State.QUEUED)
        assert total == 7
        assert _ids(tasks) == order
        assert [t.ts for t in tasks] == sorted(t.ts for t in tasks)
        assert [t.priority for t in tasks] == [p for _id, p in plan]
        pages = [_ids(broker.list_tasks(Q, State.QUEUED, skip=s, limit=3)[1]) for s in (0, 3, 6)]
        assert pages == [order[:3], order[3:6], order[6:]]
        assert broker.list_tasks(Q, State.QUEUED, skip=2, limit=1)[1][0].id == "c"
        assert _ids(broker.pop(Q, 10, "w1", FAR)) == ["b", "d", "f", "a", "e", "c", "g"]

    def test_list_tasks_pages_cover_equal_scores_once(self, broker: Broker) -> None:
        """Tasks with the same score (one due time) are paged in one fixed
        order: the pages together hold each task once."""
        when = broker.time() + FAR
        names = [f"t{i:02d}" for i in range(12)]
        broker.enqueue_many([_req(name, when=when) for name in reversed(names)])
        listed = []
        for skip in range(0, 12, 5):
            total, page = broker.list_tasks(Q, State.SCHEDULED, skip=skip, limit=5)
            assert total == 12
            listed += _ids(page)
        assert sorted(listed) == names
        assert listed == _ids(broker.list_tasks(Q, State.SCHEDULED)[1])

    def test_list_tasks_limit_zero_and_negative_bounds(self, broker: Broker) -> None:
        """limit 0 lists no task but still the total; a negative skip or limit
        counts as 0; load_executions 0 or less loads no record."""
        _fail(broker, "a")
        broker.enqueue(_req("b"))
        assert broker.list_tasks(Q, State.QUEUED, limit=0) == (1, [])
        assert broker.list_tasks(Q, State.QUEUED, limit=-1) == (1, [])
        assert _ids(broker.list_tasks(Q, State.QUEUED, skip=-5)[1]) == ["b"]
        assert broker.list_tasks(Q, State.ERROR, load_executions=-1)[1][0].executions == []
        assert broker.get_task(Q, State.ERROR, "a", load_executions=-1).executions == []
        assert broker.get_task(Q, State.ERROR, "a", load_executions=5).executions_count == 1

    def test_queues_do_not_list_a_parent_or_sibling_without_tasks(self, broker: Broker) -> None:
        """Tasks of a subqueue make only the subqueue's exact name listed:
        neither its parent nor a name it starts with has tasks, and their
        sizes are zero."""
        broker.enqueue(_req("a", OTHER))
        assert OTHER in broker.queues(State.QUEUED)
        assert Q not in broker.iter_queues(STATES)
        assert OTHER + "x" not in broker.iter_queues(STATES)
        assert broker.queue_sizes(Q) == dict.fromkeys(STATES, 0)
        assert broker.queue_sizes(OTHER + "x") == dict.fromkeys(STATES, 0)
        assert broker.queue_sizes(OTHER)[State.QUEUED] == 1

    @pytest.mark.parametrize(
        "queue",
        ["[ab\\c]*?", "a:b.c:d", "ünï.çødé.子", "}x.{y}", "with space.%7D", "x" * 300],
    )
    def test_odd_queue_names_and_ids_work_end_to_end(self, broker: Broker, queue: str) -> None:
        """Queue names and task ids with glob and regex characters, colons,
        unicode, braces, percent signs, spaces and many characters go
        through every operation and come back exactly; a name that extends
        another is a queue of its own."""
        task_id = "ïd:1*?[x]{y} %s\\" + "z" * 200
        broker.enqueue(_req(task_id, queue, unique=True))
        broker.enqueue(_req("later", queue, when=broker.time() + FAR))
        assert queue in broker.queues(State.QUEUED)
        assert queue in broker.queues(State.SCHEDULED)
        assert broker.get_task(queue, State.QUEUED, task_id).queue == queue
        [task] = broker.pop(queue, 5, "w1", FAR)
        assert (task.id, task.queue) == (task_id, queue)
        assert broker.heartbeat(queue, [task_id], "w1") == [task_id]
        assert broker.expired_tasks(broker.time() + 1, 10) == [(queue, task_id)]
        assert broker.finish(queue, task_id, "w1", "error", execution=_execution(1))
        assert queue in broker.queues(State.ERROR)
        assert _ids(broker.list_tasks(queue, State.ERROR)[1]) == [task_id]
        broker.retry_from_error(queue, task_id)
        broker.update_scheduled_time(queue, "later", broker.time() - 1)
        assert broker.move_due(queue, 10) == 1
        assert sorted(_ids(broker.pop(queue, 5, "w1", FAR))) == sorted(["later", task_id])
        assert broker.finish(queue, task_id, "w1", "done")
        assert broker.queue_sizes(queue + "x") == dict.fromkeys(STATES, 0)
        assert broker.queue_sizes(queue) == {**dict.fromkeys(STATES, 0), State.ACTIVE: 1}
