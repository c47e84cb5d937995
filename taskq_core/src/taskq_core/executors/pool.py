"""The ``pool`` executor: ``concurrency`` long-lived child processes, each
running many task groups, one at a time.

Forking for every task (the ``fork`` executor) costs a few milliseconds a
task. A pool child is forked once and then runs group after group sent to it
over a pipe, so a worker goes several times faster on short tasks. What it
keeps from ``fork``: a task that crashes the child, hangs past its hard
timeout or calls ``os._exit`` only costs that child (the worker records the
failure and forks a new one), and the worker's own state is never touched by
task code. What it gives up: tasks share their child with the tasks before
them, so leaks and global changes carry over — a child is replaced after
``POOL_MAX_TASKS_PER_CHILD`` tasks, or past ``POOL_MAX_MEMORY_PER_CHILD``
megabytes, to bound that.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass

from taskq_core import serialization
from taskq_core.executors.base import ExecutorHost
from taskq_core.executors.fork import (
    ForkExecutor,
    close_fd,
    read_frame,
    task_wire,
    tasks_from_wire,
    write_frame,
)
from taskq_core.task import Task

__all__ = ["PoolExecutor"]


def _rss_mb(pid: int) -> float | None:
    """A process's resident memory in megabytes (``None`` where unknown)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass(eq=False)
class _PoolChild:
    """One long-lived child and its two pipes."""

    pid: int
    to_child: int
    from_child: int
    served: int = 0


class PoolExecutor(ForkExecutor):
    """Runs task groups in ``concurrency`` reused child processes, each one
    group at a time. A child is replaced after ``POOL_MAX_TASKS_PER_CHILD``
    tasks (``--max-tasks-per-child``), when its memory passes
    ``POOL_MAX_MEMORY_PER_CHILD`` megabytes (``--max-memory-per-child``), or
    when it dies or is killed (which costs only the task it was running)."""

    #: children are reused: no child is forked ahead
    forks_ahead = False

    def __init__(self, worker: ExecutorHost) -> None:
        super().__init__(worker)
        self._idle: list[_PoolChild] = []
        self._busy: dict[int, _PoolChild] = {}

    def _launch(self, tasks: Sequence[Task]) -> tuple[int, int]:
        child = self._idle.pop() if self._idle else self._spawn()
        try:
            write_frame(child.to_child, serialization.pack([task_wire(t) for t in tasks]))
        except OSError:  # the idle child died: the next one gets the work
            self._retire(child, kill=True)
            return self._launch(tasks)
        child.served += len(tasks)
        self._busy[child.from_child] = child
        return child.pid, child.from_child

    def _spawn(self) -> _PoolChild:
        requests_r, requests_w = os.pipe()
        results_r, results_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(requests_w)
            os.close(results_r)
            for other in [*self._idle, *self._busy.values()]:  # not this child's pipes
                close_fd(other.to_child)
                close_fd(other.from_child)
            self._serve(requests_r, results_w)
        os.close(requests_r)
        os.close(results_w)
        return _PoolChild(pid, requests_w, results_r)

    def _done_with(self, pid: int, read_fd: int) -> None:
        """Results received: keep the child for the next group, unless it has
        served its share or grown past its memory limit."""
        child = self._busy.pop(read_fd)
        max_tasks = int(
            getattr(self.worker, "max_tasks_per_child", None)
            or self.tq.config["POOL_MAX_TASKS_PER_CHILD"]
        )
        max_mb = (
            getattr(self.worker, "max_memory_per_child", None)
            or self.tq.config["POOL_MAX_MEMORY_PER_CHILD"]
        )
        if child.served >= max_tasks:
            self._retire(child, kill=False)
        elif max_mb is not None and (rss := _rss_mb(pid)) is not None and rss > float(max_mb):
            self.worker.log.info("replacing pool child", child_pid=pid, rss_mb=round(rss, 1))
            self._retire(child, kill=False)
        else:
            self._idle.append(child)

    def _lost(self, pid: int) -> None:
        """The child died or was killed: forget it (the caller reaps it)."""
        for fd, child in list(self._busy.items()):
            if child.pid == pid:
                del self._busy[fd]
                close_fd(child.to_child)

    def _retire(self, child: _PoolChild, kill: bool) -> None:
        """Let a child go: closing its request pipe makes it exit."""
        close_fd(child.to_child)
        close_fd(child.from_child)
        if kill:
            try:
                os.kill(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._exiting.append(child.pid)

    def close(self) -> None:
        for child in [*self._idle, *self._busy.values()]:
            self._retire(child, kill=False)
        self._idle, self._busy = [], {}
        super().close()

    def _serve(self, requests_fd: int, results_fd: int) -> None:
        """In the child: run groups until the request pipe closes, then exit."""
        self._in_child(lambda: self._serve_requests(requests_fd, results_fd))

    def _serve_requests(self, requests_fd: int, results_fd: int) -> None:
        while (frame := read_frame(requests_fd)) is not None:
            self._run_and_send(tasks_from_wire(self.tq, frame), results_fd)
