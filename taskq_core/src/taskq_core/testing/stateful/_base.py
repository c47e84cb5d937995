"""The base of the state machine: the broker under test, the model beside it,
and the helpers every group of rules uses to move the model and draw tasks."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine

from taskq_core.broker import Broker, StoredTask
from taskq_core.states import State, Transition, allowed
from taskq_core.testing.stateful._model import FUTURE, PAST, QUEUES, UNIQUE_IDS, _ModelTask, _Score

#: ``(broker, queue, task_id)``: delete a task's data but keep its state entries.
DropData = Callable[[Broker, str, str], None]


class MachineBase(RuleBasedStateMachine):
    """What the rule groups share. :func:`make_broker_state_machine` sets the
    class attributes on the class it builds."""

    #: makes a fresh, empty broker (once per example)
    broker_factory: ClassVar[Callable[[], Broker]]
    #: deletes a task's data behind the broker's back, if the broker can
    drop_task_data: ClassVar[DropData | None] = None
    #: the transitions the model performed (across examples), per built class
    seen_transitions: ClassVar[set[Transition]]

    def __init__(self) -> None:
        super().__init__()
        self.broker = type(self).broker_factory()
        self.start = self.broker.time()
        self.tasks: dict[tuple[str, str], _ModelTask] = {}
        self.fresh = itertools.count()
        self.records = itertools.count(1)
        self.used: set[tuple[str, str]] = set()

    def teardown(self) -> None:
        self.broker.close()

    # -- model helpers -------------------------------------------------------
    def _allow(self, transition: Transition, source: State | None, target: State | None) -> None:
        """Check that the table allows a move the model is about to make."""
        assert allowed(transition, source, target), (transition, source, target)
        type(self).seen_transitions.add(transition)

    def _move(
        self,
        key: tuple[str, str],
        transition: Transition,
        source: State | None,
        target: State | None,
        score: _Score | None = None,
    ) -> None:
        """Apply one transition to the model, checking the table allows it."""
        self._allow(transition, source, target)
        task = self.tasks[key]
        if source is not None:
            del task.copies[source]
            if source is State.ACTIVE:
                task.owner = None
        if target is not None:
            assert target not in task.copies, (key, target)
            assert score is not None
            task.copies[target] = score

    def _forget_if_unused(self, key: tuple[str, str]) -> None:
        if not self.tasks[key].copies:
            del self.tasks[key]

    def _keys_in(self, state: State) -> list[tuple[str, str]]:
        return sorted(key for key, task in self.tasks.items() if state in task.copies)

    def _size(self, queue: str, states: Sequence[State]) -> int:
        return sum(
            1
            for (q, _id), task in self.tasks.items()
            if q == queue
            for state in states
            if state in task.copies
        )

    def _pick_time(self, data: st.DataObject, now: float, *, allow_none: bool) -> float | None:
        kinds = ["past", "future", *(["none", "none"] if allow_none else [])]
        kind = data.draw(st.sampled_from(kinds), label="when")
        offset = data.draw(st.integers(0, 20), label="offset") + 0.5
        if kind == "past":
            return now - PAST - offset
        if kind == "future":
            return now + FUTURE + offset
        return None

    def _pick_key(self, data: st.DataObject, state: State) -> tuple[str, str]:
        """Mostly a task in ``state``; else any task or an unknown id (to
        check the wrong-state errors)."""
        anything = [*sorted(self.tasks), (QUEUES[0], "nobody"), (QUEUES[1], UNIQUE_IDS[0])]
        in_state = self._keys_in(state)
        if in_state and data.draw(st.integers(0, 3), label="right state") > 0:
            return data.draw(st.sampled_from(in_state), label="task")
        return data.draw(st.sampled_from(anything), label="task")

    def _check_task(self, stored: StoredTask, key: tuple[str, str]) -> None:
        task = self.tasks[key]
        if task.lost:
            assert stored.missing, key
            assert stored.payload == b"", key
            return
        assert not stored.missing, key
        assert stored.payload == task.payload, key
        assert stored.priority == task.priority, key
        assert stored.executions_count == task.count, (key, stored.executions_count, task.count)
