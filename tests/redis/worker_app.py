"""The app the process-level worker tests run (``--app worker_app:tq``).

Short timeouts keep the tests fast. Tasks leave traces as lines in files under
``$TASKQ_TEST_DIR`` so the test process can see what ran, when, and where.
"""

from __future__ import annotations

import os
import signal
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
        "LOCK_RETRY": 0.1,
        "DEFAULT_HARD_TIMEOUT": 20,
        "STATS_INTERVAL": 0,
        "DEFAULT_RETRY_METHOD": fixed(0.2, 3),
    }
)


def _trace(name: str, text: str) -> None:
    with open(Path(os.environ["TASKQ_TEST_DIR"]) / name, "a") as fh:
        fh.write(text + "\n")


@tq.task
def record(name: str, value: str = "ran") -> None:
    """Append ``value`` to the trace file ``name``."""
    _trace(name, value)


@tq.task
def slow(name: str, seconds: float) -> None:
    """Say it started, sleep, say it finished."""
    _trace(name, "started")
    time.sleep(seconds)
    _trace(name, "finished")


@tq.task(retry=True)
def slow_then_quick(name: str, seconds: float) -> None:
    """The first run is slow (the test kills its worker); later runs are quick."""
    runs = tq.current_task.n_executions()
    _trace(name, f"run {runs}")
    if runs == 0:
        time.sleep(seconds)
    _trace(name, f"finished {runs}")


@tq.task(hard_timeout=0.5)
def hang_ignoring_alarm(name: str) -> None:
    """Ignores SIGALRM, so only the parent's SIGKILL can stop it."""
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    _trace(name, "started")
    time.sleep(60)


@tq.task(lock=True, lock_key="resource")
def exclusive(name: str, resource: str, seconds: float) -> None:
    """Record the start and end of each run; runs holding one lock never overlap."""
    _trace(name, f"start {time.time():.6f} {os.getpid()}")
    time.sleep(seconds)
    _trace(name, f"end {time.time():.6f} {os.getpid()}")


@tq.task(unique=True)
def unique_job(name: str) -> None:
    """A unique task: enqueued many times, it is pending at most once."""
    _trace(name, "ran")
    time.sleep(0.2)
