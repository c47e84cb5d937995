"""The tasks of the SQLite corrupted-data tests.

``good`` is what a healthy task runs; ``ran_anyway`` is the function every
corrupted task names, so a worker that ran one anyway leaves a trace. Traces
are lines in files under ``$TASKQ_TEST_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: fast timings for the workers of these tests
FAST = {
    "ACTIVE_TASK_UPDATE_TIMER": 0.2,
    "ACTIVE_TASK_UPDATE_TIMEOUT": 1.0,
    "REQUEUE_EXPIRED_TASKS_INTERVAL": 0.1,
    "QUEUE_SCHEDULED_TASKS_TIME": 0.1,
    "SELECT_TIMEOUT": 0.1,
    "STATS_INTERVAL": 0,
}

GOOD = "sqlite_corrupt_app:good"
RAN_ANYWAY = "sqlite_corrupt_app:ran_anyway"


def _trace(name: str, text: str) -> None:
    with open(Path(os.environ["TASKQ_TEST_DIR"]) / name, "a") as fh:
        fh.write(text + "\n")


def good(tag: str) -> None:
    """A healthy task: appends its tag to the ``good`` trace."""
    _trace("good", tag)


def ran_anyway(*args: Any, **kwargs: Any) -> None:
    """Named by every corrupted task: it must never run."""
    _trace("ran_anyway", repr(args))
