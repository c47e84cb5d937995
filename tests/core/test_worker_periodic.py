"""Periodic tasks at worker start: declared on any TaskQ, robust to bad entries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import structlog
import structlog.testing

from taskq_core import TaskQ, periodic
from taskq_core.app import PERIODIC_TASKS
from taskq_core.brokers.memory import MemoryBroker


@pytest.fixture
def saved_periodic() -> Iterator[None]:
    saved = dict(PERIODIC_TASKS)
    yield
    PERIODIC_TASKS.clear()
    PERIODIC_TASKS.update(saved)


def every_minute() -> None:
    """A periodic task declared in a test."""


def test_unimportable_periodic_task_is_logged_and_others_still_scheduled(
    saved_periodic: None,
) -> None:
    """A periodic entry whose module is gone is logged as an error; the worker still
    schedules the other periodic tasks and runs normally."""
    declaring = TaskQ(broker=MemoryBroker())
    declaring.task(schedule=periodic(minutes=1))(every_minute)

    def ghost() -> None:
        """Looks like a function of a module that no longer exists."""

    def ghost_retry(retry_number: int) -> float:
        """A custom retry function of the same vanished module."""
        return 1.0

    for func, name in ((ghost, "ghost"), (ghost_retry, "ghost_retry")):
        func.__module__ = "a_module_that_was_removed"
        func.__qualname__ = name
    ghost._taskq_options = {  # type: ignore[attr-defined]
        "schedule": periodic(minutes=1),
        "unique": True,
        "retry_method": ghost_retry,
    }
    PERIODIC_TASKS["a_module_that_was_removed:ghost"] = ghost

    tq = TaskQ(broker=MemoryBroker())
    with structlog.testing.capture_logs() as logs:
        tq.run_worker(burst=True)
    assert tq.get_queue_sizes("default")["scheduled"] == 1
    errors = [e for e in logs if e["event"] == "could not queue periodic task"]
    assert [e["func"] for e in errors] == ["a_module_that_was_removed:ghost"]


def test_periodic_declared_on_another_app_is_scheduled_by_a_worker(saved_periodic: Any) -> None:
    """Decision 7: a worker schedules periodic tasks whichever TaskQ declared them."""
    other = TaskQ(broker=MemoryBroker())
    other.task(schedule=periodic(seconds=30), queue="periodic")(every_minute)
    tq = TaskQ(broker=MemoryBroker())
    tq.run_worker(burst=True)
    assert tq.get_queue_sizes("periodic")["scheduled"] == 1
