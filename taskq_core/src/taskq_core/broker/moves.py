"""The state moves: what the worker and ``delay`` do to tasks.

Every method here that moves a task is one transition of
:data:`taskq_core.states.TRANSITIONS` and **one atomic operation** on the
broker: enqueue, pop, heartbeat, the end of a run (``finish`` and its
batched forms), the recovery of runs whose worker was lost, and moving due
``scheduled`` tasks to ``queued``.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

from taskq_core.broker.inspection import Inspection
from taskq_core.broker.records import (
    DroppedTask,
    EnqueueRequest,
    EnqueueResult,
    Execution,
    FinishOutcome,
    FinishRequest,
    StoredTask,
)
from taskq_core.exceptions import QueueFullException, TaskNotFound
from taskq_core.states import State

__all__ = ["StateMoves"]


class StateMoves(Inspection):
    """The state moves of :class:`~taskq_core.broker.Broker`.

    It builds on :class:`~taskq_core.broker.inspection.Inspection`: the
    default :meth:`drop_expired_missing` reads with ``get_task``.
    """

    # -- enqueue -------------------------------------------------------------
    @abc.abstractmethod
    def enqueue(self, request: EnqueueRequest) -> EnqueueResult:
        """Store a task as ``queued`` or ``scheduled`` (transition ``enqueue``).

        Atomic with the uniqueness and ``max_queue_size`` checks.
        Raises :class:`~taskq_core.exceptions.QueueFullException` without
        writing anything when the queue is full. A priority that is not an
        int or a payload that is not bytes is a ``TypeError``, a priority
        outside -1000..1000 or a ``when`` that is not a finite number a
        ``ValueError``, raised before anything
        is written (by :meth:`enqueue_many`: before any request of the batch
        is stored): see :meth:`EnqueueRequest.check
        <taskq_core.broker.EnqueueRequest.check>`.
        """

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[EnqueueResult]:
        """Enqueue many tasks, each atomically, in order (a broker may send them
        in one round trip). A task refused by ``max_queue_size`` does not raise
        here: its result has ``refused=True`` and the others are stored."""
        for request in requests:
            request.check()
        results: list[EnqueueResult] = []
        for request in requests:
            try:
                results.append(self.enqueue(request))
            except QueueFullException:
                results.append(EnqueueResult(request.id, None, created=False, ts=0.0, refused=True))
        return results

    # -- worker side ---------------------------------------------------------
    @abc.abstractmethod
    def pop(self, queue: str, limit: int, worker_id: str, defer_seconds: float) -> list[StoredTask]:
        """Move up to ``limit`` due ``queued`` tasks to ``active`` (``pop``).

        Highest priority first, then oldest. The active score is the broker's
        now and the task is owned by ``worker_id``. A unique task whose twin is
        already ``active`` is moved to ``scheduled`` at now + ``defer_seconds``
        (or its existing earlier time) instead and is not returned. An id
        whose data is missing is dropped from the queue and not returned; so
        is one whose data the broker cannot read (moved to ``error`` with a
        record, where it can still store one). Both are reported by
        :meth:`take_dropped`. An ``error`` copy of a popped task stays in
        ``error``, with its failure time and records. Returned tasks carry
        their payload and ``executions_count``.
        """

    @abc.abstractmethod
    def heartbeat(self, queue: str, task_ids: Sequence[str], worker_id: str) -> list[str]:
        """Refresh the active score of tasks this worker owns.

        Returns the ids that were refreshed, in the order given. A task that
        is no longer active or is owned by another worker (it was recovered
        meanwhile) is left alone and not returned.
        """

    def heartbeat_many(
        self, task_ids: Mapping[str, Sequence[str]], worker_id: str
    ) -> dict[str, list[str]]:
        """:meth:`heartbeat` for the tasks of several queues (``{queue: ids}``),
        each queue atomically; a broker may send them in one round trip (a
        worker running many tasks at once refreshes them all in one call).
        Returns the refreshed ids by queue."""
        return {
            queue: self.heartbeat(queue, ids, worker_id) for queue, ids in task_ids.items() if ids
        }

    @abc.abstractmethod
    def finish(
        self,
        queue: str,
        task_id: str,
        worker_id: str,
        outcome: FinishOutcome,
        *,
        when: float | None = None,
        execution: Execution | None = None,
        max_stored_executions: int | None = None,
    ) -> bool:
        """End an active run (transitions ``done``/``retry_later``/``fail``/
        ``lock_conflict``).

        ``execution``, when given, is appended to the task's records and its
        count incremented; records beyond ``max_stored_executions`` (oldest
        first) are dropped, the count is not. On ``done`` the task's data and
        records are deleted unless a pending twin or an ``error`` copy still
        needs them (then the records are reset, except when an error copy
        exists: an error entry and its records stay until it is retried,
        deleted or purged). ``error`` on a task that is already in ``error``
        leaves one error copy, whose failure time becomes now. ``requeue``
        with ``when`` in the future and ``retry`` use the earlier of ``when``
        and an existing pending twin's due time.

        Returns ``False`` (and changes nothing) when the task is not active or
        is owned by another worker. An unknown outcome, a negative
        ``max_stored_executions`` or a ``when`` that is not a finite number
        is a ``ValueError``, raised before anything changes (whether the task
        is active or not; by :meth:`finish_many` and :meth:`recover_expired`
        too, before any run of the batch is ended): see
        :meth:`FinishRequest.check <taskq_core.broker.FinishRequest.check>`.

        ``scheduled_at`` and ``time_last_queued`` are written by enqueue (and
        ``scheduled_at`` by ``update_scheduled_time``) only: this and every
        other move change a task's score and keep those, and its priority.
        """

    def finish_many(
        self, queue: str, worker_id: str, requests: Sequence[FinishRequest]
    ) -> list[bool]:
        """End several runs of ``queue`` (a group run together). Each is one
        atomic :meth:`finish`; a broker may send them in one round trip."""
        for request in requests:
            request.check()
        return [
            self.finish(
                queue,
                r.task_id,
                worker_id,
                r.outcome,
                when=r.when,
                execution=r.execution,
                max_stored_executions=r.max_stored_executions,
            )
            for r in requests
        ]

    def finish_many_then_pop(
        self,
        queue: str,
        worker_id: str,
        requests: Sequence[FinishRequest],
        limit: int,
        defer_seconds: float,
    ) -> tuple[list[bool], list[StoredTask]]:
        """:meth:`finish_many`, then :meth:`pop` from the same queue: two atomic
        operations one after the other, which a broker may send in one round trip
        (a worker that only serves this queue saves one round trip per group)."""
        finished = self.finish_many(queue, worker_id, requests)
        return finished, self.pop(queue, limit, worker_id, defer_seconds)

    # -- recovery ------------------------------------------------------------
    @abc.abstractmethod
    def expired_tasks(self, older_than: float, limit: int) -> list[tuple[str, str]]:
        """``(queue, id)`` of active tasks whose last heartbeat is before
        ``older_than`` (broker time; exclusive: a heartbeat exactly at it is
        not expired), across all queues, oldest first."""

    @abc.abstractmethod
    def recover_expired(
        self,
        queue: str,
        task_id: str,
        older_than: float,
        outcome: FinishOutcome,
        *,
        when: float | None = None,
        execution: Execution | None = None,
        max_stored_executions: int | None = None,
    ) -> bool:
        """Like :meth:`finish` for a task whose worker was lost, but only if its
        heartbeat is still before ``older_than`` (transitions
        ``requeue_expired``/``fail_expired``). Returns whether it moved."""

    def drop_expired_missing(self, queue: str, task_id: str, older_than: float) -> bool:
        """Remove ``task_id`` from ``active`` if its heartbeat is before
        ``older_than`` and its data is missing (an id left behind by data lost
        outside taskq: there is no task to recover). Returns whether it was
        removed; an id whose data is there (again) is left alone.

        Not a transition of the state table: no task moves. This default
        checks with :meth:`get_task`, then removes with :meth:`recover_expired`
        (``done``); a broker should override it to do both in one atomic step.
        """
        try:
            self.get_task(queue, State.ACTIVE, task_id)
        except TaskNotFound:
            return self.recover_expired(queue, task_id, older_than, "done")
        return False

    # -- due tasks and dropped entries ----------------------------------------
    @abc.abstractmethod
    def move_due(self, queue: str, limit: int) -> int:
        """Move up to ``limit`` scheduled tasks due by the broker's now to
        ``queued`` (``scheduled_due``), keeping their priority and due-time
        order. Returns how many moved; wakes workers when any did."""

    def take_dropped(self) -> list[DroppedTask]:
        """The entries this broker dropped since the last call (oldest first):
        ids whose data was missing or unreadable, which :meth:`pop` and
        :meth:`move_due` removed or moved to ``error`` instead of returning
        them. The worker logs each as a warning naming queue and id. A broker
        that keeps no such list returns ``[]``."""
        return []
