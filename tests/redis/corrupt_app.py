"""The app and tasks of the corrupted-data tests (``--app corrupt_app:tq``).

``good`` is what a healthy task runs; ``ran_anyway`` is the function every
corrupted payload names, so a worker that ran a corrupted task anyway leaves
a trace. Traces are lines in files under ``$TASKQ_TEST_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from taskq_core import TaskQ

#: fast timings; the broker comes from ``TASKQ_URL`` when first used
FAST = {
    "ACTIVE_TASK_UPDATE_TIMER": 0.2,
    "ACTIVE_TASK_UPDATE_TIMEOUT": 1.5,
    "REQUEUE_EXPIRED_TASKS_INTERVAL": 0.2,
    "REQUEUE_EXPIRED_TASKS_BATCH_SIZE": 500,
    "QUEUE_SCHEDULED_TASKS_TIME": 0.1,
    "QUEUE_RESYNC_INTERVAL": 0.3,
    "SELECT_TIMEOUT": 0.1,
    "LOCK_RETRY": 0.1,
    "STATS_INTERVAL": 0,
}

tq = TaskQ(config=FAST)

GOOD = "corrupt_app:good"
RAN_ANYWAY = "corrupt_app:ran_anyway"


def _trace(name: str, text: str) -> None:
    with open(Path(os.environ["TASKQ_TEST_DIR"]) / name, "a") as fh:
        fh.write(text + "\n")


def good(tag: str) -> None:
    """A healthy task: appends its tag to the ``good`` trace."""
    _trace("good", tag)


def ran_anyway(*args: Any, **kwargs: Any) -> None:
    """Named by every corrupted payload: it must never run."""
    _trace("ran_anyway", tq.current_task.id)
