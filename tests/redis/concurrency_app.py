"""The app of the concurrency process tests (``--app concurrency_app:tq``).

Tasks leave traces under ``$TASKQ_TEST_DIR``: a ``start`` line when they
begin, and they can wait until ``n`` of them have started (so a test sees N
tasks running at once, whatever the executor)."""

from __future__ import annotations

import asyncio
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
        "QUEUE_RESYNC_INTERVAL": 0.5,
        "SELECT_TIMEOUT": 0.2,
        "DEFAULT_HARD_TIMEOUT": 20,
        "STATS_INTERVAL": 0,
        "DEFAULT_RETRY_METHOD": fixed(0.2, 3),
    }
)


def _dir() -> Path:
    return Path(os.environ["TASKQ_TEST_DIR"])


def _trace(name: str, text: str) -> None:
    with open(_dir() / name, "a") as fh:
        fh.write(text + "\n")


def _started() -> int:
    path = _dir() / "starts"
    return len(path.read_text().splitlines()) if path.exists() else 0


@tq.task(retry=True)
def together(label: str, n: int, hold: float = 0.0) -> None:
    """Say it started (with its pid and its own current task id), wait until
    ``n`` tasks have started, hold ``hold`` seconds (on its first run only),
    say it finished."""
    _trace("starts", f"{label} {os.getpid()} {tq.current_task.id}")
    deadline = time.time() + 15
    while _started() < n and time.time() < deadline:
        time.sleep(0.02)
    if tq.current_task.n_executions() == 0:
        time.sleep(hold)
    _trace("finished", f"{label} {tq.current_task.n_executions()}")


@tq.task
def whoami(label: str) -> None:
    _trace("pids", f"{label} {os.getpid()}")


@tq.task(hard_timeout=0.5)
def stuck() -> None:
    _trace("stuck", "started")
    time.sleep(30)


@tq.task
async def atogether(label: str, n: int) -> None:
    """The async twin of :func:`together` (without holding)."""
    _trace("starts", f"{label} {os.getpid()} {tq.current_task.id}")
    deadline = time.time() + 15
    while _started() < n and time.time() < deadline:
        await asyncio.sleep(0.02)
    _trace("finished", f"{label} 0")
