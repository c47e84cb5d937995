"""The enqueue rules: enqueue tasks (now, at past and future times, unique or
not, one by one or in batches, into queues that may be full), and enqueue
pending unique tasks again."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from taskq_core.broker import EnqueueRequest, EnqueueResult
from taskq_core.exceptions import QueueFullException
from taskq_core.states import State, Transition
from taskq_core.testing.stateful._base import MachineBase
from taskq_core.testing.stateful._model import _QUEUE, NOW, UNIQUE_IDS, _exact, _ModelTask, _Score


class EnqueueRules(MachineBase):
    """Enqueue and re-enqueue, checked against the model."""

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
