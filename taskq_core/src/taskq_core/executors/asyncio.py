"""The ``asyncio`` executor: ``async def`` tasks on one event loop, up to
``concurrency`` at once, in the worker's process.

The loop runs in a thread of its own. A coroutine task runs on it directly
(``tq.current_task`` is its own: each asyncio task has its own context); a
hard timeout cancels it and records ``JobTimeoutException``. A plain (sync)
task given to this executor runs in a thread beside the loop, as with the
``threads`` executor, so sync and async tasks can share a worker.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Sequence
from typing import Any

from taskq_core.exceptions import JobTimeoutException
from taskq_core.execution import (
    RunResult,
    exception_name,
    make_execution,
    run_coroutine_group,
    run_group,
)
from taskq_core.executors.base import Executor, ExecutorHost, Finished, Run, WakePipe
from taskq_core.task import Task

__all__ = ["AsyncioExecutor"]


class AsyncioExecutor(Executor):
    """Runs up to ``concurrency`` groups at once on one event loop."""

    def __init__(self, worker: ExecutorHost) -> None:
        super().__init__(worker)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix="taskq-sync"
        )
        self._running: dict[Run, concurrent.futures.Future[list[RunResult]]] = {}
        self._wake = WakePipe()

    # -- what the worker calls ----------------------------------------------------
    def free_slots(self) -> int:
        return self.concurrency - len(self._running)

    def running(self) -> list[Run]:
        return list(self._running)

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
        self._threads.shutdown(wait=False, cancel_futures=True)
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
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._threads, self._run_sync, tasks)
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
            record = make_execution(
                run.started,
                None,
                store_tracebacks=self.worker.store_tracebacks,
                name=exception_name(JobTimeoutException),
                message=f"hard timeout of {run.timeout:g} s elapsed; the coroutine was cancelled",
                worker_id=self.worker.id,
            )
            elapsed = time.time() - run.started
            return [RunResult(t.id, False, elapsed, record, timed_out=True) for t in tasks]

    def _run_sync(self, tasks: Sequence[Task]) -> list[RunResult]:
        return run_group(
            self.tq, tasks, store_tracebacks=self.worker.store_tracebacks, worker_id=self.worker.id
        )

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
