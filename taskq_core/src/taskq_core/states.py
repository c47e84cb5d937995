"""The task state machine, as data.

A task is in one of four states in a queue. Success removes it. Every move is
one named transition; :data:`TRANSITIONS` is the single table of allowed moves
that brokers and tests both read.

A *unique* task (its id is a hash of its queue, function and arguments) may
additionally have one pending copy (``queued`` or ``scheduled``) while its
twin is ``active`` or in ``error``: that is how a periodic task's next period
waits while the current one runs. An ``error`` copy stays until it is retried,
deleted or purged, so a unique task may also be ``active`` and in ``error``
(with or without a pending copy); all its copies share one payload and one
list of execution records.

An id whose data was lost outside taskq is not a task: brokers drop such ids
(``pop``, :meth:`~taskq_core.broker.Broker.drop_expired_missing`, purges)
without a transition.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args

__all__ = [
    "FINISH_TRANSITIONS",
    "OUTCOMES",
    "PENDING_STATES",
    "RECOVER_TRANSITIONS",
    "STATES",
    "TRANSITIONS",
    "Outcome",
    "State",
    "Transition",
    "allowed",
]


class State(StrEnum):
    """Where a task is."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    ACTIVE = "active"
    ERROR = "error"


STATES: tuple[State, ...] = (State.SCHEDULED, State.QUEUED, State.ACTIVE, State.ERROR)
#: States waiting to run; a task has at most one of these at a time.
PENDING_STATES: frozenset[State] = frozenset({State.SCHEDULED, State.QUEUED})


class Transition(StrEnum):
    """Every named move; each is one atomic broker operation."""

    ENQUEUE = "enqueue"
    POP = "pop"
    DONE = "done"
    RETRY_LATER = "retry_later"
    FAIL = "fail"
    LOCK_CONFLICT = "lock_conflict"
    REQUEUE_EXPIRED = "requeue_expired"
    FAIL_EXPIRED = "fail_expired"
    SCHEDULED_DUE = "scheduled_due"
    CANCEL = "cancel"
    DELETE = "delete"
    RETRY_FROM_ERROR = "retry_from_error"
    UPDATE_SCHEDULED_TIME = "update_scheduled_time"


#: ``transition -> (source states, target states)``; ``None`` means "not stored".
TRANSITIONS: dict[Transition, tuple[frozenset[State | None], frozenset[State | None]]] = {
    Transition.ENQUEUE: (frozenset({None}), frozenset({State.QUEUED, State.SCHEDULED})),
    Transition.POP: (frozenset({State.QUEUED}), frozenset({State.ACTIVE})),
    Transition.DONE: (frozenset({State.ACTIVE}), frozenset({None})),
    Transition.RETRY_LATER: (frozenset({State.ACTIVE}), frozenset({State.SCHEDULED})),
    Transition.FAIL: (frozenset({State.ACTIVE}), frozenset({State.ERROR})),
    # a run returned unrun (lock conflict, or a stop before it started):
    # scheduled at a later time, or queued again at once
    Transition.LOCK_CONFLICT: (
        frozenset({State.ACTIVE}),
        frozenset({State.SCHEDULED, State.QUEUED}),
    ),
    Transition.REQUEUE_EXPIRED: (
        frozenset({State.ACTIVE}),
        frozenset({State.QUEUED, State.SCHEDULED}),
    ),
    Transition.FAIL_EXPIRED: (frozenset({State.ACTIVE}), frozenset({State.ERROR})),
    Transition.SCHEDULED_DUE: (frozenset({State.SCHEDULED}), frozenset({State.QUEUED})),
    Transition.CANCEL: (frozenset({State.SCHEDULED}), frozenset({None})),
    Transition.DELETE: (frozenset({State.ERROR}), frozenset({None})),
    Transition.RETRY_FROM_ERROR: (frozenset({State.ERROR}), frozenset({State.QUEUED})),
    Transition.UPDATE_SCHEDULED_TIME: (
        frozenset({State.SCHEDULED}),
        frozenset({State.SCHEDULED}),
    ),
}


def allowed(transition: Transition, source: State | None, target: State | None) -> bool:
    """Whether ``transition`` may move a task from ``source`` to ``target``."""
    sources, targets = TRANSITIONS[transition]
    return source in sources and target in targets


#: How a run ends, as the worker tells the broker (``Broker.finish``):
#: ``done`` removes the task (success, or a dropped failure); ``retry``
#: schedules it again; ``error`` moves it to ``error``; ``requeue`` returns
#: it unrun (a lock conflict, or a stop before it started).
Outcome = Literal["done", "retry", "error", "requeue"]
#: every :data:`Outcome`, for checking a value at run time.
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)

#: the transition an outcome is when a worker ends its own run ...
FINISH_TRANSITIONS: dict[Outcome, Transition] = {
    "done": Transition.DONE,
    "retry": Transition.RETRY_LATER,
    "error": Transition.FAIL,
    "requeue": Transition.LOCK_CONFLICT,
}
#: ... and when a lost worker's run is recovered (``recover_expired``).
RECOVER_TRANSITIONS: dict[Outcome, Transition] = {
    "done": Transition.DONE,
    "retry": Transition.REQUEUE_EXPIRED,
    "error": Transition.FAIL_EXPIRED,
    "requeue": Transition.REQUEUE_EXPIRED,
}
