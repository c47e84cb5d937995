"""A stateful property test of the broker contract.

:func:`make_broker_state_machine` builds a hypothesis
:class:`~hypothesis.stateful.RuleBasedStateMachine` that drives a broker with
random sequences of operations and checks it, after every step, against a
model of the state machine in :mod:`taskq_core.states`: no task is lost or
duplicated, no task is in two states except the allowed unique-twin
combinations, sizes, payloads, priorities, scores, ``scheduled_at`` and
execution records all match, and every move the model makes is allowed by
:data:`~taskq_core.states.TRANSITIONS`.

The rules enqueue (now, at past and future times, unique or not, one by one
or in batches), re-enqueue pending unique tasks, pop, heartbeat, move due
tasks, finish or recover runs, repair (cancel, delete, retry, reschedule,
purge) and, when given a ``drop_task_data`` function, delete a task's data
behind the broker's back and then check what the broker does with the id
left behind (pop drops it, recovery removes it, repairs refuse or clear it).

Run it against a broker from a test module::

    from hypothesis import HealthCheck, settings
    from taskq_core.testing.stateful import make_broker_state_machine

    TestMyBrokerStateful = make_broker_state_machine(MyBroker, drop_data).TestCase
    TestMyBrokerStateful.settings = settings(
        max_examples=50, stateful_step_count=40, deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )

The broker keeps its own clock, so the machine never sleeps: times are chosen
far in the past (due at once) or far in the future (never due during the
test) relative to :meth:`~taskq_core.broker.Broker.time`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from taskq_core import states
from taskq_core.broker import (
    Broker,
    EnqueueRequest,
    EnqueueResult,
    Execution,
    FinishOutcome,
    StoredTask,
)
from taskq_core.exceptions import QueueFullException, TaskNotFound
from taskq_core.states import PENDING_STATES, STATES, State, Transition, allowed

#: ``(broker, queue, task_id)``: delete a task's data but keep its state entries.
DropData = Callable[[Broker, str, str], None]

__all__ = ["make_broker_state_machine"]

QUEUES = ("sm", "sm.sub")
#: the first queue is drawn more often, so that tasks meet there
_QUEUE = st.sampled_from((QUEUES[0], QUEUES[0], QUEUES[0], QUEUES[1]))
WORKERS = ("w1", "w2")
UNIQUE_IDS = ("u0", "u1")
#: "past" times are this far behind now: earlier than any score stamped "now".
PAST = 100_000.0
#: "future" times are this far ahead (plus a small offset) and never come due.
FUTURE = 10_000.0
#: pop's defer_seconds: later than every "future" time.
DEFER = 50_000.0
BIG = 1_000_000

#: starting situations (see ``seed``)
SCENARIOS = (
    "active_twin",
    "active_twin_scheduled",
    "error_twin",
    "error_twin_scheduled",
    "failures",
)

#: the unique-twin combinations a task may be in: at most one pending copy,
#: beside a running copy, an error entry (which stays until it is retried,
#: deleted or purged: API decision 16), or both
ALLOWED_COMBINATIONS = frozenset(
    frozenset(states)
    for states in (
        {State.SCHEDULED},
        {State.QUEUED},
        {State.ACTIVE},
        {State.ERROR},
        {State.ACTIVE, State.QUEUED},
        {State.ACTIVE, State.SCHEDULED},
        {State.ERROR, State.QUEUED},
        {State.ERROR, State.SCHEDULED},
        {State.ACTIVE, State.ERROR},
        {State.ACTIVE, State.ERROR, State.QUEUED},
        {State.ACTIVE, State.ERROR, State.SCHEDULED},
    )
)

# Score kinds, in increasing order: a chosen past time < a time the broker
# stamped with its now < a chosen future time < a deferral.
EXACT_PAST, NOW, EXACT_FUTURE, DEFERRED = range(4)


@dataclass(frozen=True, order=True)
class _Score:
    """What the model knows about a score: its kind, and its value if the
    model chose it (``None`` when the broker stamped it)."""

    kind: int
    value: float | None = None

    @property
    def due(self) -> bool:
        return self.kind in (EXACT_PAST, NOW)

    def earliest(self, other: _Score) -> _Score:
        """The earlier of two scores (as far as the model can tell)."""
        if self.kind != other.kind:
            return self if self.kind < other.kind else other
        if self.value is not None and other.value is not None:
            return self if self.value <= other.value else other
        return self

    def matches(self, value: float, now: float, start: float) -> bool:
        if self.value is not None:
            return value == self.value
        if self.kind == NOW:
            return start - 1 <= value <= now + 1e-3
        # DEFERRED: later than any chosen future time
        return value > now + FUTURE + 1_000


def _exact(value: float, now: float) -> _Score:
    return _Score(EXACT_PAST if value <= now else EXACT_FUTURE, value)


@dataclass
class _ModelTask:
    payload: bytes
    priority: int
    #: the due time stored beside the payload (``scheduled_at``)
    scheduled_at: _Score
    copies: dict[State, _Score] = field(default_factory=dict)
    owner: str | None = None
    count: int = 0
    records: list[int] = field(default_factory=list)
    #: its data was deleted behind the broker's back (ids left in states)
    lost: bool = False

    def pending(self) -> State | None:
        for state in (State.QUEUED, State.SCHEDULED):
            if state in self.copies:
                return state
        return None


def _record(number: int) -> Execution:
    return {  # type: ignore[typeddict-unknown-key]  # "n": a key of the model's own
        "time_started": 1_700_000_000.0 + number,
        "time_failed": 1_700_000_000.5 + number,
        "exception_name": "builtins:RuntimeError",
        "success": False,
        "host": "model",
        "traceback": f"#{number}",
        "n": number,
    }


_OUTCOMES = states.OUTCOMES
_FINISH_TRANSITIONS = states.FINISH_TRANSITIONS
_RECOVER_TRANSITIONS = states.RECOVER_TRANSITIONS


def make_broker_state_machine(
    broker_factory: Callable[[], Broker],
    drop_task_data: DropData | None = None,
) -> type[RuleBasedStateMachine]:
    """A state machine class that tests brokers made by ``broker_factory``.

    ``broker_factory`` must return a fresh, empty broker each time it is
    called (once per example); the machine calls ``close()`` at the end.
    ``drop_task_data(broker, queue, task_id)``, when given, deletes a task's
    data but keeps its state entries (as data lost outside taskq would); the
    machine then also checks what the broker does with such ids.
    The class attribute ``seen_transitions`` collects the transitions the
    model performed (across examples), for checking coverage.
    """

    class BrokerStateMachine(RuleBasedStateMachine):
        seen_transitions: ClassVar[set[Transition]] = set()

        def __init__(self) -> None:
            super().__init__()
            self.broker = broker_factory()
            self.start = self.broker.time()
            self.tasks: dict[tuple[str, str], _ModelTask] = {}
            self.fresh = itertools.count()
            self.records = itertools.count(1)
            self.used: set[tuple[str, str]] = set()

        def teardown(self) -> None:
            self.broker.close()

        # -- model helpers -------------------------------------------------------
        def _allow(
            self, transition: Transition, source: State | None, target: State | None
        ) -> None:
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

        # -- rules ------------------------------------------------------------------
        @initialize(scenarios=st.lists(st.sampled_from(SCENARIOS), max_size=2, unique=True))
        def seed(self, scenarios: list[str]) -> None:
            """Start from situations that random steps reach only rarely: unique
            twins next to a running or failed copy, and trimmed records."""
            queue = QUEUES[0]
            for task_id, scenario in zip(UNIQUE_IDS, scenarios, strict=False):
                now = self.broker.time()
                self._enqueue(EnqueueRequest(task_id, queue, b"seed", unique=True))
                if scenario == "failures":
                    for _ in range(3):
                        for popped in self._pop(queue, 1, WORKERS[0]):
                            key = (queue, popped)
                            self._finish_task(key, WORKERS[0], "requeue", None, True, 2)
                    continue
                popped_ids = self._pop(queue, 1, WORKERS[0])
                if scenario.startswith("error"):
                    for popped in popped_ids:
                        key = (queue, popped)
                        self._finish_task(key, WORKERS[0], "error", None, True, None)
                when = now + FUTURE if scenario.endswith("scheduled") else None
                self._enqueue(EnqueueRequest(task_id, queue, b"seed twin", when, unique=True))

        @rule(data=st.data(), count=st.integers(1, 3), batch=st.booleans())
        def enqueue(self, data: st.DataObject, count: int, batch: bool) -> None:
            """Enqueue one to three tasks, one by one or with enqueue_many."""
            now = self.broker.time()
            requests = []
            for _ in range(count):
                queue = data.draw(_QUEUE, label="queue")
                if data.draw(st.integers(0, 3), label="pooled"):
                    # mostly one of a few ids, so that twins meet
                    task_id = data.draw(st.sampled_from(UNIQUE_IDS), label="id")
                else:
                    task_id = f"n{next(self.fresh)}"
                size = self._size(queue, (State.QUEUED, State.SCHEDULED, State.ACTIVE))
                delta = data.draw(st.sampled_from([None, None, None, 0, 1]), label="max delta")
                requests.append(
                    EnqueueRequest(
                        id=task_id,
                        queue=queue,
                        payload=data.draw(st.binary(max_size=12), label="payload"),
                        when=self._pick_time(data, now, allow_none=True),
                        priority=data.draw(st.integers(-1, 2), label="priority"),
                        unique=data.draw(st.booleans(), label="unique"),
                        max_queue_size=None if delta is None else size + delta,
                    )
                )
            if batch:
                self._enqueue_many(requests)
            else:
                for request in requests:
                    self._enqueue(request)

        def _full(self, request: EnqueueRequest) -> int | None:
            """The queue's size if ``request`` must be refused, else ``None``."""
            size = self._size(request.queue, (State.QUEUED, State.SCHEDULED, State.ACTIVE))
            if request.max_queue_size is not None and size >= request.max_queue_size:
                return size
            return None

        def _enqueue(self, request: EnqueueRequest) -> None:
            self.used.add((request.queue, request.id))
            size = self._full(request)
            if size is not None:
                with pytest.raises(QueueFullException, match=rf"^Queue size: {size}$"):
                    self.broker.enqueue(request)
                return
            self._enqueued(request, self.broker.enqueue(request))

        def _enqueue_many(self, requests: list[EnqueueRequest]) -> None:
            results = self.broker.enqueue_many(requests)
            assert [result.id for result in results] == [request.id for request in requests]
            for request, result in zip(requests, results, strict=True):
                self.used.add((request.queue, request.id))
                if self._full(request) is not None:
                    assert result.refused
                    assert result.state is None
                    assert not result.created
                    continue
                assert not result.refused
                self._enqueued(request, result)

        def _enqueued(self, request: EnqueueRequest, result: EnqueueResult) -> None:
            """Check an enqueue's result and apply it to the model."""
            now = self.broker.time()
            key = (request.queue, request.id)
            existing = self.tasks.get(key)
            pending = existing.pending() if existing is not None else None
            if existing is not None and pending is not None:
                # it keeps its place; a unique request brings the latest payload
                assert not result.created
                assert result.state is pending
                assert existing.copies[pending].matches(result.ts, now, self.start)
                if request.unique:
                    existing.payload = request.payload
                return
            assert result.created
            when = request.when
            if when is None or when <= now:
                # a past `when` is not kept: scheduled_at is the time it was queued
                target, score = State.QUEUED, _Score(NOW)
            else:
                target, score = State.SCHEDULED, _exact(when, now)
            assert result.state is target
            if existing is None:
                existing = self.tasks[key] = _ModelTask(request.payload, request.priority, score)
            existing.payload = request.payload
            existing.priority = request.priority
            existing.scheduled_at = score
            self._move(key, Transition.ENQUEUE, None, target, score)

        @precondition(
            lambda self: any(
                task_id in UNIQUE_IDS and task.pending() is not None
                for (_queue, task_id), task in self.tasks.items()
            )
        )
        @rule(data=st.data(), batch=st.booleans())
        def reenqueue_unique(self, data: st.DataObject, batch: bool) -> None:
            """Enqueue a pending unique task again, with another payload,
            priority and ``when`` (past, future or none): it keeps its place and
            takes the new payload (API decision 15)."""
            candidates = sorted(
                key
                for key, task in self.tasks.items()
                if key[1] in UNIQUE_IDS and task.pending() is not None
            )
            queue, task_id = data.draw(st.sampled_from(candidates), label="task")
            request = EnqueueRequest(
                id=task_id,
                queue=queue,
                payload=data.draw(st.binary(max_size=12), label="payload"),
                when=self._pick_time(data, self.broker.time(), allow_none=True),
                priority=data.draw(st.integers(-1, 2), label="priority"),
                unique=True,
            )
            if batch:
                self._enqueue_many([request])
            else:
                self._enqueue(request)

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
            ids = data.draw(
                st.lists(st.sampled_from([*candidates, "nobody"]), max_size=4, unique=True)
            )
            expected = {
                task_id
                for task_id in ids
                if (queue, task_id) in self.tasks
                and self.tasks[(queue, task_id)].owner == worker
                and State.ACTIVE in self.tasks[(queue, task_id)].copies
            }
            refreshed = self.broker.heartbeat(queue, ids, worker)
            assert sorted(refreshed) == sorted(expected)

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

        # -- data lost behind the broker's back ------------------------------------------
        def _losable(self) -> list[tuple[str, str]]:
            # tasks with ids of their own (never enqueued again), so that what
            # follows is what the contract says about ids without data
            return sorted(
                key
                for key, task in self.tasks.items()
                if key[1] not in UNIQUE_IDS and not task.lost
            )

        @precondition(lambda self: drop_task_data is not None and bool(self._losable()))
        @rule(data=st.data())
        def lose_data(self, data: st.DataObject) -> None:
            """Delete a task's data behind the broker's back; its id stays in
            its state."""
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

        # -- invariants ----------------------------------------------------------------
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
                    total, listed = self.broker.list_tasks(
                        queue, state, limit=BIG, load_executions=BIG
                    )
                    ids = [stored.id for stored in listed]
                    expected = sorted(
                        task_id for (q, task_id) in self._keys_in(state) if q == queue
                    )
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

    BrokerStateMachine.__name__ = "BrokerStateMachine"
    BrokerStateMachine.__qualname__ = "BrokerStateMachine"
    return BrokerStateMachine
