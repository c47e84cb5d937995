"""The invariants checked after every step: the model is consistent, and the
broker holds exactly the model's tasks, data, scores, counts and expiries."""

from __future__ import annotations

import pytest
from hypothesis.stateful import invariant

from taskq_core.exceptions import TaskNotFound
from taskq_core.states import PENDING_STATES, STATES, State
from taskq_core.testing.stateful._base import MachineBase
from taskq_core.testing.stateful._model import ALLOWED_COMBINATIONS, BIG, QUEUES


class Invariants(MachineBase):
    """The checks run after every step."""

    @invariant()
    def model_is_consistent(self) -> None:
        """The model itself only holds allowed state combinations."""
        for key, task in self.tasks.items():
            assert task.copies, key
            assert frozenset(task.copies) in ALLOWED_COMBINATIONS, (key, task.copies)
            assert len(PENDING_STATES & set(task.copies)) <= 1
            assert (task.owner is not None) == (State.ACTIVE in task.copies), key

    @invariant()
    def broker_matches_model(self) -> None:
        """Every state of every queue holds exactly the model's tasks, once,
        with the model's data, in ascending score order."""
        now = self.broker.time()
        for queue in QUEUES:
            sizes = self.broker.queue_sizes(queue)
            for state in STATES:
                total, listed = self.broker.list_tasks(queue, state, limit=BIG, load_executions=BIG)
                ids = [stored.id for stored in listed]
                expected = sorted(task_id for (q, task_id) in self._keys_in(state) if q == queue)
                assert len(ids) == len(set(ids)), (queue, state, ids)
                assert sorted(ids) == expected, (queue, state, ids, expected)
                assert total == sizes[state] == len(expected), (queue, state)
                scores = [stored.ts for stored in listed]
                assert scores == sorted(scores), (queue, state)
                for stored in listed:
                    key = (queue, stored.id)
                    assert stored.state is state
                    self._check_task(stored, key)
                    task = self.tasks[key]
                    if not task.lost:
                        assert [e.get("n") for e in stored.executions] == task.records, key
                        assert task.scheduled_at.matches(
                            stored.scheduled_at or 0.0, now, self.start
                        ), (key, stored.scheduled_at, task.scheduled_at)
                    expected_score = task.copies[state]
                    if state in PENDING_STATES:
                        assert expected_score.matches(stored.ts, now, self.start), (
                            key,
                            state,
                            stored.ts,
                            expected_score,
                        )
                    else:
                        assert self.start - 1 <= stored.ts <= now + 1e-3, (key, state)

    @invariant()
    def counts_and_expiry_match(self) -> None:
        """executions_count agrees for known tasks and raises for unknown
        ones; the active tasks are exactly the expired ones far ahead."""
        for (queue, task_id), task in self.tasks.items():
            if task.lost:
                with pytest.raises(TaskNotFound):
                    self.broker.executions_count(queue, task_id)
            else:
                assert self.broker.executions_count(queue, task_id) == task.count
        for queue, task_id in sorted(self.used - set(self.tasks)):
            try:
                self.broker.executions_count(queue, task_id)
            except TaskNotFound:
                continue
            raise AssertionError(f"{task_id} in {queue} has data but no state")
        expired = self.broker.expired_tasks(self.broker.time() + BIG, BIG)
        assert len(expired) == len(set(expired))
        assert sorted(expired) == self._keys_in(State.ACTIVE)
