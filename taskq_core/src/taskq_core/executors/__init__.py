"""Executors decide the process model of a run.

``fork`` (the default) runs every task group in a child process: whatever the
task leaks dies with the child, and the worker keeps heartbeats going and kills
a child that outlives its hard timeout. ``pool`` keeps long-lived children and
sends them group after group. ``threads`` runs groups in threads of the
worker's process, ``asyncio`` awaits ``async def`` tasks on one event loop.
``sync`` runs tasks in the worker's own process with a heartbeat thread, and
the worker exits after a hard timeout (its state is suspect; run it under a
supervisor with ``--exit-after``). Every one runs up to ``--concurrency``
groups at once.

Each lives in its own module; the core plugin registers :data:`EXECUTORS`, and
a plugin adds its own with ``register.executor(name, factory)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from taskq_core.config import DEFAULT_EXECUTOR
from taskq_core.executors.asyncio import AsyncioExecutor
from taskq_core.executors.base import Executor, ExecutorHost, Finished, Heartbeat, Run
from taskq_core.executors.fork import HEADER, ForkExecutor, write_frame
from taskq_core.executors.pool import PoolExecutor
from taskq_core.executors.sync import SyncExecutor
from taskq_core.executors.threads import ThreadsExecutor

__all__ = [
    "DEFAULT_EXECUTOR",
    "EXECUTORS",
    "HEADER",
    "AsyncioExecutor",
    "Executor",
    "ExecutorHost",
    "Finished",
    "ForkExecutor",
    "Heartbeat",
    "PoolExecutor",
    "Run",
    "SyncExecutor",
    "ThreadsExecutor",
    "sync_executor",
    "write_frame",
]


def sync_executor(worker: ExecutorHost) -> Executor:
    """``sync``: one task at a time in the worker's process; with
    ``--concurrency N`` above 1, N threads of it (the ``threads`` executor)."""
    if int(getattr(worker, "concurrency", 1)) > 1:
        return ThreadsExecutor(worker)
    return SyncExecutor(worker)


#: the executors of taskq-core, by the name ``--executor`` takes.
EXECUTORS: Mapping[str, Callable[[ExecutorHost], Executor]] = {
    "fork": ForkExecutor,
    "sync": sync_executor,
    "pool": PoolExecutor,
    "threads": ThreadsExecutor,
    "asyncio": AsyncioExecutor,
}
