"""The worker's main loop: signals, the passes over its queues, waiting for
work, stopping."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from taskq_core.brokers.sqlite import DEFAULT_PATH_ENV
from taskq_core.plugins import call_hook_safely

if TYPE_CHECKING:
    pass

from taskq_core.worker.maintenance import Maintenance
from taskq_core.worker.processing import Processing

__all__ = ["CHOOSE_A_BROKER", "Worker"]

#: how to name another broker than the default, in the line a worker on the
#: default broker logs at start
CHOOSE_A_BROKER = (
    "name another broker with --url or --broker, TASKQ_URL or TaskQ(broker=...); "
    f"{DEFAULT_PATH_ENV} moves the default file"
)


class Worker(Processing, Maintenance):
    """Processes tasks of the queues it is given.

    Create it with ``tq.run_worker(...)`` or ``taskq worker``.
    """

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        self.wakeup_fd, self._wakeup_write = read_fd, write_fd
        previous_fd = signal.set_wakeup_fd(write_fd)

        def on_signal(signum: int, frame: Any) -> None:
            if self.stop_requested:
                self.force_stop = True
            self.stop_requested = True

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            signal.set_wakeup_fd(previous_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(read_fd)
            os.close(write_fd)
            self.wakeup_fd = self._wakeup_write = None

        return restore

    def drain_wakeup(self) -> None:
        if self.wakeup_fd is None:
            return
        try:
            while os.read(self.wakeup_fd, 512):
                pass
        except BlockingIOError:
            pass
        if self.stop_requested:
            self.log.info(
                "stop requested, waiting for task to finish"
                if not self.force_stop
                else "second stop request, returning task"
            )

    def run(self, burst: bool = False, exit_after: float | None = None) -> None:
        """Process tasks until stopped; ``burst``: until none of our queues has a
        queued task; ``exit_after``: minutes."""
        restore = self._install_signals()
        deadline = time.time() + exit_after * 60 if exit_after else None
        self._deadline = deadline
        try:
            self._log_default_broker()
            self.log.info(
                "ready",
                broker=self.tq.broker.name,
                queues=sorted(self.only_queues),
                exclude_queues=sorted(self.exclude_queues),
                single_worker_queues=sorted(self.single_worker_queues),
                max_workers_per_queue=self.max_workers_per_queue,
                executor=type(self.executor).__name__,
                concurrency=self.concurrency,
                burst=burst,
                exit_after=exit_after,
            )
            self._with_backoff(self._startup)
            call_hook_safely("taskq_worker_started", tq=self.tq, worker=self)
            idle_rounds = 0
            while not self.stop_requested or self._busy():
                did_work = self._with_backoff(lambda: self._iteration(burst))
                if did_work is None:  # broker unavailable: retried with back-off
                    continue
                if self.executor.exhausted:
                    self.log.error("exiting: every slot of the executor holds an abandoned task")
                    break
                idle_rounds = 0 if did_work else idle_rounds + 1
                if burst and not did_work:
                    if self._with_backoff(self._nothing_queued):
                        break
                    if idle_rounds > 1:
                        # still queued work this worker cannot take (queue slots
                        # taken, a queue system lock): wait instead of spinning
                        self._sleep(float(self.tq.config["SELECT_TIMEOUT"]))
                if deadline is not None and time.time() >= deadline and not self.stop_requested:
                    self.log.info("exit-after elapsed")
                    self.stop_requested = True  # the running tasks finish first
                self._maybe_log_stats()
        finally:
            self._requeue_waiting()
            self._return_prefetched(self._prefetched)
            self._log_dropped()
            self.executor.close()
            call_hook_safely("taskq_worker_stopping", tq=self.tq, worker=self)
            restore()
            self.log.info("done", processed=self.processed)

    def _log_default_broker(self) -> None:
        """On the default broker, say so once, with its file and how to choose another."""
        if not self.tq.uses_default_broker:
            return
        broker = self.tq.broker
        path = getattr(broker, "path", None)  # a broker on a file names it
        file = None if path is None else str(path)
        self.log.info(
            "using the default broker", broker=broker.name, file=file, hint=CHOOSE_A_BROKER
        )

    def _startup(self) -> None:
        for warning in self.tq.broker.check():
            self.log.warning("broker setup", warning=warning)
        self._queue_periodic_tasks()
        self._resync(force=True)
        self._maintenance(force=True)

    def _iteration(self, burst: bool) -> bool:
        """One pass: maintenance, fill the free slots from the queues, then
        wait for a run to end (or, idle, for new work); ``True`` if it did work."""
        if self.stop_requested and self._waiting:  # never started: back to the queue
            self._requeue_waiting()
        self._resync()
        self._maintenance()
        started = self._fill()
        if self._busy():
            timeout = min(self._until_heartbeat(), float(self.tq.config["SELECT_TIMEOUT"]))
            self._end_finished(self.executor.wait(0.0 if self._finished_early else timeout))
            self._heartbeat_if_due()
            self._log_dropped()
            return True
        self._log_dropped()
        if not started and not self.stop_requested and not burst:
            timeout = float(self.tq.config["SELECT_TIMEOUT"])
            if self._deadline is not None:  # --exit-after: do not idle past it
                timeout = max(0.0, min(timeout, self._deadline - time.time()))
            for name in self.tq.broker.wait_for_activity(timeout):
                if self.processes(name) and name not in self._queue_set:
                    self.log.debug("new queue", queue=name)
                    self._queue_set.add(name)
        return started

    def _fill(self) -> bool:
        """Pop the queues (in random order, popped-ahead ones first) into the
        executor's free slots; ``True`` if anything was popped."""
        queues = list(self._queue_set)
        random.shuffle(queues)
        queues.sort(key=lambda q: q not in self._prefetched)  # prefetched first
        popped_any = False
        for queue in queues:
            if self.stop_requested or self.executor.free_slots() - len(self._waiting) <= 0:
                break
            popped, slot_refused = self._process_from_queue(queue)
            popped_any = popped_any or popped
            if not popped and not slot_refused:
                self._queue_set.discard(queue)
        return popped_any
