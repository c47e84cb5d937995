"""The lost-data rules: delete a task's data behind the broker's back, and
check what the recovery pass does with the id left behind."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from taskq_core.states import State
from taskq_core.testing.stateful._base import MachineBase
from taskq_core.testing.stateful._model import BIG, PAST, UNIQUE_IDS


class LostDataRules(MachineBase):
    """Data lost outside taskq (only when a ``drop_task_data`` is given)."""

    def _losable(self) -> list[tuple[str, str]]:
        # tasks with ids of their own (never enqueued again), so that what
        # follows is what the contract says about ids without data
        return sorted(
            key for key, task in self.tasks.items() if key[1] not in UNIQUE_IDS and not task.lost
        )

    @precondition(lambda self: type(self).drop_task_data is not None and bool(self._losable()))
    @rule(data=st.data())
    def lose_data(self, data: st.DataObject) -> None:
        """Delete a task's data behind the broker's back; its id stays in
        its state."""
        drop_task_data = type(self).drop_task_data
        assert drop_task_data is not None
        key = data.draw(st.sampled_from(self._losable()), label="task")
        drop_task_data(self.broker, *key)
        self.tasks[key].lost = True

    @precondition(lambda self: bool(self._keys_in(State.ACTIVE)))
    @rule(data=st.data(), expired=st.integers(0, 3).map(bool))
    def drop_expired_missing(self, data: st.DataObject, expired: bool) -> None:
        """The recovery pass on an active id: removed only when its data is
        lost and its heartbeat is before the cutoff."""
        key = data.draw(st.sampled_from(self._keys_in(State.ACTIVE)), label="task")
        now = self.broker.time()
        older_than = now + BIG if expired else self.start - PAST
        removed = self.broker.drop_expired_missing(*key, older_than)
        task = self.tasks[key]
        assert removed == (expired and task.lost), (key, expired, task.lost)
        if removed:
            del task.copies[State.ACTIVE]  # not a transition: no task left
            task.owner = None
            self._forget_if_unused(key)
