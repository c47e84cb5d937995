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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

# imported here, in the worker, so that forked children find them loaded
import taskq_core.retry
import taskq_core.runners  # noqa: F401
from taskq_core import serialization
from taskq_core.broker import Execution, StoredTask
from taskq_core.execution import RunResult, make_execution, run_group
from taskq_core.executors.base import Executor, ExecutorHost, Finished, Run
from taskq_core.states import State
from taskq_core.task import Task

if TYPE_CHECKING:
    from taskq_core.types import App

__all__ = [
    "HEADER",
    "ForkExecutor",
    "close_fd",
    "read_frame",
    "task_wire",
    "tasks_from_wire",
    "write_frame",
]

_JOB_TIMEOUT = "taskq_core.exceptions:JobTimeoutException"
#: the length prefix of a message between a child and its worker.
HEADER = struct.Struct("!Q")


@dataclass(eq=False)
class _Child:
    """A child process running one run, as the worker sees it."""

    run: Run
    pid: int
    fd: int
    #: when the worker kills it (its hard timeout plus a margin)
    deadline: float
    buffer: bytearray = field(default_factory=bytearray)
    #: results it sent task by task, by id
    partial: dict[str, Any] = field(default_factory=dict)
    #: why the worker killed it: "timeout" or "requeue"
    killed: str | None = None


@dataclass(eq=False)
class _Standby:
    """A child forked ahead of its task, waiting for it on ``to_child``."""

    pid: int
    to_child: int
    from_child: int


