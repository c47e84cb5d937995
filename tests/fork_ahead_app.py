"""The app of the fork-ahead process tests: ``--app fork_ahead_app:tq`` forks
each child ahead of its task (the default), ``fork_ahead_app:tq_at_task``
forks it when the task is popped (``FORK_AHEAD`` off)."""

from __future__ import annotations

import os
from pathlib import Path

from taskq_core import TaskQ

CONFIG = {
    "ACTIVE_TASK_UPDATE_TIMER": 0.2,
    "ACTIVE_TASK_UPDATE_TIMEOUT": 1.5,
    "SELECT_TIMEOUT": 0.2,
    "STATS_INTERVAL": 0,
}

tq = TaskQ(config=CONFIG)
tq_at_task = TaskQ(config={**CONFIG, "FORK_AHEAD": False})


def whoami(label: str) -> None:
    """Note the label, the pid of the process running it and its parent's."""
    with open(Path(os.environ["TASKQ_TEST_DIR"]) / "pids", "a") as fh:
        fh.write(f"{label} {os.getpid()} {os.getppid()}\n")
