"""The app of the misbehaving-policy worker tests (``--app policy_app:tq``):
retry policies that return inf, NaN or a negative delay, or raise
(Decision 17). Tasks leave traces under ``$TASKQ_TEST_DIR``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from taskq_core import TaskQ

tq = TaskQ(
    config={
        "ACTIVE_TASK_UPDATE_TIMER": 0.2,
        "ACTIVE_TASK_UPDATE_TIMEOUT": 1.5,
        "REQUEUE_EXPIRED_TASKS_INTERVAL": 0.2,
        "QUEUE_SCHEDULED_TASKS_TIME": 0.1,
        "QUEUE_RESYNC_INTERVAL": 0.3,
        "SELECT_TIMEOUT": 0.1,
        "STATS_INTERVAL": 0,
    }
)


def returns(retry_number: int, value: Any) -> Any:
    """A retry policy that returns ``value``, whatever it is."""
    return value


def exits(retry_number: int) -> float:
    """A retry policy that raises SystemExit."""
    raise SystemExit("the policy exits")


@tq.task
def fail(key: str) -> None:
    """Always fails."""
    raise ValueError(f"task {key} failed")


@tq.task
def record(name: str) -> None:
    """Append a line to the trace file ``name``."""
    with open(Path(os.environ["TASKQ_TEST_DIR"]) / name, "a") as fh:
        fh.write("ran\n")
