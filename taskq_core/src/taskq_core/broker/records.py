"""The records the broker contract passes: what a client asks for
(:class:`EnqueueRequest`, :class:`FinishRequest`), what the broker answers
(:class:`EnqueueResult`, :class:`StoredTask`, :class:`DroppedTask`) and the
execution records it stores beside a task (:class:`Execution`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

from taskq_core.states import Outcome, State

__all__ = [
    "DroppedTask",
    "EnqueueRequest",
    "EnqueueResult",
    "Execution",
    "FinishOutcome",
    "FinishRequest",
    "SchemaPlan",
    "StoredTask",
]


class Execution(TypedDict, total=False):
    """An execution record: what one failed run left behind.

    The worker writes ``time_started``, ``time_failed``, ``exception_name``,
    ``success``, ``host``, and optionally the other keys below. Brokers store
    a record as given (every key, also one not named here) and give it back
    unchanged. A record read back from storage may have been damaged there:
    readers look keys up with ``.get`` and check what they use.
    """

    #: when the run started (epoch seconds, the worker's clock)
    time_started: float
    #: when it failed (epoch seconds, the worker's clock)
    time_failed: float
    #: ``module:QualName`` of the exception class
    exception_name: str
    #: the exception's text (``str(exc)``, shortened), or what went wrong
    #: when the failure was seen from outside (a killed child)
    exception: str
    #: always ``False``: only failed runs leave a record
    success: bool
    #: the host the run failed on (``"redis"`` for a task the Redis broker
    #: moved to ``error`` because its data was unreadable)
    host: str
    #: the formatted traceback (when the worker stores tracebacks)
    traceback: str
    #: ``True`` when the task raised ``RetryException``
    retry: bool
    #: the retry policy spec (``[path, [args...]]``) the ``RetryException`` asked for
    retry_method: list[Any]
    #: whether the failure is logged as an error (``RetryException(log_error=...)``)
    log_error: bool
    #: the worker that ran the task
    worker_id: str
    #: what a misbehaving retry or schedule policy did (the task then failed
    #: permanently)
    policy_error: str
    #: what is wrong with a stored record the broker could not read back (the
    #: record then holds only this key)
    unreadable: str


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


@dataclass(frozen=True)
class SchemaPlan:
    """The stored schema of a broker that keeps one (an SQL broker's tables),
    and the statements that bring it to the version this taskq writes (what
    ``taskq db upgrade`` runs, and ``--dry-run`` prints)."""

    #: what holds the schema, for messages (a file, a database)
    where: str
    #: the stored version (``None``: no schema yet, it would be created)
    stored: int | None
    #: the version this taskq writes
    current: int
    #: the statements, in order, that take ``stored`` to ``current`` in one
    #: transaction (empty: the schema is current)
    statements: tuple[str, ...] = ()
