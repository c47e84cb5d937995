"""The app of the mixed-batch worker tests (``--app batch_app:tq``): a batch
queue ``mix`` whose pops mix batch and plain functions and runner classes.

Every call appends ``name runner id,id,...`` to ``$TASKQ_TEST_DIR/calls`` (the
calls may happen in forked children, so the trace is a file).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from taskq_core import TaskQ
from taskq_core.runners import DefaultRunner
from taskq_core.task import Task

tq = TaskQ(
    config={
        "BATCH_QUEUES": {"mix": 4},
        "ACTIVE_TASK_UPDATE_TIMER": 0.2,
        "ACTIVE_TASK_UPDATE_TIMEOUT": 1.5,
        "REQUEUE_EXPIRED_TASKS_INTERVAL": 0.2,
        "QUEUE_SCHEDULED_TASKS_TIME": 0.1,
        "QUEUE_RESYNC_INTERVAL": 0.3,
        "SELECT_TIMEOUT": 0.1,
        "STATS_INTERVAL": 0,
    }
)

#: the runner class making the current call (per thread and task: with
#: ``-c N`` in-process executors make calls side by side)
_runner: ContextVar[str] = ContextVar("runner", default="DefaultRunner")


def _trace(name: str, ids: list[str]) -> None:
    runner = _runner.get()
    with open(Path(os.environ["TASKQ_TEST_DIR"]) / "calls", "a") as fh:
        fh.write(f"{name} {runner} {','.join(ids)}\n")


class OtherRunner(DefaultRunner):
    """A second runner class; says that it made the call."""

    def run_single_task(self, task: Task, hard_timeout_s: float | None) -> Any:
        token = _runner.set("OtherRunner")
        try:
            return super().run_single_task(task, hard_timeout_s)
        finally:
            _runner.reset(token)

    def run_batch_tasks(self, tasks: Sequence[Task], hard_timeout_s: float | None) -> Any:
        token = _runner.set("OtherRunner")
        try:
            return super().run_batch_tasks(tasks, hard_timeout_s)
        finally:
            _runner.reset(token)


@tq.task(batch=True, queue="mix")
def batch_a(params: list[dict[str, Any]]) -> None:
    _trace("batch_a", [t.id for t in tq.current_tasks])


@tq.task(batch=True, queue="mix")
def batch_b(params: list[dict[str, Any]]) -> None:
    _trace("batch_b", [t.id for t in tq.current_tasks])


@tq.task(batch=True, queue="mix")
async def batch_async(params: list[dict[str, Any]]) -> None:
    """A batch function that is ``async def`` (every executor runs it)."""
    await asyncio.sleep(0)
    _trace("batch_async", [t.id for t in tq.current_tasks])


@tq.task(queue="mix")
def plain(n: int = 0) -> None:
    _trace("plain", [tq.current_task.id])


@tq.task(queue="mix")
def plain_exits(n: int = 0) -> None:
    """Ends its process without a word (as a crash in C code would)."""
    _trace("plain_exits", [tq.current_task.id])
    os._exit(3)


@tq.task(queue="mix")
def plain_slow(seconds: float) -> None:
    """Runs longer than ACTIVE_TASK_UPDATE_TIMEOUT."""
    _trace("plain_slow", [tq.current_task.id])
    time.sleep(seconds)


@tq.task(queue="mix", hard_timeout=0.5)
def plain_maybe(n: int, mode: str) -> None:
    """``ok`` returns; ``exit`` ends its process; ``hang`` ignores its
    SIGALRM hard timeout, so only the worker's SIGKILL stops it."""
    _trace("plain_maybe", [tq.current_task.id])
    if mode == "exit":
        os._exit(3)
    if mode == "hang":
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        time.sleep(60)
