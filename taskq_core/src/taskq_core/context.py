"""The task(s) being run, per thread and per asyncio task.

Executors and eager runs enter :func:`running`; ``tq.current_task`` and the
log processor read :data:`current`. The value lives in a
:class:`contextvars.ContextVar`, so two tasks run by threads of one process,
or by two asyncio tasks of one event loop, each see their own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

__all__ = ["Running", "current", "running"]


@dataclass(frozen=True)
class Running:
    """What is running in this context: the app, its task(s), whether as a batch."""

    tq: Any = None
    tasks: tuple[Any, ...] = ()
    is_batch: bool = False
    active: bool = False


_NOTHING = Running()
_running: ContextVar[Running] = ContextVar("taskq_running", default=_NOTHING)


class _Current:
    """A read-only view of this context's :class:`Running` (attribute access
    as before the ContextVar: ``current.active``, ``current.tasks``...)."""

    __slots__ = ()

    @property
    def tq(self) -> Any:
        return _running.get().tq

    @property
    def tasks(self) -> list[Any]:
        return list(_running.get().tasks)

    @property
    def is_batch(self) -> bool:
        return _running.get().is_batch

    @property
    def active(self) -> bool:
        return _running.get().active

    def get(self) -> Running:
        """The whole :class:`Running` value of this context."""
        return _running.get()


current = _Current()


@contextmanager
def running(tq: Any, tasks: Sequence[Any], is_batch: bool) -> Iterator[None]:
    """Mark ``tasks`` as the current ones in this context for the block."""
    token = _running.set(Running(tq, tuple(tasks), is_batch, True))
    try:
        yield
    finally:
        _running.reset(token)
