"""The ``fork`` executor: a child process per task group.

Whatever the task leaks dies with the child; the parent keeps heartbeats
going and kills a child that outlives its hard timeout.
"""

from __future__ import annotations

import gc
import os
import select
import signal
import struct
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

# imported here, in the worker, so that forked children find them loaded
import taskq_core.retry
import taskq_core.runners  # noqa: F401
from taskq_core import serialization
from taskq_core.broker import Execution
from taskq_core.execution import RunResult, effective_hard_timeout, make_execution, run_group
from taskq_core.executors.base import Executor, ExecutorHost, Heartbeat

if TYPE_CHECKING:
    from taskq_core.task import Task

__all__ = ["HEADER", "ForkExecutor", "write_frame"]

_JOB_TIMEOUT = "taskq_core.exceptions:JobTimeoutException"
#: the length prefix of a message between a child and its worker.
HEADER = struct.Struct("!Q")


class ForkExecutor(Executor):
    """Forks a child per task group; the parent heartbeats and enforces the
    hard timeout with ``SIGKILL`` if the child does not stop by itself.

    The child sends its results as one length-prefixed message; the parent
    goes on as soon as it has them and reaps the exiting child later, so a
    child's teardown never delays the next task.
    """

    forks = True

    def __init__(self, worker: ExecutorHost) -> None:
        super().__init__(worker)
        self._frozen = False
        self._exiting: list[int] = []

    def execute(self, tasks: Sequence[Task], heartbeat: Heartbeat) -> list[RunResult]:
        timeout = self._prepare(tasks)
        started = time.time()
        pid, read_fd = self._launch(tasks)
        for task in tasks:
            self.worker.log.info(
                "processing",
                child_pid=pid,
                task_id=task.id,
                func=task.serialized_func,
                queue=task.queue,
                params={"args": task.args, "kwargs": task.kwargs},
            )
        return self._collect(pid, read_fd, tasks, started, timeout, heartbeat)

    def _prepare(self, tasks: Sequence[Task]) -> float:
        """Work done in the worker before a child runs ``tasks``; returns the
        group's hard timeout (the parent-side deadline adds a margin)."""
        if not self._frozen:
            # objects that exist now are never collected in children: a child's
            # garbage collector then does not touch (and copy) their pages
            gc.freeze()
            self._frozen = True
        self.reap()
        for task in tasks:
            try:  # resolve the runner class here: its import then never happens per child
                task.get_runner()
            except Exception:  # the child records the failure
                pass
        if tasks and _is_batch(tasks[0]):
            return effective_hard_timeout(self.tq, tasks)
        return sum(effective_hard_timeout(self.tq, [t]) for t in tasks)

    def _launch(self, tasks: Sequence[Task]) -> tuple[int, int]:
        """Start a child running ``tasks``; returns its pid and the fd its
        results arrive on."""
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(read_fd)
            self._child(tasks, write_fd)
        os.close(write_fd)
        return pid, read_fd

    def _done_with(self, pid: int, read_fd: int) -> None:
        """The child sent its results: close our end, reap it later."""
        os.close(read_fd)
        self._exiting.append(pid)  # reaped later: its exit needs no waiting

    def _collect(
        self,
        pid: int,
        read_fd: int,
        tasks: Sequence[Task],
        started: float,
        timeout: float,
        heartbeat: Heartbeat,
    ) -> list[RunResult]:
        """Wait for the child's results (heartbeating, enforcing the deadline)
        and turn every way a child can end into one result per task.

        The child reports each plain task's result as soon as it is over, so
        when it dies or is killed halfway through a group, the tasks that
        finished keep their outcomes, the one that was running gets the
        failure, and those that had not started go back to the queue
        (Decision 12)."""
        try:
            final, partial, killed_reason = self._wait(pid, read_fd, started, timeout, heartbeat)
        except BaseException:
            os.close(read_fd)
            raise
        if final is not None and killed_reason is None:
            self._done_with(pid, read_fd)
            if len(final) == len(tasks):
                try:
                    return [RunResult.from_wire(item) for item in final]
                except Exception:
                    pass
            _kill(pid)
            how = "sent an unreadable result"
        else:
            if final is not None:  # finished just as it was killed: keep what it did
                partial.update(_by_id(final))
            os.close(read_fd)
            self._lost(pid)
            _, status = os.waitpid(pid, 0)
            if os.WIFSIGNALED(status):
                how = f"was killed by signal {os.WTERMSIG(status)}"
            else:
                how = f"exited with status {os.WEXITSTATUS(status)}"
        if killed_reason == "timeout":
            text = (
                f"hard timeout of {timeout:g} s elapsed; the child process was killed by the worker"
            )
        else:
            text = f"the child process running the task {how}"
            if killed_reason is None:
                self.worker.log.error("child died", child_pid=pid, reason=how)
        record = self._record(started, text)
        batch = bool(tasks) and _is_batch(tasks[0])
        results: list[RunResult] = []
        failed_one = False
        for task in tasks:
            wire = partial.get(task.id)
            if wire is not None:
                try:
                    results.append(RunResult.from_wire(wire))
                    continue
                except Exception:
                    pass
            duration = time.time() - started
            if killed_reason == "requeue" or (failed_one and not batch):
                reason = "worker stopping" if killed_reason == "requeue" else "not started"
                results.append(RunResult(task.id, False, duration, None, extra={"requeue": reason}))
                continue
            failed_one = True
            timed_out = killed_reason == "timeout"
            results.append(RunResult(task.id, False, duration, record, timed_out=timed_out))
        return results

    def _lost(self, pid: int) -> None:
        """The child ended without results (died or was killed)."""

    def _record(self, started: float, message: str) -> Execution:
        return make_execution(
            started,
            None,
            store_tracebacks=self.worker.store_tracebacks,
            name=_JOB_TIMEOUT,
            message=message,
            worker_id=self.worker.id,
        )

    def _wait(
        self, pid: int, read_fd: int, started: float, timeout: float, heartbeat: Heartbeat
    ) -> tuple[list[Any] | None, dict[str, Any], str | None]:
        """Read the child's messages while heartbeating; kill it on a hard
        timeout or an insistent stop. Returns (its final list of results, or
        None if it never sent one; the results it sent task by task, by id;
        the kill reason)."""
        worker = self.worker
        deadline = started + timeout + float(self.tq.config["ACTIVE_TASK_UPDATE_TIMEOUT"])
        interval = float(self.tq.config["ACTIVE_TASK_UPDATE_TIMER"])
        next_beat = time.time() + interval
        buffer = bytearray()
        partial: dict[str, Any] = {}
        killed_reason: str | None = None
        while True:
            now = time.time()
            if killed_reason is None and worker.force_stop:
                killed_reason = "requeue"
                _kill(pid)
            elif killed_reason is None and now >= deadline:
                worker.log.error(
                    "hard timeout elapsed in parent process", child_pid=pid, hard_timeout=timeout
                )
                killed_reason = "timeout"
                _kill(pid)
                worker.log.error("child killed", child_pid=pid)
            wait = max(0.0, min(next_beat, deadline) - now) if killed_reason is None else 1.0
            fds = [read_fd] + ([worker.wakeup_fd] if worker.wakeup_fd is not None else [])
            ready, _, _ = select.select(fds, [], [], wait)
            if worker.wakeup_fd is not None and worker.wakeup_fd in ready:
                worker.drain_wakeup()
            if read_fd in ready:
                chunk = os.read(read_fd, 65536)
                if not chunk:
                    return None, partial, killed_reason
                buffer += chunk
                for frame in _take_frames(buffer):
                    kind, body = _decode(frame)
                    if kind == "result" and isinstance(body, dict):
                        partial[str(body.get("id"))] = body
                    elif kind == "done" and isinstance(body, list):
                        return body, partial, killed_reason
                    else:  # unreadable: no final list will make sense
                        return [], partial, killed_reason
            if killed_reason is None and time.time() >= next_beat:
                try:
                    heartbeat()
                except Exception:
                    worker.log.exception("task heartbeat failed")
                next_beat = time.time() + interval

    def reap(self, block: bool = False) -> None:
        """Collect children that sent their results and have exited since."""
        for pid in list(self._exiting):
            try:
                done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self._exiting.remove(pid)

    def close(self) -> None:
        self.reap(block=True)

    def _child(self, tasks: Sequence[Task], write_fd: int) -> None:
        """In the child: run the group, send the results, exit."""
        self._in_child(lambda: self._run_and_send(tasks, write_fd))

    def _in_child(self, body: Callable[[], None]) -> NoReturn:
        """Run ``body`` as a forked child: stop signals ignored (the worker
        decides), fresh broker connections, and an exit without the parent's
        cleanup (status 1 if ``body`` raised)."""
        code = 0
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.set_wakeup_fd(-1)
            self.tq.broker.after_fork()
            body()
        except BaseException:
            code = 1
        finally:
            _flush_std_streams()
            os._exit(code)

    def _run_and_send(self, tasks: Sequence[Task], write_fd: int) -> None:
        """Run the group; send each plain task's result when it is over (when
        the group has more than one), then the final list of results."""

        def send_one(result: RunResult) -> None:
            write_frame(write_fd, serialization.pack(["result", result.to_wire()]))

        results = run_group(
            self.tq,
            tasks,
            store_tracebacks=self.worker.store_tracebacks,
            worker_id=self.worker.id,
            on_result=send_one if len(tasks) > 1 else None,
        )
        write_frame(write_fd, serialization.pack(["done", [r.to_wire() for r in results]]))