class ForkExecutor(Executor):
    """Forks a child per task group, up to ``concurrency`` at once; the worker
    enforces each child's hard timeout with ``SIGKILL`` if it does not stop by
    itself.

    A child sends its results as length-prefixed messages (each plain task's
    as soon as it is over, then the whole list); the worker goes on as soon as
    it has them and reaps the exiting child later, so a child's teardown never
    delays the next task.

    Forking costs about a millisecond, and a new child takes about as long
    again to be ready. So that neither delays the next task, the worker forks
    one child ahead (``FORK_AHEAD``, on by default) while its children run:
    the child waits on a pipe, receives the next group, runs it and exits like
    any other. Each child still runs one group only.
    """

    forks = True
    #: fork the next child while tasks run (see the class docstring)
    forks_ahead = True

    def __init__(self, worker: ExecutorHost) -> None:
        super().__init__(worker)
        self._frozen = False
        self._exiting: list[int] = []
        self._children: dict[int, _Child] = {}
        self._standby: _Standby | None = None
        self._ahead = self.forks_ahead and bool(self.tq.config["FORK_AHEAD"])

    # -- what the worker calls ----------------------------------------------------
    def free_slots(self) -> int:
        return self.concurrency - len(self._children)

    def running(self) -> list[Run]:
        return [child.run for child in self._children.values()]

    def start(self, run: Run) -> None:
        self._prepare(run.tasks)
        pid, read_fd = self._launch(run.tasks)
        margin = float(self.tq.config["ACTIVE_TASK_UPDATE_TIMEOUT"])
        self._children[read_fd] = _Child(run, pid, read_fd, run.started + run.timeout + margin)
        for task in run.tasks:
            self.worker.log.info(
                "processing",
                child_pid=pid,
                task_id=task.id,
                func=task.serialized_func,
                queue=task.queue,
                params={"args": task.args, "kwargs": task.kwargs},
            )

    def wait(self, timeout: float) -> list[Finished]:
        """Read the children's messages until one is over, a stop signal comes
        or ``timeout`` passes; kill children past their deadline."""
        worker = self.worker
        end = time.time() + timeout
        finished: list[Finished] = []
        while self._children and not finished:
            now = time.time()
            if worker.force_stop:
                finished.extend(self.stop_running())
                break
            for child in list(self._children.values()):
                if child.killed is None and now >= child.deadline:
                    worker.log.error(
                        "hard timeout elapsed in parent process",
                        child_pid=child.pid,
                        hard_timeout=child.run.timeout,
                    )
                    child.killed = "timeout"
                    _kill(child.pid)
                    worker.log.error("child killed", child_pid=child.pid)
            if self._ahead and self._standby is None and not worker.stop_requested:
                self._fork_ahead()  # while the children run: off the next task's path
            living = [c.deadline for c in self._children.values() if c.killed is None]
            wait = max(0.0, min([end, *living]) - now)
            fds = [*self._children] + ([worker.wakeup_fd] if worker.wakeup_fd is not None else [])
            ready, _, _ = select.select(fds, [], [], wait)
            if worker.wakeup_fd is not None and worker.wakeup_fd in ready:
                worker.drain_wakeup()
            for fd in ready:
                reading = self._children.get(fd)
                if reading is not None:
                    done = self._read(reading)
                    if done is not None:
                        finished.append(done)
            if time.time() >= end or (worker.wakeup_fd in ready and not finished):
                break
        return finished

    def stop_running(self) -> list[Finished]:
        self._drop_standby()
        finished = []
        for child in list(self._children.values()):
            child.killed = "requeue"
            _kill(child.pid)
            finished.append(self._end(child, None))
        return finished

    def close(self) -> None:
        self._drop_standby()
        self.reap(block=True)

    # -- running a child ----------------------------------------------------------
    def _freeze(self) -> None:
        if not self._frozen:
            # objects that exist now are never collected in children: a child's
            # garbage collector then does not touch (and copy) their pages
            gc.freeze()
            self._frozen = True

    def _prepare(self, tasks: Sequence[Task]) -> None:
        """Work done in the worker before a child runs ``tasks``."""
        self._freeze()
        self.reap()
        for task in tasks:
            try:  # resolve the runner class here: its import then never happens per child
                task.get_runner()
            except Exception:  # the child records the failure
                pass

    def _launch(self, tasks: Sequence[Task]) -> tuple[int, int]:
        """Start a child running ``tasks`` (the one forked ahead, if any);
        returns its pid and the fd its results arrive on."""
        standby, self._standby = self._standby, None
        if standby is not None:
            try:
                write_frame(standby.to_child, serialization.pack([task_wire(t) for t in tasks]))
            except OSError:  # it died waiting: fork one now
                self._retire_standby(standby, kill=True)
            else:
                close_fd(standby.to_child)
                return standby.pid, standby.from_child
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(read_fd)
            self._child(tasks, write_fd)
        os.close(write_fd)
        return pid, read_fd

    def _fork_ahead(self) -> None:
        """Fork the child that runs the next group; it waits for the group."""
        self._freeze()
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(to_child_w)
            os.close(from_child_r)
            self._in_child(lambda: self._run_sent(to_child_r, from_child_w))
        os.close(to_child_r)
        os.close(from_child_w)
        self._standby = _Standby(pid, to_child_w, from_child_r)

    def _run_sent(self, group_fd: int, write_fd: int) -> None:
        """In a child forked ahead: run the group the worker sends, if it sends
        one (it closes the pipe instead when it stops)."""
        frame = read_frame(group_fd)
        if frame is not None:
            self._run_and_send(tasks_from_wire(self.tq, frame), write_fd)

    def _drop_standby(self) -> None:
        standby, self._standby = self._standby, None
        if standby is not None:
            self._retire_standby(standby, kill=False)

    def _retire_standby(self, standby: _Standby, kill: bool) -> None:
        """Let a child forked ahead go (closing its pipe makes it exit)."""
        close_fd(standby.to_child)
        close_fd(standby.from_child)
        if kill:
            _kill(standby.pid)
        self._exiting.append(standby.pid)

    def _done_with(self, pid: int, read_fd: int) -> None:
        """The child sent its results: close our end, reap it later."""
        os.close(read_fd)
        self._exiting.append(pid)  # reaped later: its exit needs no waiting

    def _lost(self, pid: int) -> None:
        """The child ended without results (died or was killed)."""

    def _read(self, child: _Child) -> Finished | None:
        """Take what the child sent; the finished run once it is over."""
        chunk = os.read(child.fd, 65536)
        if not chunk:
            return self._end(child, None)
        child.buffer += chunk
        for frame in _take_frames(child.buffer):
            kind, body = _decode(frame)
            if kind == "result" and isinstance(body, dict):
                child.partial[str(body.get("id"))] = body
            elif kind == "done" and isinstance(body, list):
                return self._end(child, body)
            else:  # unreadable: no final list will make sense
                return self._end(child, [])
        return None

    def _end(self, child: _Child, final: list[Any] | None) -> Finished:
        """Turn every way a child can end into one result per task.

        When a child dies or is killed halfway through a plain group, the tasks
        that finished keep their outcomes, the one that was running gets the
        failure, and those that had not started go back to the queue
        (Decision 12)."""
        del self._children[child.fd]
        run, tasks, started = child.run, child.run.tasks, child.run.started
        if final is not None and child.killed is None:
            self._done_with(child.pid, child.fd)
            if len(final) == len(tasks):
                try:
                    return run, [RunResult.from_wire(item) for item in final]
                except Exception:
                    pass
            _kill(child.pid)
            how = "sent an unreadable result"
        else:
            if final is not None:  # finished just as it was killed: keep what it did
                child.partial.update(_by_id(final))
            os.close(child.fd)
            self._lost(child.pid)
            _, status = os.waitpid(child.pid, 0)
            if os.WIFSIGNALED(status):
                how = f"was killed by signal {os.WTERMSIG(status)}"
            else:
                how = f"exited with status {os.WEXITSTATUS(status)}"
        if child.killed == "timeout":
            text = (
                f"hard timeout of {run.timeout:g} s elapsed; the child process was killed by "
                "the worker"
            )
        else:
            text = f"the child process running the task {how}"
            if child.killed is None:
                self.worker.log.error("child died", child_pid=child.pid, reason=how)
        record = self._record(started, text)
        batch = bool(tasks) and _is_batch(tasks[0])
        results: list[RunResult] = []
        failed_one = False
        for task in tasks:
            wire = child.partial.get(task.id)
            if wire is not None:
                try:
                    results.append(RunResult.from_wire(wire))
                    continue
                except Exception:
                    pass
            duration = time.time() - started
            if child.killed == "requeue" or (failed_one and not batch):
                reason = "worker stopping" if child.killed == "requeue" else "not started"
                results.append(RunResult(task.id, False, duration, None, extra={"requeue": reason}))
                continue
            failed_one = True
            timed_out = child.killed == "timeout"
            results.append(RunResult(task.id, False, duration, record, timed_out=timed_out))
        return run, results

    def _record(self, started: float, message: str) -> Execution:
        return make_execution(
            started,
            None,
            store_tracebacks=self.worker.store_tracebacks,
            name=_JOB_TIMEOUT,
            message=message,
            worker_id=self.worker.id,
        )

    def reap(self, block: bool = False) -> None:
        """Collect children that sent their results and have exited since."""
        for pid in list(self._exiting):
            try:
                done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self._exiting.remove(pid)

    # -- in the child ---------------------------------------------------------------
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


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = os.read(fd, size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def read_frame(fd: int) -> bytes | None:
    """One length-prefixed message (``None`` at the end of the pipe)."""
    header = _read_exact(fd, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    return _read_exact(fd, size)


def close_fd(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:  # already closed on an error path
            pass


def task_wire(task: Task) -> dict[str, Any]:
    """What a child needs of a popped task to run it (see :func:`tasks_from_wire`)."""
    stored = task._stored
    return {
        "id": task.id,
        "queue": task.queue,
        "payload": task.payload(),
        "count": stored.executions_count if stored else 0,
        "ts": stored.ts if stored else 0.0,
    }


def tasks_from_wire(tq: App, frame: bytes) -> list[Task]:
    """In a child: the tasks of a group the worker sent."""
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
        tasks.append(Task._from_stored(tq, stored))
    return tasks


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
