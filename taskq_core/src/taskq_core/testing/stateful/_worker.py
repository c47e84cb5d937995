"""The worker-side rules: pop, heartbeat, move due tasks, and end runs (finish
them, or recover them as if their worker was lost)."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from taskq_core.broker import FinishOutcome
from taskq_core.states import State, Transition
from taskq_core.testing.stateful._base import MachineBase
from taskq_core.testing.stateful._model import (
    _FINISH_TRANSITIONS,
    _OUTCOMES,
    _QUEUE,
    _RECOVER_TRANSITIONS,
    BIG,
    DEFER,
    DEFERRED,
    NOW,
    WORKERS,
    _exact,
    _record,
    _Score,
)


class WorkerRules(MachineBase):
    """What a worker does to the broker, checked against the model."""

    @rule(
        queue=_QUEUE,
        limit=st.integers(1, 4),
        worker=st.sampled_from(WORKERS),
    )
    def pop(self, queue: str, limit: int, worker: str) -> None:
        self._pop(queue, limit, worker)

    def _pop(self, queue: str, limit: int, worker: str) -> list[str]:
        """Pop and check the result; returns the popped ids."""
        _total, before = self.broker.list_tasks(queue, State.QUEUED, limit=BIG)
        score_of = {stored.id: stored.ts for stored in before}
        popped = self.broker.pop(queue, limit, worker, DEFER)
        _total, after = self.broker.list_tasks(queue, State.QUEUED, limit=BIG)
        left = {stored.id for stored in after}
        returned = [stored.id for stored in popped]
        assert len(returned) == len(set(returned)) <= limit
        assert set(returned) <= set(score_of)
        assert not set(returned) & left
        gone = set(score_of) - left - set(returned)
        # ids whose data is lost are dropped; the others met a running twin
        dropped = {i for i in gone if self.tasks[(queue, i)].lost}
        deferred = gone - dropped

        def order(task_id: str) -> tuple[int, float]:
            return (-self.tasks[(queue, task_id)].priority, score_of[task_id])

        for task_id in returned:
            assert State.ACTIVE not in self.tasks[(queue, task_id)].copies, task_id
            assert not self.tasks[(queue, task_id)].lost, task_id
        for task_id in deferred:
            assert State.ACTIVE in self.tasks[(queue, task_id)].copies, task_id
        assert [order(i) for i in returned] == sorted(order(i) for i in returned)
        taken = set(returned) | deferred
        for task_id in taken:
            for other in left:
                if not self.tasks[(queue, other)].lost:
                    assert order(task_id) <= order(other), (task_id, other)
        if len(returned) + len(deferred) < limit:
            assert not left, "pop stopped early"

        for task_id in sorted(dropped):
            key = (queue, task_id)
            del self.tasks[key].copies[State.QUEUED]  # not a transition: no task
            self._forget_if_unused(key)
        for stored in popped:
            key = (queue, stored.id)
            assert stored.state is State.ACTIVE
            assert stored.queue == queue
            self._check_task(stored, key)
            task = self.tasks[key]
            # an error entry stays in error (API decision 16)
            self._move(key, Transition.POP, State.QUEUED, State.ACTIVE, _Score(NOW))
            task.owner = worker
        for task_id in deferred:
            key = (queue, task_id)
            # popped, found its twin running, and set aside like a lock conflict
            self._allow(Transition.POP, State.QUEUED, State.ACTIVE)
            self._allow(Transition.LOCK_CONFLICT, State.ACTIVE, State.SCHEDULED)
            task = self.tasks[key]
            del task.copies[State.QUEUED]
            task.copies[State.SCHEDULED] = _Score(DEFERRED)
        return returned

    @rule(data=st.data(), heartbeat=st.sampled_from([True, False, False]))
    def housekeeping(self, data: st.DataObject, heartbeat: bool) -> None:
        """A heartbeat, or (more often) moving due scheduled tasks."""
        queue = data.draw(_QUEUE, label="queue")
        if heartbeat:
            self._heartbeat(queue, data.draw(st.sampled_from(WORKERS), label="worker"), data)
        else:
            self._move_due(queue, data.draw(st.sampled_from([1, 2, 100]), label="limit"))

    def _heartbeat(self, queue: str, worker: str, data: st.DataObject) -> None:
        candidates = sorted({task_id for (q, task_id) in self.tasks if q == queue})
        ids = data.draw(st.lists(st.sampled_from([*candidates, "nobody"]), max_size=4, unique=True))
        expected = {
            task_id
            for task_id in ids
            if (queue, task_id) in self.tasks
            and self.tasks[(queue, task_id)].owner == worker
            and State.ACTIVE in self.tasks[(queue, task_id)].copies
        }
        refreshed = self.broker.heartbeat(queue, ids, worker)
        assert sorted(refreshed) == sorted(expected)

    def _move_due(self, queue: str, limit: int) -> None:
        _total, before = self.broker.list_tasks(queue, State.SCHEDULED, limit=BIG)
        moved_count = self.broker.move_due(queue, limit)
        _total, after = self.broker.list_tasks(queue, State.SCHEDULED, limit=BIG)
        moved = {s.id for s in before} - {s.id for s in after}
        due = {
            task_id
            for (q, task_id), task in self.tasks.items()
            if q == queue and State.SCHEDULED in task.copies
            if task.copies[State.SCHEDULED].due
        }
        assert moved_count == len(moved) == min(limit, len(due))
        assert moved <= due
        score_of = {s.id: s.ts for s in before}
        for task_id in moved:
            for other in due - moved:
                assert score_of[task_id] <= score_of[other], (task_id, other)
        for task_id in sorted(moved):
            key = (queue, task_id)
            score = self.tasks[key].copies[State.SCHEDULED]
            self._move(key, Transition.SCHEDULED_DUE, State.SCHEDULED, State.QUEUED, score)

    @precondition(lambda self: bool(self._keys_in(State.ACTIVE)))
    @rule(
        data=st.data(),
        recover=st.booleans(),
        outcome=st.sampled_from(_OUTCOMES),
        with_record=st.integers(0, 2).map(bool),
        max_stored=st.sampled_from([None, 0, 1, 2]),
    )
    def end_run(
        self,
        data: st.DataObject,
        recover: bool,
        outcome: FinishOutcome,
        with_record: bool,
        max_stored: int | None,
    ) -> None:
        """finish an active task, or recover it as if its worker was lost."""
        if recover:
            self._recover_expired(data, outcome, with_record)
        else:
            self._finish(data, outcome, with_record, max_stored)

    def _finish(
        self,
        data: st.DataObject,
        outcome: FinishOutcome,
        with_record: bool,
        max_stored: int | None,
    ) -> None:
        key = data.draw(st.sampled_from(self._keys_in(State.ACTIVE)), label="task")
        owner = self.tasks[key].owner
        other = next(worker for worker in WORKERS if worker != owner)
        # mostly the owner; sometimes another worker, which must be refused
        worker = data.draw(st.sampled_from([owner, owner, owner, other]), label="worker")
        assert worker is not None
        when = self._pick_time(data, self.broker.time(), allow_none=outcome != "retry")
        self._finish_task(key, worker, outcome, when, with_record, max_stored)

    def _finish_task(
        self,
        key: tuple[str, str],
        worker: str,
        outcome: FinishOutcome,
        when: float | None,
        with_record: bool,
        max_stored: int | None,
    ) -> None:
        now = self.broker.time()
        record = next(self.records) if with_record else None
        done = self.broker.finish(
            key[0],
            key[1],
            worker,
            outcome,
            when=when,
            execution=_record(record) if record is not None else None,
            max_stored_executions=max_stored,
        )
        expected = self.tasks[key].owner == worker
        assert done == expected, (key, worker, self.tasks[key].owner)
        if done:
            self._end_run(key, outcome, _FINISH_TRANSITIONS, when, record, max_stored, now)

    def _recover_expired(
        self, data: st.DataObject, outcome: FinishOutcome, with_record: bool
    ) -> None:
        key = data.draw(st.sampled_from(self._keys_in(State.ACTIVE)), label="task")
        now = self.broker.time()
        when = self._pick_time(data, now, allow_none=outcome != "retry")
        record = next(self.records) if with_record else None
        expired = self.broker.expired_tasks(now + BIG, BIG)
        assert key in expired
        assert self.broker.recover_expired(
            key[0],
            key[1],
            now + BIG,
            outcome,
            when=when,
            execution=_record(record) if record is not None else None,
        )
        self._end_run(key, outcome, _RECOVER_TRANSITIONS, when, record, None, now)

    def _end_run(
        self,
        key: tuple[str, str],
        outcome: FinishOutcome,
        transitions: dict[FinishOutcome, Transition],
        when: float | None,
        record: int | None,
        max_stored: int | None,
        now: float,
    ) -> None:
        task = self.tasks[key]
        transition = transitions[outcome]
        if record is not None:
            task.count += 1
            task.records.append(record)
            if max_stored:
                task.records = task.records[-max_stored:]
        pending = task.pending()
        if outcome == "done":
            self._move(key, transition, State.ACTIVE, None)
            if State.ERROR not in task.copies:
                if pending is None:
                    self._forget_if_unused(key)
                else:
                    task.count = 0
                    task.records = []
            return
        if outcome == "error":
            if State.ERROR in task.copies:
                # one error entry: it stays, stamped with this failure
                self._allow(transition, State.ACTIVE, State.ERROR)
                del task.copies[State.ACTIVE]
                task.owner = None
                task.copies[State.ERROR] = _Score(NOW)
                return
            self._move(key, transition, State.ACTIVE, State.ERROR, _Score(NOW))
            return
        if outcome == "retry":
            assert when is not None
            target, score = State.SCHEDULED, _exact(when, now)
        elif when is None or when <= now:
            target, score = State.QUEUED, _Score(NOW)
        else:
            target, score = State.SCHEDULED, _exact(when, now)
        if pending is None:
            self._move(key, transition, State.ACTIVE, target, score)
            return
        # the pending twin absorbs this copy at the earlier time
        self._allow(transition, State.ACTIVE, target)
        del task.copies[State.ACTIVE]
        task.owner = None
        task.copies[pending] = task.copies[pending].earliest(score)
