"""The repair rules: cancel, delete, retry, reschedule and purge, on tasks in
the right state and (to check the errors) in the wrong one."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import rule

from taskq_core.exceptions import TaskNotFound
from taskq_core.states import State, Transition
from taskq_core.testing.stateful._base import MachineBase
from taskq_core.testing.stateful._model import _QUEUE, BIG, NOW, _exact, _Score


class RepairRules(MachineBase):
    """The repair operations, checked against the model."""

    @rule(
        data=st.data(),
        operation=st.sampled_from(
            [
                "cancel",
                "delete",
                "retry_from_error",
                "retry_from_error",
                "update_scheduled_time",
                "update_scheduled_time",
                "purge_errors",
            ]
        ),
    )
    def repair(self, data: st.DataObject, operation: str) -> None:
        """One of the repair operations on a task (or on a queue's errors)."""
        if operation == "cancel":
            self._cancel(data)
        elif operation == "delete":
            self._delete(data)
        elif operation == "retry_from_error":
            self._retry_from_error(data)
        elif operation == "update_scheduled_time":
            self._update_scheduled_time(data)
        else:
            queue = data.draw(_QUEUE, label="queue")
            limit = data.draw(st.sampled_from([None, 1, 2]), label="limit")
            self._purge_errors(data, queue, limit)

    def _cancel(self, data: st.DataObject) -> None:
        key = self._pick_key(data, State.SCHEDULED)
        task = self.tasks.get(key)
        if task is None or State.SCHEDULED not in task.copies:
            try:
                self.broker.cancel(*key)
            except TaskNotFound:
                return
            raise AssertionError(f"cancel of {key} outside scheduled did not raise")
        self.broker.cancel(*key)
        self._move(key, Transition.CANCEL, State.SCHEDULED, None)
        self._forget_if_unused(key)

    def _delete(self, data: st.DataObject) -> None:
        key = self._pick_key(data, State.ERROR)
        task = self.tasks.get(key)
        if task is None or State.ERROR not in task.copies:
            try:
                self.broker.delete(*key)
            except TaskNotFound:
                return
            raise AssertionError(f"delete of {key} outside error did not raise")
        self.broker.delete(*key)
        self._move(key, Transition.DELETE, State.ERROR, None)
        self._forget_if_unused(key)

    def _retry_from_error(self, data: st.DataObject) -> None:
        key = self._pick_key(data, State.ERROR)
        task = self.tasks.get(key)
        if task is None or State.ERROR not in task.copies or task.lost:
            try:
                self.broker.retry_from_error(*key)
            except TaskNotFound:
                return
            raise AssertionError(f"retry_from_error of {key} outside error did not raise")
        self.broker.retry_from_error(*key)
        if task.pending() is None:
            self._move(key, Transition.RETRY_FROM_ERROR, State.ERROR, State.QUEUED, _Score(NOW))
        else:
            # the pending copy stays as it is; the error copy merges into it
            self._allow(Transition.RETRY_FROM_ERROR, State.ERROR, State.QUEUED)
            del task.copies[State.ERROR]

    def _update_scheduled_time(self, data: st.DataObject) -> None:
        key = self._pick_key(data, State.SCHEDULED)
        now = self.broker.time()
        when = self._pick_time(data, now, allow_none=False)
        assert when is not None
        task = self.tasks.get(key)
        if task is None or State.SCHEDULED not in task.copies or task.lost:
            try:
                self.broker.update_scheduled_time(*key, when)
            except TaskNotFound:
                return
            raise AssertionError(f"update_scheduled_time of {key} did not raise")
        self.broker.update_scheduled_time(*key, when)
        self._allow(Transition.UPDATE_SCHEDULED_TIME, State.SCHEDULED, State.SCHEDULED)
        task.copies[State.SCHEDULED] = task.scheduled_at = _exact(when, now)

    def _purge_errors(self, data: st.DataObject, queue: str, limit: int | None) -> None:
        _total, before = self.broker.list_tasks(queue, State.ERROR, limit=BIG)
        # no bound, or exactly the failure time of one of them (exclusive)
        bounds = [None, *(stored.ts for stored in before)]
        older_than = data.draw(st.sampled_from(bounds), label="older_than")
        matching = [s for s in before if older_than is None or s.ts < older_than]
        deleted = self.broker.purge_errors(queue, older_than, limit)
        _total, after = self.broker.list_tasks(queue, State.ERROR, limit=BIG)
        gone = {s.id for s in before} - {s.id for s in after}
        expected = matching if limit is None else matching[:limit]
        assert deleted == len(gone) == len(expected)
        if len({s.ts for s in before}) == len(before):  # no ties: the oldest go first
            assert gone == {s.id for s in expected}
        assert gone <= {s.id for s in matching}
        for task_id in sorted(gone):
            key = (queue, task_id)
            self._move(key, Transition.DELETE, State.ERROR, None)
            self._forget_if_unused(key)
