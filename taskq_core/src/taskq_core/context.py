"""The task(s) the current process is running (set by executors and eager runs)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskq_core.task import Task

__all__ = ["current", "running"]


@dataclass
class _Current:
    tq: Any = None
    tasks: list[Task] = field(default_factory=list)
    is_batch: bool = False
    active: bool = False


current = _Current()


@contextmanager
def running(tq: Any, tasks: Sequence[Task], is_batch: bool) -> Iterator[None]:
    """Mark ``tasks`` as the current ones for the duration of the block."""
    saved = (current.tq, current.tasks, current.is_batch, current.active)
    current.tq, current.tasks, current.is_batch, current.active = tq, list(tasks), is_batch, True
    try:
        yield
    finally:
        current.tq, current.tasks, current.is_batch, current.active = saved
