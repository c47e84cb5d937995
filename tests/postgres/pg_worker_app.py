"""The app of the PostgreSQL worker process tests (``--app pg_worker_app:tq``;
the broker comes from ``--url``/``TASKQ_URL``).

``trace`` leaves a ``start`` and a ``done`` line, with its label, pid and
parent's pid (the worker's, under a forking executor), under
``$TASKQ_TEST_DIR``, holding ``hold`` seconds between them; a lost run is
retried after 0.2 s.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from taskq_core import TaskQ, fixed

tq = TaskQ(
    config={
        "ACTIVE_TASK_UPDATE_TIMER": 0.2,
        "ACTIVE_TASK_UPDATE_TIMEOUT": 1.5,
        "REQUEUE_EXPIRED_TASKS_INTERVAL": 0.3,
        "QUEUE_SCHEDULED_TASKS_TIME": 0.1,
        "SELECT_TIMEOUT": 0.2,
        "STATS_INTERVAL": 0,
    }
)


def _trace(name: str, text: str) -> None:
    with open(Path(os.environ["TASKQ_TEST_DIR"]) / name, "a") as fh:
        fh.write(text + "\n")


@tq.task(retry=True, retry_method=fixed(0.2, 3))
def trace(label: str, hold: float = 0.0) -> None:
    """Say it started, hold, say it is done."""
    _trace("start", f"{label} {os.getpid()} {os.getppid()}")
    if hold:
        time.sleep(hold)
    _trace("done", f"{label} {os.getpid()} {os.getppid()}")
