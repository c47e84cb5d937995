"""Inspection and repair: what operators (the ``Task`` API, the CLI, a web
page) use to look at queues and tasks and to fix them by hand.

Reads never move a task. The repairs (``cancel``, ``delete``,
``retry_from_error``, ``update_scheduled_time``) are transitions of the state
table like the worker's moves, each one atomic operation; ``purge_errors``
deletes many ``error`` tasks in one call.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable

from taskq_core.broker.records import StoredTask
from taskq_core.states import State

__all__ = ["Inspection"]


class Inspection(abc.ABC):
    """The inspection and repair methods of :class:`~taskq_core.broker.Broker`."""

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
        score order (``queued``: by queued time whatever the priority, not in
        pop order; equal scores in one fixed order, so that pages never
        repeat or skip a task), ``skip`` counted from the oldest; a negative
        ``skip`` or ``limit`` counts as 0. ``total`` counts the whole state. A
        task whose data is missing is returned once, with ``missing=True``
        and an empty payload."""

    @abc.abstractmethod
    def executions_count(self, queue: str, task_id: str) -> int:
        """Failed executions of a task; raises ``TaskNotFound`` if its data is
        missing."""

    def iter_queues(self, states: Iterable[State]) -> set[str]:
        """Union of :meth:`queues` over ``states``."""
        names: set[str] = set()
        for state in states:
            names |= self.queues(state)
        return names

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
        else (``update_scheduled_time``); ``TaskNotFound`` if not scheduled,
        ``ValueError`` for a ``when`` that is not a finite number."""

    @abc.abstractmethod
    def purge_errors(self, queue: str, older_than: float | None, limit: int | None) -> int:
        """Delete up to ``limit`` (``None``: all) tasks of ``queue`` in
        ``error`` that failed before ``older_than`` (``None``: any time),
        oldest first, including ids whose data is missing. ``older_than`` is
        exclusive: a task whose failure time (its ``error`` score) equals it
        is kept. Returns how many were deleted; a ``limit`` below 1 is a
        ``ValueError``."""
