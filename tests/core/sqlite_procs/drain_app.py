"""The app of the 10,000-task drain (``--app drain_app:tq``; the broker comes
from ``TASKQ_URL``).

Every execution of :func:`step` appends one line ``<task id> <pid> <ppid>``
to ``$TASKQ_TEST_DIR/runs`` when it starts and one to ``done`` when it ends,
each with a single ``write`` on a file opened with ``O_APPEND`` (whole lines
from any number of processes, never interleaved). A run lost with its worker
is retried once its heartbeat is 5 s old: far later than the heartbeats of
living workers come on a busy machine, soon enough for the test not to wait
long.
"""

from __future__ import annotations

import os
import time

from taskq_core import TaskQ, fixed

tq = TaskQ(
    config={
        "ACTIVE_TASK_UPDATE_TIMER": 0.2,
        "ACTIVE_TASK_UPDATE_TIMEOUT": 5,
        "REQUEUE_EXPIRED_TASKS_INTERVAL": 0.5,
        "QUEUE_SCHEDULED_TASKS_TIME": 0.1,
        "SELECT_TIMEOUT": 0.2,
        "STATS_INTERVAL": 0,
    }
)


def _append(name: str) -> None:
    line = f"{tq.current_task.id} {os.getpid()} {os.getppid()}\n"
    path = os.path.join(os.environ["TASKQ_TEST_DIR"], name)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@tq.task(retry=True, retry_method=fixed(0.2, 3))
def step(hold: float) -> None:
    """Say it started, hold ``hold`` seconds, say it is done."""
    _append("runs")
    time.sleep(hold)
    _append("done")
