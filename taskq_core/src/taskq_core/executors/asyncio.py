"""The ``asyncio`` executor: ``async def`` tasks on one event loop, up to
``concurrency`` at once, in the worker's process.

The loop runs in a thread of its own. A coroutine task runs on it directly
(``tq.current_task`` is its own: each asyncio task has its own context); a
hard timeout cancels it and records ``JobTimeoutException``. A plain (sync)
task given to this executor runs in a thread beside the loop, as with the
``threads`` executor, so sync and async tasks can share a worker: at its hard
timeout it fails at once and its thread is interrupted, or abandoned if it
is stuck where the interrupt cannot reach; such a thread keeps its slot
until it returns (see :attr:`exhausted`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Sequence
from typing import Any

from taskq_core.exceptions import JobTimeoutException
from taskq_core.execution import RunResult, make_execution, run_coroutine_group
from taskq_core.executors.base import (
    THREAD_INTERRUPTED,
    Executor,
    ExecutorHost,
    Finished,
    Run,
    WakePipe,
    interrupt_thread,
    timeout_results,
)
from taskq_core.task import Task

__all__ = ["AsyncioExecutor"]


class AsyncioExecutor(Executor):
    """Runs up to ``concurrency`` groups at once on one event loop."""

    def __init__(self, worker: ExecutorHost) -> None:
        super().__init__(worker)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._running: dict[Run, concurrent.futures.Future[list[RunResult]]] = {}
        #: threads of sync runs given up on at their hard timeout, and when
        self._abandoned: dict[threading.Thread, float] = {}
        self._lock = threading.Lock()
        self._grace = float(self.tq.config["ACTIVE_TASK_UPDATE_TIMEOUT"])
        self._wake = WakePipe()

    # -- what the worker calls ----------------------------------------------------
    def free_slots(self) -> int:
        return self.concurrency - len(self._running) - len(self._stuck())

    def running(self) -> list[Run]:
        return list(self._running)

    @property
    def exhausted(self) -> bool:
        """Every slot holds a thread given up on more than
        ``ACTIVE_TASK_UPDATE_TIMEOUT`` ago that has not returned (as with the
        ``threads`` executor)."""
        limit = time.time() - self._grace
        return sum(since <= limit for since in self._stuck()) >= self.concurrency

    def start(self, run: Run) -> None:
        loop = self._ensure_loop()
        run.started = time.time()
        future = asyncio.run_coroutine_threadsafe(self._run(run), loop)
        future.add_done_callback(lambda _: self._wake.wake())
        self._running[run] = future

    def wait(self, timeout: float) -> list[Finished]:
        finished = self._collect()
        if not finished and self._running and not self.worker.force_stop:
            self._wake.sleep(self.worker, timeout)
            finished = self._collect()
        if self.worker.force_stop:
            finished.extend(self.stop_running())
        return finished

    def stop_running(self) -> list[Finished]:
        finished = []
        for run, future in list(self._running.items()):
            future.cancel()
            del self._running[run]
            elapsed = time.time() - run.started
            finished.append(
                (
                    run,
                    [
                        RunResult(t.id, False, elapsed, None, extra={"requeue": "worker stopping"})
                        for t in run.tasks
                    ],
                )
            )
        return finished

    def close(self) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=5)
            if not loop.is_running():
                loop.close()
            self._loop = None
        self._wake.close()

    # -- the loop ------------------------------------------------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=loop.run_forever, name="taskq-asyncio", daemon=True
            )
            self._thread.start()
            self._loop = loop
        return self._loop

    async def _run(self, run: Run) -> list[RunResult]:
        tasks: Sequence[Task] = run.tasks
        try:
            native = all(task.is_coroutine_func for task in tasks)
        except Exception:
            native = False
        if not native:  # sync functions: in a thread beside the loop
            return await self._run_in_thread(run)
        try:
            return await asyncio.wait_for(
                run_coroutine_group(
                    self.tq,
                    tasks,
                    store_tracebacks=self.worker.store_tracebacks,
                    worker_id=self.worker.id,
                ),
                run.timeout,
            )
        except TimeoutError:
            return timeout_results(self.worker, run, "the coroutine was cancelled")

    async def _run_in_thread(self, run: Run) -> list[RunResult]:
        """Run a sync group in a (daemon) thread of its own; at the group's
        hard timeout interrupt the thread and fail the group."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[RunResult]] = loop.create_future()

        def deliver(results: list[RunResult]) -> None:
            if not done.done():  # not given up on (hard timeout, stop)
                done.set_result(results)

        def target() -> None:
            results = self.run_in_thread(run)
            try:
                loop.call_soon_threadsafe(deliver, results)
            except RuntimeError:  # the loop is closed: the worker has stopped
                pass

        thread = threading.Thread(target=target, name="taskq-sync", daemon=True)
        thread.start()
        try:
            return await asyncio.wait_for(done, run.timeout)
        except TimeoutError:
            with self._lock:
                self._abandoned[thread] = time.time()
            self.worker.log.error("hard timeout elapsed in worker thread", hard_timeout=run.timeout)
            interrupt_thread(thread, JobTimeoutException)
            return timeout_results(self.worker, run, THREAD_INTERRUPTED)

    def _stuck(self) -> list[float]:
        """When each thread given up on that is still running was given up on."""
        with self._lock:
            for thread in [t for t in self._abandoned if not t.is_alive()]:
                del self._abandoned[thread]
            return list(self._abandoned.values())

    def _collect(self) -> list[Finished]:
        finished: list[Finished] = []
        for run, future in list(self._running.items()):
            if not future.done():
                continue
            del self._running[run]
            try:
                results: Any = future.result()
            except BaseException as exc:  # never raised by _run; kept as a record
                record = make_execution(
                    run.started, exc, store_tracebacks=self.worker.store_tracebacks
                )
                results = [RunResult(t.id, False, 0.0, record) for t in run.tasks]
            finished.append((run, results))
        return finished
