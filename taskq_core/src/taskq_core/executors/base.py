"""What every executor is: it runs task groups for its worker, up to
``concurrency`` at a time, and hands back one
:class:`~taskq_core.execution.RunResult` per task of each group.

The worker drives an executor with three calls: :meth:`Executor.start` (run
this group; never blocks for long), :meth:`Executor.wait` (block until a group
is over, a stop signal arrives or the timeout passes) and
:meth:`Executor.stop_running` (a second stop signal: give every running task
back). An executor that only implements the simple blocking
:meth:`Executor.execute` still works: the default :meth:`start` runs the group
right away, so it runs one group at a time.
"""

from __future__ import annotations

import ctypes
import os
import select
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from taskq_core.exceptions import JobTimeoutException
from taskq_core.execution import RunResult, exception_name, make_execution, run_group

if TYPE_CHECKING:
    from taskq_core.task import Task
    from taskq_core.types import App

__all__ = ["Executor", "ExecutorHost", "Finished", "Heartbeat", "Run", "WakePipe"]

Heartbeat = Callable[[], None]


class ExecutorHost(Protocol):
    """What an executor uses of the worker that owns it
    (:class:`taskq_core.worker.Worker`)."""

    tq: App
    id: str
    log: Any
    store_tracebacks: bool
    #: how many groups may run at once (``--concurrency``).
    concurrency: int
    #: read end of the worker's signal wake-up pipe (``None`` off the main thread).
    wakeup_fd: int | None
    #: a stop signal arrived: no new work is taken.
    stop_requested: bool
    #: a second stop signal arrived: return running tasks to their queue.
    force_stop: bool

    def drain_wakeup(self) -> None:
        """Empty the wake-up pipe (and log a stop request)."""
        ...

    def heartbeat_running(self) -> None:
        """Refresh the heartbeats (and locks, queue slots) of every running task."""
        ...


@dataclass(eq=False)
class Run:
    """A group of tasks handed to an executor."""

    tasks: list[Task]
    #: the group's hard timeout in seconds (the executor enforces it).
    timeout: float
    #: what the worker keeps with the run (queue, locks...); opaque here.
    owner: Any = None
    started: float = field(default_factory=time.time)


#: a run that is over, with one result per task.
Finished = tuple[Run, list[RunResult]]


class Executor:
    """Runs task groups and reports one :class:`RunResult` per task."""

    #: the worker exits after a hard timeout (process state is suspect).
    exit_worker_on_job_timeout = False
    #: runs tasks in forked processes (impossible with an in-process broker).
    forks = False

    def __init__(self, worker: ExecutorHost) -> None:
        self.worker = worker
        self.tq = worker.tq
        self.concurrency = max(1, int(getattr(worker, "concurrency", 1)))
        self._finished: list[Finished] = []
        self._current: Run | None = None

    # -- the simple interface ---------------------------------------------------
    def execute(self, tasks: Sequence[Task], heartbeat: Heartbeat) -> list[RunResult]:
        """Run ``tasks`` and return their results (blocking); call ``heartbeat``
        every ``ACTIVE_TASK_UPDATE_TIMER`` seconds meanwhile. Executors that
        implement :meth:`start` and :meth:`wait` themselves need not."""
        raise NotImplementedError

    # -- what the worker calls ----------------------------------------------------
    def free_slots(self) -> int:
        """How many more groups :meth:`start` takes now."""
        return 0 if self._finished else 1

    def running(self) -> list[Run]:
        """The runs started and not yet handed back by :meth:`wait`."""
        current = self._current
        ended = [run for run, _ in self._finished]
        return [current, *ended] if current is not None else ended

    def start(self, run: Run) -> None:
        """Start ``run``. The default runs it to the end here, with
        :meth:`execute`, and keeps the results for :meth:`wait`."""
        self._current = run
        try:
            results = self.execute(run.tasks, self.worker.heartbeat_running)
        finally:
            self._current = None
        self._finished.append((run, results))

    def wait(self, timeout: float) -> list[Finished]:
        """The runs that are over: block up to ``timeout`` seconds for one to
        end (returning early when a stop signal arrives)."""
        done, self._finished = self._finished, []
        return done

    def stop_running(self) -> list[Finished]:
        """A second stop signal: end every running run now; their unfinished
        tasks come back with ``requeue`` results."""
        return []

    @property
    def exhausted(self) -> bool:
        """``True`` when no slot can ever run a task again (all hold abandoned
        runs): the worker then exits for its supervisor to start a fresh one."""
        return False

    def close(self) -> None:
        """Called once when the worker stops."""

    def run_in_thread(self, run: Run) -> list[RunResult]:
        """Run ``run`` in the calling thread (not the main one), for executors
        that interrupt a thread at its hard timeout: an interrupt that lands
        just after the task (outside what :func:`run_group` catches) ends the
        run with no results instead of ending the thread."""
        try:
            return run_group(
                self.tq,
                run.tasks,
                store_tracebacks=self.worker.store_tracebacks,
                worker_id=self.worker.id,
            )
        except BaseException:  # an interrupt that landed outside the task itself
            return []


def requeue_results(run: Run, reason: str) -> list[RunResult]:
    """Results that give every task of ``run`` back to its queue unrun."""
    elapsed = time.time() - run.started
    return [RunResult(t.id, False, elapsed, None, extra={"requeue": reason}) for t in run.tasks]


#: what the record of a task stopped at its hard timeout in a thread says
THREAD_INTERRUPTED = "the task's thread was interrupted (or abandoned if it could not be)"


def interrupt_thread(thread: threading.Thread, exc_type: type[BaseException]) -> bool:
    """Raise ``exc_type`` inside ``thread`` at its next Python instruction."""
    if thread.ident is None or not thread.is_alive():
        return False
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(exc_type)
    )
    return bool(done == 1)


def timeout_results(host: ExecutorHost, run: Run, how: str) -> list[RunResult]:
    """Results that fail every task of ``run`` with a ``JobTimeoutException``
    record: its hard timeout elapsed, and ``how`` says what was done about it."""
    record = make_execution(
        run.started,
        None,
        store_tracebacks=host.store_tracebacks,
        name=exception_name(JobTimeoutException),
        message=f"hard timeout of {run.timeout:g} s elapsed; {how}",
        worker_id=host.id,
    )
    elapsed = time.time() - run.started
    return [RunResult(t.id, False, elapsed, record, timed_out=True) for t in run.tasks]


class WakePipe:
    """A pipe that threads write a byte to when a run ends, so that the
    worker's ``select`` wakes up for it, and for its stop signals too."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)

    def wake(self) -> None:
        try:
            os.write(self.write_fd, b"x")
        except (BlockingIOError, OSError):  # full (already woken) or closed
            pass

    def sleep(self, host: ExecutorHost, timeout: float) -> None:
        """Block up to ``timeout`` for a wake-up or a signal; empty both."""
        fds = [self.read_fd] + ([host.wakeup_fd] if host.wakeup_fd is not None else [])
        ready, _, _ = select.select(fds, [], [], max(0.0, timeout))
        if self.read_fd in ready:
            try:
                while os.read(self.read_fd, 512):
                    pass
            except BlockingIOError:
                pass
        if host.wakeup_fd is not None and host.wakeup_fd in ready:
            host.drain_wakeup()

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            try:
                os.close(fd)
            except OSError:
                pass
