"""taskq's pytest plugin (loaded automatically through the ``pytest11`` entry point).

Fixtures for users' tests:

* ``taskq_app`` — a fresh :class:`~taskq_core.TaskQ` on an in-memory broker.
* ``taskq_run`` — a function that runs every queued task of an app (a burst
  worker in this process) and fails the test if any task ended in ``error``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from taskq_core.app import PERIODIC_TASKS, TaskQ
from taskq_core.brokers.memory import MemoryBroker
from taskq_core.testing import run_tasks

__all__ = ["taskq_app", "taskq_run"]


@pytest.fixture
def taskq_app() -> Iterator[TaskQ]:
    """A ``TaskQ`` on a fresh memory broker (tasks run in this process)."""
    periodic = dict(PERIODIC_TASKS)
    broker = MemoryBroker()
    yield TaskQ(broker=broker)
    broker.close()
    # periodic tasks declared during the test do not leak into later tests
    PERIODIC_TASKS.clear()
    PERIODIC_TASKS.update(periodic)


@pytest.fixture
def taskq_run() -> Callable[..., int]:
    """``taskq_run(tq, raise_on_errors=True, **worker_options) -> int``: run queued tasks."""

    def run(tq: TaskQ, raise_on_errors: bool = True, **options: Any) -> int:
        return run_tasks(tq, raise_on_errors=raise_on_errors, **options)

    return run