def write_frame(fd: int, data: bytes) -> None:
    """Send ``data`` as one length-prefixed message."""
    view = memoryview(HEADER.pack(len(data)) + data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _flush_std_streams() -> None:
    """Before ``os._exit`` in a child: what a task printed is not lost."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _take_frames(buffer: bytearray) -> list[bytes]:
    """Remove the complete length-prefixed messages from ``buffer``."""
    frames = []
    while len(buffer) >= HEADER.size:
        (size,) = HEADER.unpack_from(buffer)
        if len(buffer) < HEADER.size + size:
            break
        frames.append(bytes(buffer[HEADER.size : HEADER.size + size]))
        del buffer[: HEADER.size + size]
    return frames


def _decode(message: bytes) -> tuple[str | None, Any]:
    """A child's message: ``("result", one result)`` or ``("done", [results])``."""
    try:
        wire = serialization.unpack(message)
    except Exception:
        return None, None
    if isinstance(wire, list) and len(wire) == 2 and isinstance(wire[0], str):
        return wire[0], wire[1]
    return None, None


def _by_id(wire: list[Any]) -> dict[str, Any]:
    return {str(item.get("id")): item for item in wire if isinstance(item, dict)}


def _is_batch(task: Task) -> bool:
    try:
        return task.is_batch_func
    except Exception:
        return False


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
