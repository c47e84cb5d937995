"""The ``threads`` executor: ``concurrency`` threads in the worker's process,
for tasks that mostly wait (HTTP, e-mail, databases).

Each slot is a thread that runs one group at a time. A task past its hard
timeout fails with ``JobTimeoutException`` at once; its thread is interrupted
(the exception is raised inside it at its next Python instruction) and, if it
is stuck where that cannot reach (a blocking call in C), abandoned: the slot
stays taken until the thread returns. While fewer than all slots hold
abandoned threads the worker goes on; once every slot holds one that has not
returned ``ACTIVE_TASK_UPDATE_TIMEOUT`` after it was given up on (the time a
forked child gets before ``SIGKILL``), the executor is
:attr:`~Executor.exhausted` and the worker exits (status 0) for its
supervisor to start a fresh process.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

from taskq_core.exceptions import JobTimeoutException
from taskq_core.execution import RunResult
from taskq_core.executors.base import (
    THREAD_INTERRUPTED,
    Executor,
    ExecutorHost,
    Finished,
    Run,
    WakePipe,
    interrupt_thread,
    requeue_results,
    timeout_results,
)

__all__ = ["ThreadsExecutor", "interrupt_thread"]


@dataclass(eq=False)
class _Slot:
    thread: threading.Thread | None = None
    inbox: queue.SimpleQueue[Run | None] = field(default_factory=queue.SimpleQueue)
    run: Run | None = None
    #: when the worker gave up on the slot's run (hard timeout, stop), if it did
    abandoned_at: float | None = None
    #: the slot's thread is inside its run: only then may it be interrupted
    in_task: bool = False

    @property
    def abandoned(self) -> bool:
        return self.abandoned_at is not None


class ThreadsExecutor(Executor):
    """Runs up to ``concurrency`` groups at once, each in a thread of its own."""

    def __init__(self, worker: ExecutorHost) -> None:
        super().__init__(worker)
        self._slots = [_Slot() for _ in range(self.concurrency)]
        self._done: queue.SimpleQueue[tuple[_Slot, Run, list[RunResult]]] = queue.SimpleQueue()
        self._wake = WakePipe()
        #: guards giving up on a slot against its thread returning at that moment
        self._lock = threading.Lock()
        self._grace = float(self.tq.config["ACTIVE_TASK_UPDATE_TIMEOUT"])

    # -- what the worker calls ----------------------------------------------------
    def free_slots(self) -> int:
        return sum(1 for slot in self._slots if slot.run is None)

    def running(self) -> list[Run]:
        return [slot.run for slot in self._slots if slot.run is not None and not slot.abandoned]

    @property
    def exhausted(self) -> bool:
        """Every slot holds a thread given up on more than
        ``ACTIVE_TASK_UPDATE_TIMEOUT`` ago that has not returned."""
        limit = time.time() - self._grace
        with self._lock:
            return all(
                slot.abandoned_at is not None and slot.abandoned_at <= limit for slot in self._slots
            )

    def start(self, run: Run) -> None:
        slot = next(slot for slot in self._slots if slot.run is None)
        slot.run = run
        slot.in_task = True
        run.started = time.time()
        if slot.thread is None:
            slot.thread = threading.Thread(
                target=self._serve, args=(slot,), name="taskq-task", daemon=True
            )
            slot.thread.start()
        slot.inbox.put(run)

    def wait(self, timeout: float) -> list[Finished]:
        finished = self._collect()
        if not finished and self.running():
            self._wake.sleep(self.worker, min(timeout, self._until_deadline()))
            finished = self._collect()
        finished.extend(self._enforce_deadlines())
        if self.worker.force_stop:
            finished.extend(self.stop_running())
        return finished

    def stop_running(self) -> list[Finished]:
        """Threads cannot be killed: their tasks go back to the queue now and
        whatever the threads still do is ignored."""
        finished = []
        with self._lock:
            for slot in self._slots:
                if slot.run is not None and not slot.abandoned:
                    finished.append((slot.run, requeue_results(slot.run, "worker stopping")))
                    slot.abandoned_at = time.time()
        return finished

    def close(self) -> None:
        for slot in self._slots:
            if not slot.abandoned:
                slot.inbox.put(None)
        self._wake.close()

    # -- the slots' threads ------------------------------------------------------
    def _serve(self, slot: _Slot) -> None:
        while (run := slot.inbox.get()) is not None:
            results: list[RunResult] = []
            try:
                results = self.run_in_thread(run)
                self._leave_task(slot)
            except BaseException:  # its interrupt, sent as the run ended, landed here
                self._leave_task(slot)
            with self._lock:
                if slot.abandoned:  # its outcome is stored already: the slot is free again
                    slot.run, slot.abandoned_at = None, None
                    continue
            self._done.put((slot, run, results))
            self._wake.wake()

    def _leave_task(self, slot: _Slot) -> None:
        """In the slot's thread, once its run is over: from now on no interrupt
        is sent to it. (The worker interrupts only under the same lock and only
        a thread inside its run, so an interrupt sent as the run ended lands
        before this returns, inside the ``try`` of :meth:`_serve`, and never
        ends the thread or reaches its next run.)"""
        with self._lock:
            slot.in_task = False

    def _collect(self) -> list[Finished]:
        finished: list[Finished] = []
        while True:
            try:
                slot, run, results = self._done.get_nowait()
            except queue.Empty:
                return finished
            with self._lock:
                if slot.run is run:
                    if not slot.abandoned:
                        finished.append((run, results))
                    slot.run, slot.abandoned_at = None, None  # the thread is free again

    def _until_deadline(self) -> float:
        deadlines = [r.started + r.timeout for r in self.running()]
        return max(0.0, min(deadlines) - time.time()) if deadlines else 3600.0

    def _enforce_deadlines(self) -> list[Finished]:
        finished: list[Finished] = []
        now = time.time()
        for slot in self._slots:
            with self._lock:
                run = slot.run
                if run is None or slot.abandoned or now < run.started + run.timeout:
                    continue
                slot.abandoned_at = now
                if slot.in_task:  # under the lock: never after the thread left its run
                    assert slot.thread is not None
                    interrupt_thread(slot.thread, JobTimeoutException)
            self.worker.log.error("hard timeout elapsed in worker thread", hard_timeout=run.timeout)
            finished.append((run, timeout_results(self.worker, run, THREAD_INTERRUPTED)))
        return finished
