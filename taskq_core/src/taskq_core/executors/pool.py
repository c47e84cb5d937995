"""The ``pool`` executor: one long-lived child process runs many task groups.

Forking for every task (the ``fork`` executor) costs a few milliseconds a
task. A pool child is forked once and then runs group after group sent to it
over a pipe, so a worker goes several times faster on short tasks. What it
keeps from ``fork``: a task that crashes the child, hangs past its hard
timeout or calls ``os._exit`` only costs that child (the worker records the
failure and forks a new one), and the worker's own state is never touched by
task code. What it gives up: tasks share their child with the tasks before
them, so leaks and global changes carry over — the child is replaced after
``POOL_MAX_TASKS_PER_CHILD`` tasks to bound that.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from typing import Any

from taskq_core import serialization
from taskq_core.broker import StoredTask
from taskq_core.executors.base import ExecutorHost
from taskq_core.executors.fork import HEADER, ForkExecutor, write_frame
from taskq_core.states import State
from taskq_core.task import Task

__all__ = ["PoolExecutor"]


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = os.read(fd, size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def _read_frame(fd: int) -> bytes | None:
    header = _read_exact(fd, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    return _read_exact(fd, size)


def _close(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:  # already closed on an error path
            pass


def _task_wire(task: Task) -> dict[str, Any]:
    stored = task._stored
    return {
        "id": task.id,
        "queue": task.queue,
        "payload": task.payload(),
        "count": stored.executions_count if stored else 0,
        "ts": stored.ts if stored else 0.0,
    }


class PoolExecutor(ForkExecutor):
    """Runs task groups in one reused child process (replaced after
    ``POOL_MAX_TASKS_PER_CHILD`` tasks, or when it dies or is killed)."""

    def __init__(self, worker: ExecutorHost) -> None:
        super().__init__(worker)
        self._pid: int | None = None
        self._to_child: int | None = None
        self._from_child: int | None = None
        self._served = 0

    def _launch(self, tasks: Sequence[Task]) -> tuple[int, int]:
        if self._pid is None:
            self._spawn()
        assert self._pid is not None
        assert self._to_child is not None
        assert self._from_child is not None
        try:
            write_frame(self._to_child, serialization.pack([_task_wire(t) for t in tasks]))
        except OSError:  # the idle child died: the next one gets the work
            self._retire(kill=True)
            return self._launch(tasks)
        self._served += len(tasks)
        return self._pid, self._from_child

    def _spawn(self) -> None:
        requests_r, requests_w = os.pipe()
        results_r, results_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(requests_w)
            os.close(results_r)
            self._serve(requests_r, results_w)
        os.close(requests_r)
        os.close(results_w)
        self._pid, self._to_child, self._from_child = pid, requests_w, results_r
        self._served = 0

    def _done_with(self, pid: int, read_fd: int) -> None:
        """Results received: keep the child unless it has served its share."""
        if self._served >= int(self.tq.config["POOL_MAX_TASKS_PER_CHILD"]):
            self._retire(kill=False)

    def _lost(self, pid: int) -> None:
        """The child died or was killed: forget it (the caller reaps it)."""
        _close(self._to_child)
        self._pid = self._to_child = self._from_child = None

    def _retire(self, kill: bool) -> None:
        """Let the child go: closing its request pipe makes it exit."""
        pid = self._pid
        _close(self._to_child)
        _close(self._from_child)
        self._pid = self._to_child = self._from_child = None
        if pid is not None:
            if kill:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self._exiting.append(pid)

    def close(self) -> None:
        self._retire(kill=False)
        super().close()

    def _serve(self, requests_fd: int, results_fd: int) -> None:
        """In the child: run groups until the request pipe closes, then exit."""
        self._in_child(lambda: self._serve_requests(requests_fd, results_fd))

    def _serve_requests(self, requests_fd: int, results_fd: int) -> None:
        while (frame := _read_frame(requests_fd)) is not None:
            tasks = []
            for item in serialization.unpack(frame):
                stored = StoredTask(
                    id=item["id"],
                    queue=item["queue"],
                    state=State.ACTIVE,
                    payload=item["payload"],
                    ts=item["ts"],
                    executions_count=item["count"],
                )
                tasks.append(Task._from_stored(self.tq, stored))
            self._run_and_send(tasks, results_fd)
