"""The broker contract.

A broker stores tasks and moves them between states. Every method that moves
a task is **one atomic operation** on the broker: it either happens completely
or not at all, and no other client sees a half-done move. The worker and the
:class:`~taskq_core.Task` API use nothing but these methods, so a broker that
passes :mod:`taskq_core.testing.contract` works with all of taskq.

Brokers treat the task payload as opaque bytes; everything they need to know
(id, queue, priority, uniqueness) is passed alongside it.

Times are float seconds since the epoch. Brokers measure "now" with their own
clock (:meth:`Broker.time`) so that the clocks of worker hosts do not matter.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from taskq_core.exceptions import QueueFullException, TaskNotFound
from taskq_core.states import Outcome, State

__all__ = [
    "Broker",
    "DroppedTask",
    "EnqueueRequest",
    "EnqueueResult",
    "Execution",
    "FinishOutcome",
    "FinishRequest",
    "StoredTask",
]

#: An execution record: ``time_started``, ``time_failed``, ``exception_name``,
#: ``success``, ``host``, optionally ``traceback``, ``retry``, ``retry_method``,
#: ``log_error``, ``worker_id``. Brokers store it as given.
Execution = dict[str, Any]

#: What happens to an active task when its run is over.
#: ``done`` removes it (success, or a dropped failure); ``retry`` moves it to
#: ``scheduled`` at ``when``; ``error`` moves it to ``error``; ``requeue``
#: moves it to ``queued`` (or ``scheduled`` when ``when`` is in the future)
#: without counting a run (a lock conflict or a stop before it started).
FinishOutcome = Outcome


@dataclass(frozen=True)
class EnqueueRequest:
    """One task to enqueue.

    :param id: the task id (unique tasks: a hash that includes the queue).
    :param queue: the full queue name (``email.incoming.CUSTOMER1``).
    :param payload: the encoded task data (opaque to the broker).
    :param when: due time; ``None`` or a time not after the broker's now
        means ``queued`` now, later means ``scheduled``.
    :param priority: higher runs first; FIFO within one priority.
    :param unique: if a pending copy (``queued``/``scheduled``) exists already,
        it keeps its place (state, due time or queued position, priority,
        ``scheduled_at``, ``time_last_queued``), the payload is replaced by
        this request's (the arguments of the latest enqueue win), and the
        result has ``created=False``. A request that is not unique and finds
        a pending copy of its id changes nothing.
    :param max_queue_size: refuse (``QueueFullException``) when
        ``queued + scheduled + active`` of the queue is already this many;
        checked atomically with the insert (before the uniqueness check).

    The broker stores ``scheduled_at`` and ``time_last_queued`` beside the
    payload. ``time_last_queued`` is its now; ``scheduled_at`` is the due
    time: ``when`` when the task is scheduled, else the broker's now, the time
    it was actually queued (a past ``when`` is not kept).
    """

    id: str
    queue: str
    payload: bytes
    when: float | None = None
    priority: int = 0
    unique: bool = False
    max_queue_size: int | None = None


@dataclass(frozen=True)
class EnqueueResult:
    """What :meth:`Broker.enqueue` did."""

    id: str
    #: the pending state the task is in (``None`` when refused).
    state: State | None
    #: ``False`` when a unique task's pending copy was already there.
    created: bool
    #: the due time (score) of the pending copy.
    ts: float
    #: ``True`` when ``max_queue_size`` refused it (only from ``enqueue_many``).
    refused: bool = False


@dataclass(frozen=True)
class FinishRequest:
    """One run to end with :meth:`Broker.finish_many` (the arguments of
    :meth:`Broker.finish` for one task)."""

    task_id: str
    outcome: FinishOutcome
    when: float | None = None
    execution: Execution | None = None
    max_stored_executions: int | None = None


@dataclass
class StoredTask:
    """A task as the broker holds it."""

    id: str
    queue: str
    state: State
    payload: bytes
    #: the score in ``state``: due time (scheduled/queued), last heartbeat
    #: (active) or failure time (error).
    ts: float
    priority: int = 0
    scheduled_at: float | None = None
    time_last_queued: float | None = None
    #: failed executions so far (kept even when the stored list is capped).
    executions_count: int = 0
    #: the newest ``load_executions`` records, oldest first.
    executions: list[Execution] = field(default_factory=list)
    #: ``True`` when the id is in the state's index but its data is missing.
    missing: bool = False
    #: what was unreadable in the data the broker keeps beside the payload
    #: (priority, times, counts), or ``None``; the fields above then hold
    #: defaults. A worker fails such a task instead of running it.
    meta_error: str | None = None


@dataclass(frozen=True)
class DroppedTask:
    """A state entry a broker removed, or moved to ``error``, because the data
    stored for it was missing or unreadable (see :meth:`Broker.take_dropped`)."""

    queue: str
    #: the task id (for an entry too damaged to hold one: the entry itself)
    task_id: str
    #: the state the entry was taken out of
    state: State
    #: what was wrong, for the log line
    reason: str
    #: ``True``: moved to ``error`` with an execution record saying why;
    #: ``False``: removed
    moved_to_error: bool = False


class Broker(abc.ABC):
    """Stores tasks and moves them between states, atomically.

    Subclasses are registered through the ``taskq_register`` hook under a
    name and URL schemes; :func:`taskq_core.plugins.make_broker` builds them.
    """

    #: the name users give to ``--broker``.
    name: ClassVar[str] = ""
    #: whether the worker may fork with this broker (an in-process broker
    #: cannot share its data with a child process).
    supports_fork: ClassVar[bool] = True

    # -- lifecycle -----------------------------------------------------------
    def after_fork(self) -> None:  # noqa: B027 - optional hook
        """Called in a forked child: drop inherited connections."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def check(self) -> list[str]:
        """Return warnings about the broker's setup (logged at worker start)."""
        return []

    @abc.abstractmethod
    def time(self) -> float:
        """The broker's clock, in seconds since the epoch."""

    # -- enqueue -------------------------------------------------------------
    @abc.abstractmethod
    def enqueue(self, request: EnqueueRequest) -> EnqueueResult:
        """Store a task as ``queued`` or ``scheduled`` (transition ``enqueue``).

        Atomic with the uniqueness and ``max_queue_size`` checks.
        Raises :class:`~taskq_core.exceptions.QueueFullException` without
        writing anything when the queue is full.
        """

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[EnqueueResult]:
        """Enqueue many tasks, each atomically, in order (a broker may send them
        in one round trip). A task refused by ``max_queue_size`` does not raise
        here: its result has ``refused=True`` and the others are stored."""
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

        Returns the ids that were refreshed. A task that is no longer active
        or is owned by another worker (it was recovered meanwhile) is left
        alone and not returned.
        """

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
        is owned by another worker.
        """

    def finish_many(
        self, queue: str, worker_id: str, requests: Sequence[FinishRequest]
    ) -> list[bool]:
        """End several runs of ``queue`` (a group run together). Each is one
        atomic :meth:`finish`; a broker may send them in one round trip."""
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

    @abc.abstractmethod
    def expired_tasks(self, older_than: float, limit: int) -> list[tuple[str, str]]:
        """``(queue, id)`` of active tasks whose last heartbeat is before
        ``older_than`` (broker time), across all queues, oldest first."""

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

    # -- locks and semaphores -------------------------------------------------
    @abc.abstractmethod
    def acquire_lock(self, lock_id: str, token: str, ttl: float) -> bool:
        """Take a task lock for ``ttl`` seconds if it is free (or already ours)."""

    @abc.abstractmethod
    def renew_lock(self, lock_id: str, token: str, ttl: float) -> bool:
        """Extend our lock; ``False`` when it is no longer ours."""

    @abc.abstractmethod
    def release_lock(self, lock_id: str, token: str) -> bool:
        """Release our lock; ``False`` when it was not ours any more."""

    @abc.abstractmethod
    def acquire_queue_slot(self, queue: str, worker_id: str, limit: int, ttl: float) -> bool:
        """Take (or renew) one of ``limit`` worker slots of ``queue`` for
        ``ttl`` seconds. Refused while the queue's system lock is set."""

    @abc.abstractmethod
    def release_queue_slot(self, queue: str, worker_id: str) -> None:
        """Give our slot of ``queue`` back."""

    @abc.abstractmethod
    def set_queue_system_lock(self, queue: str, timeout: float) -> None:
        """Keep workers that use queue slots off ``queue`` for ``timeout`` s."""

    @abc.abstractmethod
    def get_queue_system_lock(self, queue: str) -> float | None:
        """The system lock's expiry time, or ``None``."""

    @abc.abstractmethod
    def try_rate_limit(self, name: str, ttl: float) -> bool:
        """``True`` at most once per ``ttl`` seconds for ``name`` across all
        clients (used to spread periodic scans over the worker fleet)."""

    # -- notifications ----------------------------------------------------------
    @abc.abstractmethod
    def wait_for_activity(self, timeout: float) -> set[str]:
        """Block up to ``timeout`` seconds for new ``queued`` work; return the
        queue names announced meanwhile (maybe empty). A missed notification
        is tolerated: the worker also resyncs with :meth:`queues`."""

    # -- inspection -------------------------------------------------------------
    @abc.abstractmethod
    def queues(self, state: State) -> set[str]:
        """Names of the queues that may have tasks in ``state`` (a superset is
        allowed; an empty queue may be listed until it is cleaned up)."""

    @abc.abstractmethod
    def queue_sizes(self, queue: str) -> dict[State, int]:
        """Number of tasks of ``queue`` in every state."""

    @abc.abstractmethod
    def get_task(
        self, queue: str, state: State, task_id: str, load_executions: int = 0
    ) -> StoredTask:
        """The task ``task_id`` in ``queue`` and ``state``.

        Raises :class:`~taskq_core.exceptions.TaskNotFound` when it is not in
        that state or its data is missing."""

    @abc.abstractmethod
    def list_tasks(
        self,
        queue: str,
        state: State,
        skip: int = 0,
        limit: int = 1000,
        load_executions: int = 0,
    ) -> tuple[int, list[StoredTask]]:
        """``(total, tasks)``: the tasks of ``queue`` in ``state`` in ascending
        score order, ``skip`` counted from the oldest. A task whose data is
        missing is returned once, with ``missing=True`` and an empty payload."""

    @abc.abstractmethod
    def executions_count(self, queue: str, task_id: str) -> int:
        """Failed executions of a task; raises ``TaskNotFound`` if its data is
        missing."""

    # -- repair -----------------------------------------------------------------
    @abc.abstractmethod
    def cancel(self, queue: str, task_id: str) -> None:
        """Remove a ``scheduled`` task (``cancel``); ``TaskNotFound`` otherwise."""

    @abc.abstractmethod
    def delete(self, queue: str, task_id: str) -> None:
        """Remove a task in ``error`` (``delete``); ``TaskNotFound`` otherwise."""

    @abc.abstractmethod
    def retry_from_error(self, queue: str, task_id: str) -> None:
        """Move a task from ``error`` to ``queued`` now, keeping its records
        (``retry_from_error``); ``TaskNotFound`` otherwise."""

    @abc.abstractmethod
    def update_scheduled_time(self, queue: str, task_id: str, when: float) -> None:
        """Change a scheduled task's due time and ``scheduled_at`` and nothing
        else (``update_scheduled_time``); ``TaskNotFound`` if not scheduled."""

    @abc.abstractmethod
    def purge_errors(self, queue: str, older_than: float | None, limit: int | None) -> int:
        """Delete up to ``limit`` (``None``: all) tasks of ``queue`` in
        ``error`` that failed before ``older_than`` (``None``: any time),
        oldest first, including ids whose data is missing. ``older_than`` is
        exclusive: a task whose failure time (its ``error`` score) equals it
        is kept. Returns how many were deleted."""

    def iter_queues(self, states: Iterable[State]) -> set[str]:
        """Union of :meth:`queues` over ``states``."""
        names: set[str] = set()
        for state in states:
            names |= self.queues(state)
        return names
