"""Executors decide the process model of a run.

``fork`` (the default) runs every task group in a child process: whatever the
task leaks dies with the child, and the parent keeps heartbeats going and kills
a child that outlives its hard timeout. ``pool`` keeps one child and sends it
group after group. ``sync`` runs tasks in the worker's own process with a
heartbeat thread, and the worker exits after a hard timeout (its state is
suspect; run it under a supervisor with ``--exit-after``).

Each lives in its own module; the core plugin registers :data:`EXECUTORS`, and
a plugin adds its own with ``register.executor(name, factory)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from taskq_core.config import DEFAULT_EXECUTOR
from taskq_core.executors.base import Executor, ExecutorHost, Heartbeat
from taskq_core.executors.fork import HEADER, ForkExecutor, write_frame
from taskq_core.executors.pool import PoolExecutor
from taskq_core.executors.sync import SyncExecutor

__all__ = [
    "DEFAULT_EXECUTOR",
    "EXECUTORS",
    "HEADER",
    "Executor",
    "ExecutorHost",
    "ForkExecutor",
    "Heartbeat",
    "PoolExecutor",
    "SyncExecutor",
    "write_frame",
]

#: the executors of taskq-core, by the name ``--executor`` takes.
EXECUTORS: Mapping[str, Callable[[ExecutorHost], Executor]] = {
    "fork": ForkExecutor,
    "sync": SyncExecutor,
    "pool": PoolExecutor,
}
